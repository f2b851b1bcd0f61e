import { expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { cachedOpsStatus, readOpsStatus } from './ops-status.js'
import { enqueue } from './outbox.js'

forEachDatabase('vital signs', (get) => {
  it('reports the due outbox backlog by kind and each job’s freshness', async () => {
    const { db } = get()
    const now = new Date('2026-12-02T10:00:00Z')
    const clock = { now: () => now }
    const at = (secondsAgo: number) => new Date(now.getTime() - secondsAgo * 1000)
    await enqueue(
      db,
      [
        {
          appid: 'wxa',
          source: 's1',
          openid: 'o1',
          kind: 'custom',
          payload: {},
          notBefore: at(90),
        },
        {
          appid: 'wxa',
          source: 's2',
          openid: 'o2',
          kind: 'custom',
          payload: {},
          notBefore: at(10),
        },
        {
          appid: 'wxa',
          source: 's3',
          openid: 'o3',
          kind: 'template',
          payload: {},
          notBefore: at(5),
        },
        // Not due yet (quiet hours): not backlog.
        {
          appid: 'wxa',
          source: 's4',
          openid: 'o4',
          kind: 'template',
          payload: {},
          notBefore: at(-600),
        },
      ],
      now,
    )
    // a template quota pause in force, and one that has ended
    await db
      .insertInto('outbox_pauses')
      .values([
        {
          appid: 'wxa',
          api: 'template',
          paused_until: at(-3600),
          errcode: 45009,
          recorded_at: now,
        },
        { appid: 'wxa', api: 'custom', paused_until: at(10), errcode: 45009, recorded_at: now },
      ])
      .execute()
    await db
      .insertInto('job_runs')
      .values([
        {
          job: 'campaigns',
          slot: at(120),
          trigger: 'schedule',
          status: 'succeeded',
          worker: 'w',
          started_at: at(120),
        },
        {
          job: 'campaigns',
          slot: at(60),
          trigger: 'schedule',
          status: 'failed',
          worker: 'w',
          started_at: at(60),
        },
      ])
      .execute()
    const status = await readOpsStatus(db, clock, ['campaigns', 'recompute-segments'])
    expect(status.ok).toBe(true)
    expect(status.db.ok).toBe(true)
    expect(status.outbox).toEqual({
      backlog: 3,
      oldestDueSeconds: 90,
      byKind: {
        custom: { backlog: 2, oldestDueSeconds: 90 },
        template: { backlog: 1, oldestDueSeconds: 5 },
      },
      paused: [{ appid: 'wxa', api: 'template', until: at(-3600).toISOString() }],
    })
    expect(status.jobs).toEqual({
      lagSeconds: 60,
      sinceSuccess: { campaigns: 120, 'recompute-segments': null },
    })
  })

  it('shares one read among callers within the cache time', async () => {
    const { db } = get()
    let reads = 0
    const clock = {
      now: () => {
        reads++
        return new Date('2026-12-02T10:00:00Z')
      },
    }
    const status = cachedOpsStatus(db, clock, ['campaigns'], 60_000)
    await Promise.all([status(), status(), status()])
    await status()
    expect(reads).toBe(1)
  })
})
