/** Applies `migrations/` with Kysely's Migrator; identical on PGlite and PostgreSQL. */
import { type Kysely, type MigrationResultSet, Migrator, sql } from 'kysely'
import { migrations } from '../../migrations/index.js'

/**
 * Brings the schema to the latest migration. Throws with the failing migration's name.
 * The Migrator is pinned to the connection's current schema: left to itself it would take
 * migration tables found in *any* schema as its own.
 */
// biome-ignore lint/suspicious/noExplicitAny: the Migrator works on any schema
export async function migrateToLatest(db: Kysely<any>): Promise<MigrationResultSet> {
  const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(db)
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
    migrationTableSchema: rows[0]!.schema,
  })
  const result = await migrator.migrateToLatest()
  if (result.error) {
    const failed = result.results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown'
    throw new Error(`migration ${failed} failed: ${String(result.error)}`, { cause: result.error })
  }
  return result
}
