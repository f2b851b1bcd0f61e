import { spawn } from 'node:child_process'
import { sql } from 'kysely'
import { expect, it } from 'vitest'
import { loadConfig } from '../src/config.js'
import { createLogger, type LogFields, silentLogger } from '../src/logger.js'
import { forEachDatabase } from '../test/databases.js'
import { jobsToResume, runDue, runJobSlot, runScheduled, slotOf } from './runner.js'
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
      .select(['status', 'error', 'attempts'])
      .where('job', '=', failing.name)
      .executeTakeFirstOrThrow()
    // Its first try failed: kept with the error, paused for its second try (below).
    expect(row).toEqual({ status: 'paused', error: 'boom', attempts: 2 })
  })

  /** Ticks of a Workers trigger at `iso` (the clock half a second later), one per worker. */
  const trigger = (jobs: Job[], iso: string, workers = ['w'], lines?: LogFields[]) => {
    const scheduledTime = new Date(iso)
    const pools = dbName === 'postgres' ? workers.map(() => get().open()) : []
    return Promise.all(
      workers.map((worker, i) =>
        runDue(
          jobs,
          {
            db: pools[i] ?? get().db,
            clock: { now: () => new Date(scheduledTime.getTime() + 500) },
            logger: lines
              ? createLogger({ level: 'info', write: (l) => lines.push(JSON.parse(l)) })
              : silentLogger,
            config: loadConfig({}),
          },
          { scheduledTime, timeZone: 'Asia/Shanghai', worker },
        ),
      ),
    ).then((ticks) => ticks.flat())
  }
  const jobRun = (job: Job, slot: Date) =>
    get()
      .db.selectFrom('job_runs')
      .select(['status', 'attempts', 'error'])
      .where('job', '=', job.name)
      .where('slot', '=', slot)
      .executeTakeFirstOrThrow()

  it('retries a scheduled slot whose run failed once (a transient error) at a later tick, once, after its back-off', async () => {
    // A daily 10:00 job whose first try at its slot loses its connection: the slot's work must
    // still happen that day, and once — catch-up starts after the slot, so only a retry runs it.
    const done: string[] = []
    let calls = 0
    const daily: Job = {
      name: `transient-${dbName}`,
      cron: '0 10 * * *',
      async run({ slot }) {
        calls++
        if (calls === 1) throw new Error('Connection terminated unexpectedly')
        done.push(slot.toISOString())
        return { sent: 1 }
      },
    }
    const ten = new Date('2026-12-01T02:00:00Z') // 10:00 Shanghai
    await trigger([daily], '2026-12-01T01:59:00Z')
    const first = await trigger([daily], '2026-12-01T02:00:00Z')
    expect(first.map((r) => [r.slot.toISOString(), r.status])).toEqual([
      [ten.toISOString(), 'failed'],
    ])
    expect(await jobRun(daily, ten)).toMatchObject({ status: 'paused', attempts: 2 })
    // The same minute's Node sweep, right after the failure: the back-off holds it.
    const sweep = { ...ctx(), clock: { now: () => new Date(ten.getTime() + 900) } }
    expect(await jobsToResume([daily], sweep, ten)).toEqual([])
    const resumeOnly = { slot: ten, due: false, resumeOnly: true, timeZone: 'UTC', worker: 's' }
    expect(await runScheduled(daily, sweep, resumeOnly)).toEqual([])
    expect(calls).toBe(1)
    // 10:01: two instances tick at once; the claim lets one of them run the retry.
    const retry = await trigger([daily], '2026-12-01T02:01:00Z', ['w1', 'w2'])
    expect(retry.filter((r) => r.status === 'ran')).toEqual([
      expect.objectContaining({ slot: ten, attempt: 2 }),
    ])
    for (const mm of ['02', '03']) await trigger([daily], `2026-12-01T02:${mm}:00Z`)
    expect(done).toEqual([ten.toISOString()])
    expect(calls).toBe(2)
    expect(await jobRun(daily, ten)).toMatchObject({ status: 'succeeded', attempts: 2 })
  })

  it('tries a job that keeps failing twice, then leaves its slot failed; a manual run is not retried', async () => {
    let calls = 0
    const broken: Job = {
      name: `permanent-${dbName}`,
      cron: '0 10 * * *',
      async run() {
        calls++
        throw new Error('relation "gone" does not exist')
      },
    }
    const ten = new Date('2026-12-02T02:00:00Z')
    const lines: LogFields[] = []
    const reports = []
    for (let mm = 0; mm <= 10; mm++)
      reports.push(
        ...(await trigger(
          [broken],
          `2026-12-02T02:${String(mm).padStart(2, '0')}:00Z`,
          ['w'],
          lines,
        )),
      )
    expect(calls).toBe(2)
    expect(reports.map((r) => [r.status, 'attempt' in r ? r.attempt : undefined])).toEqual([
      ['failed', 1],
      ['failed', 2],
    ])
    expect(await jobRun(broken, ten)).toEqual({
      status: 'failed',
      attempts: 2,
      error: 'relation "gone" does not exist',
    })
    expect(lines.map((l) => l.code)).toEqual(['JOB_RETRIED', 'JOB_FAILED', 'JOB_ABANDONED'])
    // A manual run's caller sees its failure: it is not tried again behind the operator's back.
    const manual = new Date('2026-12-02T03:00:07Z')
    await runJobSlot(
      broken,
      { ...ctx(), clock: { now: () => manual } },
      { slot: manual, trigger: 'manual', worker: 'cli' },
    )
    await trigger([broken], '2026-12-02T03:05:00Z')
    expect(calls).toBe(3)
    expect(await jobRun(broken, manual)).toMatchObject({ status: 'failed', attempts: 1 })
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
