import { expect, it } from 'vitest'
import { chunkBudget } from '../src/budget.js'
import { audit } from '../src/community/audit-log.js'
import { loadConfig } from '../src/config.js'
import { silentLogger } from '../src/logger.js'
import { forEachDatabase } from '../test/databases.js'
import { jobs } from './index.js'
import { pruneJobRuns, pruneSteps, retentionJob } from './retention.js'

const DAY = 86_400_000

forEachDatabase('retention', (get, dbName) => {
  const now = new Date('2026-11-25T20:47:00Z')
  const ago = (days: number) => new Date(now.getTime() - days * DAY)
  const add = (
    job: string,
    slot: Date,
    o: {
      trigger?: 'schedule' | 'manual'
      status?: 'running' | 'paused' | 'succeeded' | 'failed'
      lease?: Date
    } = {},
  ) =>
    get()
      .db.insertInto('job_runs')
      .values({
        job,
        slot,
        trigger: o.trigger ?? 'schedule',
        status: o.status ?? 'succeeded',
        worker: 'w',
        started_at: slot,
        lease_until: o.lease ?? null,
      })
      .execute()
  const left = async (job: string) =>
    (
      await get()
        .db.selectFrom('job_runs')
        .select('slot')
        .where('job', '=', job)
        .orderBy('slot')
        .execute()
    ).map((r) => Math.round((now.getTime() - r.slot.getTime()) / DAY))

  it('deletes finished job runs older than the retention in batches, keeping each newest scheduled run', async () => {
    const a = `a-${dbName}`
    const b = `b-${dbName}`
    for (const days of [45, 40, 35, 31, 29, 1]) await add(a, ago(days))
    await add(a, ago(50), { status: 'failed' })
    await add(a, ago(60), { status: 'running', lease: ago(60) }) // its process is long gone
    await add(a, ago(33), { status: 'running', lease: new Date(now.getTime() + 60_000) }) // alive
    await add(b, ago(90)) // b's newest scheduled run: kept whatever its age
    await add(b, ago(80), { trigger: 'manual' })
    await add(b, ago(70), { trigger: 'manual' })
    const deleted = await pruneJobRuns(get().db, { before: ago(30), now, batchSize: 2 })
    expect(deleted).toBe(8)
    expect(await left(a)).toEqual([33, 29, 1])
    expect(await left(b)).toEqual([90])
    expect(await pruneJobRuns(get().db, { before: ago(30), now, batchSize: 2 })).toBe(0)
  })

  it('is the nightly `retention` job, reading JOB_RUNS_RETENTION_DAYS from its slot', async () => {
    expect(jobs).toContain(retentionJob)
    const c = `c-${dbName}`
    for (const days of [12, 8, 3]) await add(c, ago(days))
    const result = await retentionJob.run({
      db: get().db,
      clock: { now: () => new Date(now.getTime() + 3_600_000) },
      logger: silentLogger,
      config: loadConfig({ JOB_RUNS_RETENTION_DAYS: '7' }),
      slot: now,
    })
    expect(result.jobRuns).toBeGreaterThanOrEqual(2)
    expect(await left(c)).toEqual([3])
  })

  it('deletes audit entries on their own clocks: AUDIT_LOG_RETENTION_DAYS, AUDIT_REFUSED_RETENTION_DAYS', async () => {
    const appid = `wxretention_${dbName}`
    for (const [action, days] of [
      ['points.grant', 91],
      ['points.grant', 89],
      ['refused', 8],
      ['refused', 6],
    ] as const)
      await audit(get().db, {
        appid,
        actor: 'op1',
        action,
        target: 't',
        details: {},
        now: ago(days),
      })
    const result = await retentionJob.run({
      db: get().db,
      clock: { now: () => new Date(now.getTime() + 3_600_000) },
      logger: silentLogger,
      config: loadConfig({ AUDIT_LOG_RETENTION_DAYS: '90', AUDIT_REFUSED_RETENTION_DAYS: '7' }),
      slot: now,
    })
    expect(result.auditLog).toBe(2)
    const kept = await get()
      .db.selectFrom('audit_log')
      .select(['action', 'created_at'])
      .where('appid', '=', appid)
      .orderBy('created_at')
      .execute()
    expect(kept).toEqual([
      { action: 'points.grant', created_at: ago(89) },
      { action: 'refused', created_at: ago(6) },
    ])
  })

  it('with a spent budget stops after a step and says more; the resumed run does the rest', async () => {
    const ctx = {
      db: get().db,
      clock: { now: () => new Date(now.getTime() + 3_600_000) },
      logger: silentLogger,
      config: loadConfig({ JOB_RUNS_RETENTION_DAYS: '7' }),
      slot: now,
    }
    const first = await retentionJob.run({ ...ctx, budget: chunkBudget(0) })
    expect(Object.keys(first)).toEqual(['jobRuns', 'more'])
    const rest = await retentionJob.run(ctx)
    expect(Object.keys(rest)).toEqual(pruneSteps.map((p) => p.name))
  })

  it('closes the runs no tick will continue — paused, or dead, of a job no longer in the job list — a day after their slot', async () => {
    const gone = `gone-${dbName}`
    await add(gone, ago(3), { status: 'paused' }) // removed from the list while paused
    await add(`${gone}-dead`, ago(2), { status: 'running', lease: ago(2) }) // its process died
    await add(`${gone}-alive`, ago(2), {
      status: 'running',
      lease: new Date(now.getTime() + 7_200_000),
    })
    // Within a day: maybe a job of a newer version (a rolling deploy); its ticks will resume it.
    await add(`${gone}-young`, new Date(now.getTime() - 3_600_000), { status: 'paused' })
    // A job in the list: its next tick resumes it.
    await add(retentionJob.name, ago(3), { status: 'paused' })
    const result = await retentionJob.run({
      db: get().db,
      clock: { now: () => new Date(now.getTime() + 3_600_000) },
      logger: silentLogger,
      config: loadConfig({}),
      slot: now,
    })
    expect(result.orphanedRuns).toBe(2)
    const rows = await get()
      .db.selectFrom('job_runs')
      .select(['job', 'status', 'error', 'finished_at'])
      .where((eb) => eb.or([eb('job', 'like', `${gone}%`), eb('job', '=', retentionJob.name)]))
      .orderBy('job')
      .execute()
    expect(rows.map((r) => [r.job, r.status])).toEqual([
      [gone, 'failed'],
      [`${gone}-alive`, 'running'],
      [`${gone}-dead`, 'failed'],
      [`${gone}-young`, 'paused'],
      [retentionJob.name, 'paused'],
    ])
    expect(rows[0]!.error).toMatch(/^abandoned: .*no longer in the job list/)
    expect(rows[0]!.finished_at).not.toBeNull()
  })
})
