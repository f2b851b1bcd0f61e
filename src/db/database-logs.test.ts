/**
 * The database as the operator sees it: statements slower than DATABASE_SLOW_STATEMENT_MS logged
 * with their text and never their values, every statement's time counted, and on PostgreSQL a
 * pooled connection the server closed while idle logged instead of passing unseen. Through
 * `openDatabase` on PostgreSQL (as src/node.ts and jobs/cli.ts open it) and `pgliteDatabase` (what
 * openDatabase opens a data folder with). Durations are only bounded from below, by `pg_sleep`.
 */
import { type Kysely, type LogEvent, sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../config.js'
import { createLogger } from '../logger.js'
import { type Metrics, noopMetrics } from '../metrics.js'
import { databaseLogs } from './database-logs.js'
import { closeDatabase, openDatabase, pgliteDatabase } from './open-database.js'
import { postgresDatabase } from './postgres.js'
import type { Database } from './schema.js'

const url = process.env.TEST_DATABASE_URL

/** The log lines and statement times reported while a test's threshold was in force. */
function observed(slowMs: number) {
  const lines: Record<string, unknown>[] = []
  const seconds: number[] = []
  const logger = createLogger({ write: (line) => lines.push(JSON.parse(line)) })
  const metrics: Metrics = { ...noopMetrics, statement: (s) => seconds.push(s) }
  return { lines, seconds, hooks: databaseLogs(logger, slowMs, () => metrics) }
}
type Seen = ReturnType<typeof observed>

/**
 * Hooks for one database opened per suite, passed on to the observer of the test running (the
 * opening's own statements, migrations included, go to none).
 */
function switchedHooks() {
  let seen: Seen | undefined
  return {
    hooks: {
      onStatement: (e: LogEvent) => seen?.hooks.onStatement(e),
      onIdleError: (e: Error) => seen?.hooks.onIdleError(e),
    },
    observe: (slowMs: number) => {
      seen = observed(slowMs)
      return seen
    },
  }
}

function statementSuite(
  name: string,
  open: (hooks: ReturnType<typeof switchedHooks>['hooks']) => Promise<Kysely<Database>>,
) {
  describe(`statement times on ${name}`, () => {
    const switched = switchedHooks()
    let db: Kysely<Database>
    beforeAll(async () => {
      db = await open(switched.hooks)
    }, 60_000)
    afterAll(() => db?.destroy())

    it('warns of a statement slower than the threshold: its text with placeholders, never its values', async () => {
      const seen = switched.observe(100)
      await sql`select ${'o_secret_openid'}::text as who, pg_sleep(0.15)`.execute(db)
      await sql`select 1`.execute(db)
      expect(seen.seconds).toHaveLength(2)
      expect(seen.seconds[0]).toBeGreaterThanOrEqual(0.15)
      // (`select 1` is not expected among them, but a loaded machine may make it slow too.)
      const slept = seen.lines.filter((l) => String(l.statement).includes('pg_sleep'))
      expect(slept).toHaveLength(1)
      expect(slept[0]).toMatchObject({
        level: 'warn',
        msg: 'slow statement',
        code: 'SLOW_STATEMENT',
        failed: false,
        statement: 'select $1::text as who, pg_sleep(0.15)',
      })
      expect(slept[0]!.ms).toBeGreaterThanOrEqual(150)
      expect(JSON.stringify(seen.lines)).not.toContain('o_secret_openid')
    })

    it('warns of a slow statement that failed, and the caller still gets its error', async () => {
      const seen = switched.observe(100)
      await expect(
        sql`do $$ begin perform pg_sleep(0.15); raise exception 'boom'; end $$`.execute(db),
      ).rejects.toThrow('boom')
      expect(seen.lines).toHaveLength(1)
      expect(seen.lines[0]).toMatchObject({ code: 'SLOW_STATEMENT', failed: true })
      expect(seen.lines[0]!.statement).toContain('pg_sleep(0.15)')
    })

    it('logs nothing at 0, and still counts every statement, in transactions too', async () => {
      const seen = switched.observe(0)
      await sql`select pg_sleep(0.15)`.execute(db)
      await db.transaction().execute(async (trx) => {
        await sql`select 1`.execute(trx)
      })
      expect(seen.lines).toEqual([])
      // pg_sleep, and in the transaction: begin, select 1, commit.
      expect(seen.seconds).toHaveLength(4)
      expect(seen.seconds[0]).toBeGreaterThanOrEqual(0.15)
    })

    it('cuts a long statement to 500 characters, on one line', async () => {
      const seen = switched.observe(100)
      const columns = Array.from({ length: 80 }, (_, i) => `${i} as column_${i}`).join(',\n  ')
      await sql.raw(`select pg_sleep(0.15),\n  ${columns}`).execute(db)
      const statement = seen.lines[0]!.statement as string
      expect(statement).toMatch(/^select pg_sleep\(0\.15\), 0 as column_0, 1 as column_1,/)
      expect(statement).not.toContain('\n')
      expect(statement).toHaveLength(501)
      expect(statement.endsWith('…')).toBe(true)
    })
  })
}

statementSuite('PGlite', (hooks) => pgliteDatabase(undefined, { log: hooks.onStatement }))

describe.skipIf(!url)('PostgreSQL through openDatabase [postgres]', () => {
  const schema = `dblogs_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`
  const open = (hooks: ReturnType<typeof switchedHooks>['hooks']) => {
    const u = new URL(url!)
    u.searchParams.set('options', `-c search_path=${schema}`)
    const config = loadConfig({ DATABASE_URL: u.toString() })
    return openDatabase({ ...config, role: 'server', ...hooks })
  }
  beforeAll(async () => {
    const admin = postgresDatabase(url!)
    await sql`create schema ${sql.id(schema)}`.execute(admin)
    await admin.destroy()
  })
  afterAll(async () => {
    const admin = postgresDatabase(url!)
    await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(admin)
    await admin.destroy()
  })

  statementSuite('PostgreSQL', async (hooks) => (await open(hooks)).db)

  it('logs a pooled connection the server closed while idle, and the next statement runs', async () => {
    const switched = switchedHooks()
    const database = await open(switched.hooks)
    const seen = switched.observe(0)
    const { db } = database
    try {
      const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(db)
      const admin = postgresDatabase(url!)
      await sql`select pg_terminate_backend(${rows[0]!.pid})`.execute(admin)
      await admin.destroy()
      const deadline = Date.now() + 10_000
      while (seen.lines.length === 0) {
        if (Date.now() > deadline) throw new Error('nothing logged within 10 s')
        await new Promise((r) => setTimeout(r, 20))
      }
      expect(seen.lines).toEqual([
        expect.objectContaining({
          level: 'warn',
          code: 'DB_IDLE_CONNECTION_LOST',
          error: expect.objectContaining({ code: '57P01' }),
        }),
      ])
      expect((await sql<{ one: number }>`select 1 as one`.execute(db)).rows).toEqual([{ one: 1 }])
    } finally {
      await closeDatabase(database)
    }
  })
})
