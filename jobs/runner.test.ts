import { spawn } from 'node:child_process'
import { sql } from 'kysely'
import { expect, it } from 'vitest'
import { loadConfig } from '../src/config.js'
import { silentLogger } from '../src/logger.js'
import { forEachDatabase } from '../test/databases.js'
import { runDue, runJobSlot, slotOf } from './runner.js'
import type { Job, JobDeps } from './types.js'

forEachDatabase('job runs', (get, dbName) => {
  const ctx = (): JobDeps => ({
    db: get().db,
    clock: { now: () => new Date() },
    logger: silentLogger,
    config: loadConfig({}),
  })
  let runs = 0
  const counting: Job = {
    name: `counting-${dbName}`,
    cron: '0 9 * * *',
    async run() {
      runs++
      await new Promise((resolve) => setTimeout(resolve, 20))
      return { runs }
    },
  }

  it('runs a slot once however many callers race for it, and records the outcome', async () => {
    const slot = slotOf(new Date('2026-11-25T01:00:00.400Z'))
    expect(slot.toISOString()).toBe('2026-11-25T01:00:00.000Z')
    const outcomes = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        runJobSlot(counting, ctx(), { slot, trigger: 'schedule', worker: `w${i}` }),
      ),
    )
    expect(outcomes.filter((o) => o.status === 'ran')).toHaveLength(1)
    expect(outcomes.filter((o) => o.status === 'skipped')).toHaveLength(7)
    expect(runs).toBe(1)
    const row = await get()
      .db.selectFrom('job_runs')
      .selectAll()
      .where('job', '=', counting.name)
      .executeTakeFirstOrThrow()
    expect(row).toMatchObject({ status: 'succeeded', trigger: 'schedule', result: '{"runs":1}' })
  })

  it('records failures, and runs only the jobs due at a Workers trigger', async () => {
    const failing: Job = {
      name: `failing-${dbName}`,
      cron: '0 9 * * *',
      async run() {
        throw new Error('boom')
      },
    }
    const other: Job = { ...counting, name: `other-${dbName}`, cron: '30 9 * * *' }
    const results = await runDue([failing, other], ctx(), {
      scheduledTime: new Date('2026-11-26T01:00:00Z'), // 09:00 Shanghai
      timeZone: 'Asia/Shanghai',
      worker: 'workers',
    })
    expect(results.map((r) => [r.job, r.status])).toEqual([[failing.name, 'failed']])
    const row = await get()
      .db.selectFrom('job_runs')
      .select(['status', 'error'])
      .where('job', '=', failing.name)
      .executeTakeFirstOrThrow()
    expect(row).toEqual({ status: 'failed', error: 'boom' })
  })

  it.skipIf(dbName !== 'postgres')(
    'runs each slot once with two processes scheduling the same job',
    async () => {
      const db = get().db
      await sql`create table test_ticks (id serial primary key, pid int not null)`.execute(db)
      const { s: schema } = await db
        .selectNoFrom((eb) => eb.fn<string>('current_schema').as('s'))
        .executeTakeFirstOrThrow()
      const url = process.env.TEST_DATABASE_URL!
      const children = [1, 2].map(
        () =>
          new Promise<number>((resolve) => {
            const child = spawn(
              process.execPath,
              ['--import', 'tsx', 'test/fixtures/scheduler-child.ts', url, schema, '4'],
              { stdio: 'inherit' },
            )
            child.once('exit', (code) => resolve(code ?? -1))
          }),
      )
      expect(await Promise.all(children)).toEqual([0, 0])
      const runs = await db
        .selectFrom('job_runs')
        .select(['slot', 'worker', 'status'])
        .where('job', '=', 'tick')
        .execute()
      const ticks = await sql<{ n: number }>`select count(*)::int as n from test_ticks`.execute(db)
      expect(runs.length).toBeGreaterThanOrEqual(2)
      expect(ticks.rows[0]!.n).toBe(runs.length) // one run per slot, none twice
      expect(new Set(runs.map((r) => r.slot.getTime())).size).toBe(runs.length)
      expect(runs.every((r) => r.status === 'succeeded')).toBe(true)
    },
    20_000,
  )
})
