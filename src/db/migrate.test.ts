/**
 * Migrating while other clients change their own schemas: the Migrator's introspection of every
 * schema can fail under them, before any migration has run; that read is tried again.
 */
import { type Kysely, sql } from 'kysely'
import { afterEach, expect, it } from 'vitest'
import { migrations } from '../../migrations/index.js'
import { migrateToLatest } from './migrate.js'
import { pgliteDatabase } from './open-database.js'
import type { Database } from './schema.js'

const opened: Kysely<Database>[] = []
afterEach(async () => {
  for (const db of opened.splice(0)) await db.destroy()
})

/**
 * `db` whose catalog introspection fails its first `failures` calls with `error` — what a client
 * sees when another one drops a column or schema while it reads the catalog.
 */
function racingCatalog(
  db: Kysely<Database>,
  failures: number,
  error: Error,
  reads = { count: 0 },
): Kysely<Database> {
  let left = failures
  const introspection = new Proxy(db.introspection, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target)
      if (typeof value !== 'function') return value
      if (prop !== 'getTables') return value.bind(target)
      return async (...args: unknown[]) => {
        reads.count++
        if (left-- > 0) throw error
        return value.apply(target, args)
      }
    },
  })
  return new Proxy(db, {
    get(target, prop) {
      if (prop === 'introspection') return introspection
      const value = Reflect.get(target, prop, target)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
}

const pgError = (code: string, message: string) => Object.assign(new Error(message), { code })

it('migrates when a column another client drops fails the first introspection (42703)', async () => {
  const db = await pgliteDatabase()
  opened.push(db)
  const racing = racingCatalog(
    db,
    1,
    pgError('42703', 'column "run_id" of relation "reconciliation_mismatches" does not exist'),
  )
  const summary = await migrateToLatest(racing)
  expect(summary.applied).toHaveLength(Object.keys(migrations).length)
  expect(await migrateToLatest(db)).toEqual({ applied: [], total: summary.total })
})

it('migrates when a schema another client drops fails two introspections (3F000)', async () => {
  const db = await pgliteDatabase()
  opened.push(db)
  const racing = racingCatalog(db, 2, pgError('3F000', 'schema "t_x" does not exist'))
  expect((await migrateToLatest(racing)).applied).toHaveLength(Object.keys(migrations).length)
})

it('gives up with the error when the introspection keeps failing, having run nothing', async () => {
  const db = await pgliteDatabase()
  opened.push(db)
  const racing = racingCatalog(db, 3, pgError('42703', 'column "x" does not exist'))
  await expect(migrateToLatest(racing)).rejects.toThrow(/column "x" does not exist/)
  const { rows } = await sql<{ tables: string }>`
    select count(*) as tables from pg_tables where schemaname = current_schema()`.execute(db)
  expect(Number(rows[0]!.tables)).toBe(0)
})

it('does not try a failing migration again', async () => {
  const db = await pgliteDatabase()
  opened.push(db)
  // 0001 creates `members`: here it exists already, so the first migration fails.
  await sql`create table members (id int)`.execute(db)
  const reads = { count: 0 }
  const racing = racingCatalog(db, 0, new Error('unused'), reads)
  await expect(migrateToLatest(racing)).rejects.toThrow(
    /migration 0001_foundation failed: .*members.* already exists/,
  )
  // The Migrator reads the catalog twice per attempt (its table, its lock table): one attempt.
  expect(reads.count).toBe(2)
})
