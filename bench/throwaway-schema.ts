/** What the database benches share: a throw-away PostgreSQL schema and a timer that prints. */
import { sql } from 'kysely'
import { postgresDatabase } from '../src/db/postgres.js'

/**
 * Creates a schema `<prefix>_<time>` on BENCH_DATABASE_URL (default: the local test database) and
 * opens a pool of two on it; `drop()` closes the pool and drops the schema.
 */
export async function throwawaySchema(prefix: string) {
  const url = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
  const schema = `${prefix}_${Date.now().toString(36)}`
  const admin = postgresDatabase(url)
  await sql`create schema ${sql.id(schema)}`.execute(admin)
  const db = postgresDatabase(url, { schema, max: 2 })
  return {
    db,
    async drop() {
      await db.destroy()
      await sql`drop schema ${sql.id(schema)} cascade`.execute(admin)
      await admin.destroy()
    },
  }
}

/** Runs `fn`, prints `name: <seconds> s` and its result, returns the milliseconds. */
export async function timed<T>(name: string, fn: () => Promise<T>): Promise<number> {
  const started = performance.now()
  const result = await fn()
  const ms = performance.now() - started
  const shown = result === undefined ? '' : ` ${JSON.stringify(result)}`
  console.log(`${name}: ${(ms / 1000).toFixed(2)} s${shown}`)
  return ms
}
