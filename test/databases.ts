/**
 * Integration tests run on every real database: PGlite in memory always, PostgreSQL when
 * TEST_DATABASE_URL is set. Each suite gets its own PostgreSQL schema, dropped afterwards.
 */

import { readFileSync } from 'node:fs'
import type { Kysely } from 'kysely'
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, inject } from 'vitest'
import { migrateToLatest } from '../src/db/migrate.js'
import { pgliteDatabase } from '../src/db/open-database.js'
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
          const template = new Blob([readFileSync(inject('pgliteTemplate'))])
          const db = await pgliteDatabase(undefined, { loadDataDir: template })
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
