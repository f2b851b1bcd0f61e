/**
 * The PostgreSQL pool the server, the migrations and the jobs open (`openDatabase` with the loaded
 * configuration, as src/node.ts and jobs/cli.ts call it): DATABASE_POOL_MAX bounds its connections.
 * Counted as distinct backends answering statements that all wait at the same time.
 */
import { sql } from 'kysely'
import { afterAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../config.js'
import { closeDatabase, type OpenDatabase, openDatabase } from './open-database.js'
import { postgresDatabase } from './postgres.js'

const url = process.env.TEST_DATABASE_URL

describe.skipIf(!url)('the PostgreSQL pool [postgres]', () => {
  const schema = `pool_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`
  const opened: OpenDatabase[] = []
  // The schema rides in the URL (libpq's `options`), as an operator's search_path would.
  const inSchema = () => {
    const u = new URL(url!)
    u.searchParams.set('options', `-c search_path=${schema}`)
    return u.toString()
  }
  const open = async (env: Record<string, string>) => {
    // PostgreSQL: the data folder is never touched.
    const config = loadConfig({ DATABASE_URL: inSchema(), ...env })
    const database = await openDatabase({ ...config, role: 'server' })
    opened.push(database)
    return database
  }
  /** Backends that answer `count` statements sleeping together. */
  const backends = async ({ db }: OpenDatabase, count: number) => {
    const pids = await Promise.all(
      Array.from({ length: count }, () =>
        sql<{ pid: number }>`select pg_backend_pid() as pid, pg_sleep(0.2)`
          .execute(db)
          .then((r) => r.rows[0]!.pid),
      ),
    )
    return new Set(pids).size
  }

  afterAll(async () => {
    for (const database of opened) await closeDatabase(database)
    const admin = postgresDatabase(url!)
    await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(admin)
    await admin.destroy()
  })

  it('opens at most DATABASE_POOL_MAX connections, 10 when unset', async () => {
    const admin = postgresDatabase(url!)
    await sql`create schema ${sql.id(schema)}`.execute(admin)
    await admin.destroy()
    const four = await open({ DATABASE_POOL_MAX: '4' })
    expect(four.kind).toBe('postgres')
    expect(await backends(four, 12)).toBe(4)
    await closeDatabase(opened.pop()!)
    expect(await backends(await open({}), 12)).toBe(10)
  }, 60_000)
})
