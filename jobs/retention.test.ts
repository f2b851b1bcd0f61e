import { expect, it } from 'vitest'
import { chunkBudget } from '../src/budget.js'
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
      status?: 'running' | 'succeeded' | 'failed'
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
})
