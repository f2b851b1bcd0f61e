/**
 * Integration tests run on every real database: PGlite in memory always, PostgreSQL when
 * TEST_DATABASE_URL is set. Each suite gets its own PostgreSQL schema, dropped afterwards, and a
 * fresh `public` schema in its test worker's one PGlite instance ({@link workerPglite}).
 */

import { PGlite } from '@electric-sql/pglite'
import { type DatabaseConnection, type Driver, Kysely, sql } from 'kysely'
import { afterAll, beforeAll, describe } from 'vitest'
import { migrateToLatest } from '../src/db/migrate.js'
import { pgliteDialect } from '../src/db/pglite-driver.js'
import { type PostgresOptions, postgresDatabase } from '../src/db/postgres.js'
import type { Database } from '../src/db/schema.js'

/**
 * A database under test; `open()` gives another pool on the same data (a second "process"), by
 * default of 10 connections (`options`: a smaller pool, a shorter connection timeout, a log).
 */
export interface TestDatabase {
  name: 'pglite' | 'postgres'
  db: Kysely<Database>
  open(options?: Omit<PostgresOptions, 'schema'>): Kysely<Database>
}

const url = process.env.TEST_DATABASE_URL

/** The databases suites run on, by name. */
export const databaseNames: TestDatabase['name'][] = url ? ['pglite', 'postgres'] : ['pglite']

/**
 * The test worker's PGlite instance. Starting PGlite costs 2–3 s of a core whatever it starts from
 * (a new data folder or the migrated template: measured 2.2–2.9 s each, with its WebAssembly
 * compiled once), while emptying `public` and migrating it again costs ≈ 0.6 s — so each suite
 * gets a fresh `public` schema in one instance per worker instead of an instance of its own (the
 * workers keep their modules between test files: vitest.config.ts `isolate: false`). One test
 * file runs at a time in a worker, and a suite's Kysely is destroyed before the next begins.
 */
let workerPglite: Promise<PGlite> | undefined

/**
 * A Kysely on the worker's PGlite with nothing in it from an earlier suite: an open transaction
 * rolled back, the session reset (`discard all`: settings, advisory locks, temporary tables),
 * `public` dropped and created again. Its `destroy()` leaves the instance open for the next suite
 * but fences this suite off it: every statement after it is refused — also of work still running
 * (a handler finishing after its reply, a transaction in progress, a caller queued for the
 * connection), which would otherwise run in the next suite's database.
 */
export async function freshPglite(): Promise<Kysely<Database>> {
  workerPglite ??= PGlite.create()
  const pglite = await workerPglite
  if (pglite.isInTransaction()) await pglite.exec('rollback')
  await pglite.exec('discard all') // alone: a multi-statement exec is one transaction
  await pglite.exec('drop schema public cascade; create schema public')
  const dialect = pgliteDialect(pglite)
  return new Kysely<Database>({
    dialect: { ...dialect, createDriver: () => fenced(dialect.createDriver()) },
  })
}

/** `driver`, whose connections refuse every statement once it is destroyed (PGlite stays open). */
function fenced(driver: Driver): Driver {
  let open = true
  const closed = () => new Error("this suite's database is closed (test/databases.ts)")
  const fence = (c: DatabaseConnection): DatabaseConnection => ({
    executeQuery: (query) => (open ? c.executeQuery(query) : Promise.reject(closed())),
    streamQuery(query, chunkSize) {
      if (!open) throw closed()
      return c.streamQuery(query, chunkSize)
    },
  })
  return {
    init: () => driver.init(),
    acquireConnection: async () => fence(await driver.acquireConnection()),
    beginTransaction: (c, settings) => driver.beginTransaction(c, settings),
    commitTransaction: (c) => driver.commitTransaction(c),
    rollbackTransaction: (c) => driver.rollbackTransaction(c),
    releaseConnection: (c) => driver.releaseConnection(c),
    destroy: async () => {
      open = false
    },
  }
}

/**
 * Runs `body` once per database. The database is migrated before and removed after the suite.
 * @example forEachDatabase('members', (t) => { it('...', async () => { await t().db... }) })
 */
export function forEachDatabase(
  title: string,
  body: (get: () => TestDatabase, name: TestDatabase['name']) => void,
  names: readonly TestDatabase['name'][] = databaseNames,
): void {
  for (const name of names) {
    describe(`${title} [${name}]`, () => {
      let current: TestDatabase | undefined
      const extra: Kysely<Database>[] = []
      let schema = ''
      beforeAll(async () => {
        if (name === 'pglite') {
          const db = await freshPglite()
          await migrateToLatest(db)
          current = {
            name,
            db,
            open() {
              throw new Error('PGlite is single-connection: use the same db')
            },
          }
        } else {
          schema = `t_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`
          const admin = postgresDatabase(url!)
          await sql`create schema ${sql.id(schema)}`.execute(admin)
          await admin.destroy()
          const open = (options: Omit<PostgresOptions, 'schema'> = {}) => {
            const db = postgresDatabase(url!, { max: 10, ...options, schema })
            extra.push(db)
            return db
          }
          const db = open()
          await migrateToLatest(db)
          current = { name, db, open }
        }
      }, 60_000)
      afterAll(async () => {
        for (const db of extra) await db.destroy()
        if (name === 'pglite') await current?.db.destroy()
        if (schema) {
          const admin = postgresDatabase(url!)
          await sql`drop schema ${sql.id(schema)} cascade`.execute(admin)
          await admin.destroy()
        }
      })
      body(() => {
        if (!current) throw new Error('database not ready')
        return current
      }, name)
    })
  }
}

/**
 * The one database a browser suite runs on: PostgreSQL when TEST_DATABASE_URL is set, else PGlite.
 * What a browser checks (pages, forms, charts) is the same on both; the services under the pages
 * are tested on both by their own suites, so a browser suite runs once (the console's 3-minute
 * budget).
 */
export const browserDatabase: TestDatabase['name'][] = [databaseNames.at(-1)!]
