import { expect, it } from 'vitest'
import { chunkBudget } from '../src/budget.js'
import { loadConfig } from '../src/config.js'
import { createLogger, type LogFields } from '../src/logger.js'
import { forEachDatabase } from '../test/databases.js'
import { runDue, runJobSlot } from './runner.js'
import { scheduleJobs } from './schedule.js'
import type { Job, JobDeps } from './types.js'

const at = (iso: string) => new Date(iso)
const iso = (dates: Date[]) => dates.map((d) => d.toISOString())

/** A job that records the slot of each run (ctx.slot), in the order they ran. */
function recording(name: string, cron: string, catchUp: Job['catchUp'] = 'every') {
  const slots: Date[] = []
  const job: Job = {
    name,
    cron,
    catchUp,
    async run({ slot }) {
      slots.push(slot)
      await new Promise((resolve) => setTimeout(resolve, 5))
      return {}
    },
  }
  return { job, slots }
}

forEachDatabase('job catch-up', (get, dbName) => {
  const lines: LogFields[] = []
  const deps = (now: Date, env: Record<string, string> = {}): JobDeps => ({
    db: get().db,
    clock: { now: () => now },
    logger: createLogger({ level: 'debug', write: (l) => lines.push(JSON.parse(l)) }),
    config: loadConfig(env),
  })
  const tick = (job: Job, scheduledTime: Date, env: Record<string, string> = {}, worker = 'w') =>
    runDue([job], deps(new Date(scheduledTime.getTime() + 1000), env), {
      scheduledTime,
      timeZone: 'UTC',
      worker,
    })

  it('runs the slots missed since the last scheduled one, in order, before the current slot', async () => {
    const { job, slots } = recording(`every-10-${dbName}`, '*/10 * * * *')
    // the first tick has nothing to catch up from
    await tick(job, at('2026-11-25T01:00:00Z'))
    expect(iso(slots)).toEqual(['2026-11-25T01:00:00.000Z'])
    // a manual run in between does not count as a scheduled slot
    await runJobSlot(job, deps(at('2026-11-25T01:35:10Z')), {
      slot: at('2026-11-25T01:35:10Z'),
      trigger: 'manual',
      worker: 'cli',
    })
    slots.length = 0
    lines.length = 0
    const reports = await tick(job, at('2026-11-25T01:50:00Z'))
    expect(iso(slots)).toEqual([
      '2026-11-25T01:10:00.000Z',
      '2026-11-25T01:20:00.000Z',
      '2026-11-25T01:30:00.000Z',
      '2026-11-25T01:40:00.000Z',
      '2026-11-25T01:50:00.000Z',
    ])
    expect(reports.map((r) => r.status)).toEqual(['ran', 'ran', 'ran', 'ran', 'ran'])
    expect(lines.filter((l) => l.msg === 'job catching up')).toEqual([
      expect.objectContaining({
        level: 'info',
        job: job.name,
        slots: 4,
        from: '2026-11-25T01:10:00.000Z',
        to: '2026-11-25T01:40:00.000Z',
      }),
    ])
    // nothing is missed any more
    slots.length = 0
    await tick(job, at('2026-11-25T02:00:00Z'))
    expect(iso(slots)).toEqual(['2026-11-25T02:00:00.000Z'])
  })

  it("runs only the newest missed slot for a job whose run covers everything ('latest')", async () => {
    const { job, slots } = recording(`latest-${dbName}`, '*/10 * * * *', 'latest')
    await tick(job, at('2026-11-25T01:00:00Z'))
    slots.length = 0
    lines.length = 0
    // the current slot runs: nothing else is needed
    await tick(job, at('2026-11-25T01:50:00Z'))
    expect(iso(slots)).toEqual(['2026-11-25T01:50:00.000Z'])
    expect(lines.filter((l) => l.msg === 'job catching up')).toEqual([
      expect.objectContaining({ mode: 'latest', missed: 4, slots: 0 }),
    ])
  })

  it('runs each missed slot once however many processes catch up at once', async () => {
    const { job, slots } = recording(`racing-${dbName}`, '* * * * *')
    await tick(job, at('2026-11-25T03:00:00Z'))
    slots.length = 0
    const pools = dbName === 'postgres' ? [get().open(), get().open(), get().open()] : []
    await Promise.all(
      [0, 1, 2].map((i) =>
        runDue(
          [job],
          { ...deps(at('2026-11-25T03:30:01Z')), db: pools[i] ?? get().db },
          { scheduledTime: at('2026-11-25T03:30:00Z'), timeZone: 'UTC', worker: `p${i}` },
        ),
      ),
    )
    expect(slots).toHaveLength(30)
    expect(new Set(iso(slots)).size).toBe(30)
    const rows = await get()
      .db.selectFrom('job_runs')
      .select(['status'])
      .where('job', '=', job.name)
      .execute()
    expect(rows).toHaveLength(31)
    expect(rows.every((r) => r.status === 'succeeded')).toBe(true)
  })

  it('looks back at most JOB_CATCH_UP_HOURS (24 by default); 0 turns catch-up off', async () => {
    const { job, slots } = recording(`hourly-${dbName}`, '0 * * * *')
    await tick(job, at('2026-11-20T00:00:00Z'))
    slots.length = 0
    await tick(job, at('2026-11-22T00:00:00Z')) // two days later
    expect(slots).toHaveLength(25)
    expect(slots[0]!.toISOString()).toBe('2026-11-21T00:00:00.000Z')
    expect(slots.at(-1)!.toISOString()).toBe('2026-11-22T00:00:00.000Z')

    const off = recording(`hourly-off-${dbName}`, '0 * * * *')
    await tick(off.job, at('2026-11-20T00:00:00Z'), { JOB_CATCH_UP_HOURS: '0' })
    await tick(off.job, at('2026-11-20T05:00:00Z'), { JOB_CATCH_UP_HOURS: '0' })
    expect(iso(off.slots)).toEqual(['2026-11-20T00:00:00.000Z', '2026-11-20T05:00:00.000Z'])
  })

  it('with JOB_CATCH_UP_HOURS=0, still runs a due slot a tick postponed for its spent budget', async () => {
    const { job, slots } = recording(`postponed-${dbName}`, '*/10 * * * *')
    const off = { JOB_CATCH_UP_HOURS: '0' }
    // A run paused by an earlier invocation whose budget ran out.
    await get()
      .db.insertInto('job_runs')
      .values({
        job: job.name,
        slot: at('2026-11-20T01:00:00Z'),
        trigger: 'schedule',
        status: 'paused',
        worker: 'earlier',
        started_at: at('2026-11-20T01:00:00Z'),
      })
      .execute()
    // 01:10 is due, but resuming 01:00 spends the invocation's budget: 01:10 is postponed.
    const reports = await runDue([job], deps(at('2026-11-20T01:10:01Z'), off), {
      scheduledTime: at('2026-11-20T01:10:00Z'),
      timeZone: 'UTC',
      worker: 'w',
      budget: chunkBudget(0),
    })
    expect(reports.map((r) => [r.slot.toISOString(), r.status])).toEqual([
      ['2026-11-20T01:00:00.000Z', 'ran'],
    ])
    // The next minute's invocation runs it: the server was up, only the budget was short.
    await tick(job, at('2026-11-20T01:11:00Z'), off)
    expect(iso(slots)).toEqual(['2026-11-20T01:00:00.000Z', '2026-11-20T01:10:00.000Z'])
    // Slots missed while no process ran are still not caught up.
    await tick(job, at('2026-11-20T01:50:00Z'), off)
    expect(iso(slots).at(-1)).toBe('2026-11-20T01:50:00.000Z')
    expect(slots).toHaveLength(3)
  })

  it('gives a job its slot, and a manual run now rounded down to the minute', async () => {
    const { job, slots } = recording(`slot-${dbName}`, '0 9 * * *')
    await runDue([job], deps(at('2026-11-25T01:00:07Z')), {
      scheduledTime: at('2026-11-25T01:00:00Z'),
      timeZone: 'Asia/Shanghai',
      worker: 'w',
    })
    await runJobSlot(job, deps(at('2026-11-25T06:42:31.5Z')), {
      slot: at('2026-11-25T06:42:31.5Z'),
      trigger: 'manual',
      worker: 'cli',
    })
    expect(iso(slots)).toEqual(['2026-11-25T01:00:00.000Z', '2026-11-25T06:42:00.000Z'])
  })

  it('Node scheduler: catches up what was missed while no process ran, at start', async () => {
    // A fixed instant, and node-cron never firing: on the real clock an hour (16:00 UTC: local
    // midnight) passing mid-test made its slot due as well — four slots for three. The start's
    // catch-up alone is under test.
    const now = at('2026-11-18T04:30:00Z')
    const hour = Math.floor(now.getTime() / 3_600_000) * 3_600_000
    const { job, slots } = recording(`node-start-${dbName}`, '0 * * * *')
    await get()
      .db.insertInto('job_runs')
      .values({
        job: job.name,
        slot: new Date(hour - 3 * 3_600_000),
        trigger: 'schedule',
        status: 'succeeded',
        worker: 'before',
        started_at: new Date(hour - 3 * 3_600_000),
      })
      .execute()
    const schedule = scheduleJobs([job], deps(now), {
      timeZone: 'UTC',
      cron: { schedule: () => ({ stop() {} }) },
    })
    for (let i = 0; i < 100 && slots.length < 3; i++) await new Promise((r) => setTimeout(r, 50))
    await schedule.stop()
    expect(iso(slots)).toEqual(
      iso([1, 2, 3].map((h) => new Date(hour - 3 * 3_600_000 + h * 3_600_000))),
    )
  })
})
