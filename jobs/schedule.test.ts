/**
 * The Node scheduler under a fake cron clock: a paused run of a daily job (a chunk failed after
 * saving progress) is resumed within a minute by the sweep, not at the next day's slot; its second
 * failure is final (no run every minute forever); a run whose process died is taken over as soon
 * as its lease passes; an idle sweep logs nothing and starts no slot; two processes sweeping at once
 * run the paused run once.
 */

import { type Kysely, sql } from 'kysely'
import { expect, it } from 'vitest'
import { loadConfig } from '../src/config.js'
import { cronMatches } from '../src/cron.js'
import type { Database } from '../src/db/schema.js'
import { createLogger, type LogFields } from '../src/logger.js'
import { forEachDatabase } from '../test/databases.js'
import { holdTransaction } from '../test/held-transaction.js'
import { runChunks } from './chunks.js'
import { type CronDriver, scheduleJobs } from './schedule.js'
import type { Job, JobDeps } from './types.js'

const TZ = 'Asia/Shanghai'

/** A cron driver on a fake clock: `fire(at)` runs every task whose expression matches `at`. */
function fakeCron() {
  const tasks: { expression: string; tick: (at: Date) => Promise<unknown>; stopped: boolean }[] = []
  const driver: CronDriver = {
    schedule(expression, tick) {
      const task = { expression, tick, stopped: false }
      tasks.push(task)
      return {
        stop() {
          task.stopped = true
        },
      }
    },
  }
  const fire = (at: Date) =>
    Promise.all(
      tasks.filter((t) => !t.stopped && cronMatches(t.expression, at, TZ)).map((t) => t.tick(at)),
    )
  return { driver, fire }
}

/** A daily chunked job (03:30, like the segment recompute): chunks 0‥3; `failing` chunks throw. */
function chunked(name: string, failing: (chunk: number, call: number) => boolean, ms = 0) {
  const calls: { from: number; chunks: number[] }[] = []
  const job: Job = {
    name,
    cron: '30 3 * * *',
    async run(ctx) {
      const call = {
        from: (ctx.cursor as { next: number } | undefined)?.next ?? 0,
        chunks: [] as number[],
      }
      calls.push(call)
      const run = await runChunks(ctx, {
        start: () => ({ next: 0 }),
        async chunk(_trx, { next }) {
          if (ms) await new Promise((resolve) => setTimeout(resolve, ms))
          if (failing(next, calls.length))
            throw new Error('Connection terminated unexpectedly (transient)')
          call.chunks.push(next)
          return { cursor: { next: next + 1 }, done: next === 3 }
        },
      })
      return { chunks: run.chunks }
    },
  }
  return { job, calls }
}

/** 03:mm on 2026-11-26 in Shanghai. */
const at = (mm: number) => new Date(Date.UTC(2026, 10, 25, 19, mm))

