/** Applies `migrations/` with Kysely's Migrator; identical on PGlite and PostgreSQL. */
import { type Kysely, type MigrationResultSet, Migrator, sql } from 'kysely'
import { migrations } from '../../migrations/index.js'
import { sleep } from '../clock.js'

/** What {@link migrateToLatest} did. */
export interface MigrationSummary {
  /** Names applied by this call, in order (empty when the schema was up to date). */
  applied: string[]
  /** How many migrations the schema has now. */
  total: number
}

/**
 * Brings the schema to the latest migration. Throws with the failing migration's name.
 * When every migration is already recorded it returns after two cheap queries, without the
 * Migrator's lock and bookkeeping (a warm start pays ~1 ms, not ~300). The Migrator is pinned to
 * the connection's current schema: left to itself it would take migration tables found in *any*
 * schema as its own.
 */
// biome-ignore lint/suspicious/noExplicitAny: the Migrator works on any schema
export async function migrateToLatest(db: Kysely<any>): Promise<MigrationSummary> {
  const names = Object.keys(migrations)
  const { rows } = await sql<{ schema: string; present: boolean }>`
    select current_schema() as schema,
      to_regclass(current_schema() || '.kysely_migration') is not null as present`.execute(db)
  const { schema, present } = rows[0]!
  if (present) {
    const done = await sql<{ name: string }>`select name from kysely_migration`.execute(db)
    const recorded = new Set(done.rows.map((r) => r.name))
    if (names.every((n) => recorded.has(n))) return { applied: [], total: recorded.size }
  }
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
    migrationTableSchema: schema,
  })
  let result: MigrationResultSet = await migrator.migrateToLatest()
  // Before it runs a migration the Migrator introspects every table of every schema. Another
  // client changing its own schema meanwhile can fail that read: a schema dropped under it
  // (3F000), a column dropped by a migration running there (42703 from pg_get_serial_sequence),
  // a table gone (42P01) or a catalog row gone (XX000, "cache lookup failed"), all seen or
  // possible when test suites migrate and drop theirs side by side. Such a failure, with no
  // per-migration results, is tried again; a migration's own failure never is.
  for (let tries = 1; tries < 3 && catalogRace(result); tries++) {
    await sleep(20 * tries)
    result = await migrator.migrateToLatest()
  }
  if (result.error) {
    const failed = result.results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown'
    throw new Error(`migration ${failed} failed: ${String(result.error)}`, { cause: result.error })
  }
  const applied = (result.results ?? []).filter((r) => r.status === 'Success')
  return { applied: applied.map((r) => r.migrationName), total: names.length }
}

/** SQLSTATEs of a catalog read racing another client's DDL. */
const CATALOG_RACES = new Set(['3F000', '42703', '42P01', 'XX000'])

/**
 * The Migrator failed outside any migration (no per-migration results: its introspection and
 * bookkeeping) with an error another client's concurrent DDL causes.
 */
function catalogRace(result: MigrationResultSet): boolean {
  const code = (result.error as { code?: unknown } | undefined)?.code
  return result.results === undefined && typeof code === 'string' && CATALOG_RACES.has(code)
}
