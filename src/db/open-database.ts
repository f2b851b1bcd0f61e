/** Opens the database the configuration names: PostgreSQL when DATABASE_URL is set, else PGlite. */
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { Kysely } from 'kysely'
import { migrateToLatest } from './migrate.js'
import { postgresDatabase } from './postgres.js'
import type { Database } from './schema.js'

/** An open, migrated database and what it runs on. */
export interface OpenDatabase {
  db: Kysely<Database>
  kind: 'postgres' | 'pglite'
  /** Where it lives, without credentials. */
  location: string
}

/**
 * Opens and migrates the database. PGlite keeps its files in `<dataDir>/pglite`; PGlite is loaded
 * only when used, so PostgreSQL deployments never load its WebAssembly.
 */
export async function openDatabase(options: {
  databaseUrl?: string
  dataDir: string
}): Promise<OpenDatabase> {
  if (options.databaseUrl) {
    const db = postgresDatabase(options.databaseUrl)
    await migrateToLatest(db)
    const url = new URL(options.databaseUrl)
    return { db, kind: 'postgres', location: `${url.hostname}:${url.port || 5432}${url.pathname}` }
  }
  const dir = join(options.dataDir, 'pglite')
  await mkdir(dir, { recursive: true })
  const db = await pgliteDatabase(dir)
  await migrateToLatest(db)
  return { db, kind: 'pglite', location: dir }
}

/** A Kysely instance on PGlite; `dataDir` undefined → in memory. */
export async function pgliteDatabase(dataDir?: string): Promise<Kysely<Database>> {
  const [{ PGlite }, { PGliteDialect }, { Kysely }] = await Promise.all([
    import('@electric-sql/pglite'),
    import('kysely-pglite-dialect'),
    import('kysely'),
  ])
  const pglite = new PGlite(dataDir)
  await pglite.waitReady
  return new Kysely<Database>({ dialect: new PGliteDialect(pglite) })
}