forEachDatabase('node schedule: paused runs', (get, dbName) => {
  const lines: LogFields[] = []
  let now = at(0)
  const deps = (db: Kysely<Database> = get().db): JobDeps => ({
    db,
    clock: { now: () => now },
    logger: createLogger({ level: 'info', write: (l) => lines.push(JSON.parse(l)) }),
    config: loadConfig({}),
  })
  const row = (job: Job, slot: Date) =>
    get()
      .db.selectFrom('job_runs')
      .select(['status', 'attempts', 'cursor', 'error'])
      .where('job', '=', job.name)
      .where('slot', '=', slot)
      .executeTakeFirstOrThrow()
  /** This process's schedule of `job`, ticked by `cron`. */
  const start = (job: Job, cron: ReturnType<typeof fakeCron>) =>
    scheduleJobs([job], deps(), { timeZone: TZ, worker: 'node', cron: cron.driver })
  /** Moves the fake clock to each minute in turn, firing what is due there. */
  const minutes = async (fire: (at: Date) => Promise<unknown>, from: number, to: number) => {
    for (let mm = from; mm <= to; mm++) {
      now = new Date(at(mm).getTime() + 200)
      await fire(at(mm))
    }
  }

  it('resumes a paused run of a daily job at the next minute, from its cursor, not at the next day’s slot', async () => {
    // Chunk 1 fails once (a transient database error) after chunk 0 committed with its cursor.
    const { job, calls } = chunked(`daily-${dbName}`, (chunk, call) => chunk === 1 && call === 1)
    const cron = fakeCron()
    now = at(29)
    const schedule = start(job, cron)
    lines.length = 0
    await minutes(cron.fire, 30, 30)
    // It saved progress and has a try left: paused with its cursor (the runner's retry). The sweep
    // of 03:30 may already resume it (if it looked after the pause), else 03:31's does.
    expect(calls[0]).toEqual({ from: 0, chunks: [0] })
    expect(lines.map((l) => l.code)).toEqual(['JOB_RETRIED', 'JOB_FAILED'])
    await minutes(cron.fire, 31, 31)
    await schedule.stop()
    expect(calls).toEqual([
      { from: 0, chunks: [0] },
      { from: 1, chunks: [1, 2, 3] },
    ])
    expect(await row(job, at(30))).toMatchObject({ status: 'succeeded', attempts: 2 })
  })

  it('a run whose chunk keeps failing is resumed once and then given up, not every minute', async () => {
    const { job, calls } = chunked(`doomed-${dbName}`, (chunk) => chunk === 2)
    const cron = fakeCron()
    now = at(29)
    lines.length = 0
    const schedule = start(job, cron)
    await minutes(cron.fire, 30, 45)
    await schedule.stop()
    expect(calls).toEqual([
      { from: 0, chunks: [0, 1] },
      { from: 2, chunks: [] },
    ])
    expect(await row(job, at(30))).toMatchObject({ status: 'failed', attempts: 2 })
    expect(lines.map((l) => l.code)).toEqual(['JOB_RETRIED', 'JOB_FAILED', 'JOB_ABANDONED'])
  })

  it('takes over a daily job’s run whose process died at the next minute, from its cursor', async () => {
    const { job, calls } = chunked(`orphan-${dbName}`, () => false)
    const cron = fakeCron()
    now = at(29)
    const schedule = start(job, cron)
    // Another process claimed 03:30, committed chunk 0 and died: its lease passes at 03:31:30.
    await get()
      .db.insertInto('job_runs')
      .values({
        job: job.name,
        slot: at(30),
        trigger: 'schedule',
        status: 'running',
        worker: 'gone',
        started_at: at(30),
        lease_until: new Date(at(31).getTime() + 30_000),
        attempts: 1,
        cursor: JSON.stringify({ next: 1 }),
      })
      .execute()
    await minutes(cron.fire, 31, 31)
    expect(calls).toEqual([])
    await minutes(cron.fire, 32, 32)
    await schedule.stop()
    expect(calls).toEqual([{ from: 1, chunks: [1, 2, 3] }])
    expect(await row(job, at(30))).toMatchObject({ status: 'succeeded', attempts: 2 })
  })

  it('with nothing paused the sweep starts no slot and logs nothing', async () => {
    const { job, calls } = chunked(`idle-${dbName}`, () => false)
    // Yesterday's slot ran: nothing to catch up before today's.
    await get()
      .db.insertInto('job_runs')
      .values({
        job: job.name,
        slot: new Date(at(30).getTime() - 86_400_000),
        trigger: 'schedule',
        status: 'succeeded',
        worker: 'yesterday',
        started_at: new Date(at(30).getTime() - 86_400_000),
      })
      .execute()
    const cron = fakeCron()
    now = at(20)
    lines.length = 0
    const schedule = start(job, cron)
    await minutes(cron.fire, 21, 29)
    await schedule.stop()
    expect(calls).toEqual([])
    expect(lines).toEqual([])
    const runs = await get()
      .db.selectFrom('job_runs')
      .select('slot')
      .where('job', '=', job.name)
      .execute()
    expect(runs).toHaveLength(1)
  })

  it('two processes sweeping at once resume a paused run once', async () => {
    const { job, calls } = chunked(`shared-${dbName}`, () => false, 30)
    await get()
      .db.insertInto('job_runs')
      .values({
        job: job.name,
        slot: at(30),
        trigger: 'schedule',
        status: 'paused',
        worker: 'earlier',
        started_at: at(30),
        attempts: 2,
        cursor: JSON.stringify({ next: 1 }),
      })
      .execute()
    const cron = fakeCron()
    // Started before the slot (their start passes find nothing); another process ran 03:30 and
    // paused it. Their own 03:30 ticks are not fired: only the two sweeps race.
    now = at(29)
    const pools = dbName === 'postgres' ? [get().open(), get().open()] : [get().db, get().db]
    const schedules = pools.map((db, i) =>
      scheduleJobs([job], deps(db), { timeZone: TZ, worker: `node${i}`, cron: cron.driver }),
    )
    // PostgreSQL: a third session holds the paused row locked until both processes wait on it in
    // their claims — both have read it paused — so the claim alone decides who resumes it.
    let holder = 0
    const held =
      dbName === 'postgres'
        ? await holdTransaction(get().open(), async (trx) => {
            await trx
              .selectFrom('job_runs')
              .select('job')
              .where('job', '=', job.name)
              .forUpdate()
              .execute()
            const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx)
            holder = rows[0]!.pid
          })
        : undefined
    now = new Date(at(32).getTime() + 200)
    const swept = cron.fire(at(32))
    if (held) {
      // The first claim waits on the holder, the second on the first (the row's lock queue).
      const waiting = sql<{ n: number }>`select count(*)::int as n from pg_stat_activity a
        where ${holder} = any(pg_blocking_pids(a.pid)) or exists (select from pg_stat_activity b
          where b.pid = any(pg_blocking_pids(a.pid)) and ${holder} = any(pg_blocking_pids(b.pid)))`
      const blocked = async () => (await waiting.execute(get().db)).rows[0]!.n
      try {
        for (let i = 0; i < 200 && (await blocked()) < 2; i++)
          await new Promise((resolve) => setTimeout(resolve, 25))
        expect(await blocked()).toBe(2)
      } finally {
        held.commit()
        await held.done
      }
    }
    await swept
    await minutes(cron.fire, 33, 33)
    for (const s of schedules) await s.stop()
    expect(calls).toEqual([{ from: 1, chunks: [1, 2, 3] }])
    expect(await row(job, at(30))).toMatchObject({ status: 'succeeded', attempts: 2 })
  })
})
