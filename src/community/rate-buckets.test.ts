/**
 * The database token bucket under clock skew: instances whose clocks differ share one bucket, and
 * one whose clock is behind must not move `updated_at` back (the next caller would see a longer
 * elapsed time and get a free refill).
 */
import { expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { takeFromBucket } from './rate-buckets.js'

forEachDatabase('the shared token bucket', (get) => {
  const start = new Date('2026-11-24T02:00:00Z')
  const rate = { perSecond: 1, burst: 10 }

  it('never refills more than the real elapsed time allows when one clock is 30 s behind', async () => {
    const db = get().db
    const key = 'skew:test'
    const behindMs = 30_000
    let granted = 0
    const stamps: number[] = []
    // two instances take turns, one second apart: the even turns' clock is right, the odd ones'
    // is 30 s behind
    for (let second = 0; second < 10; second++) {
      const real = start.getTime() + second * 1000
      const now = new Date(second % 2 === 0 ? real : real - behindMs)
      granted += (await takeFromBucket(db, key, 100, rate, now)).granted
      const row = await db
        .selectFrom('rate_buckets')
        .select('updated_at')
        .where('appid', '=', key)
        .executeTakeFirstOrThrow()
      stamps.push(row.updated_at.getTime())
    }
    // a full bucket at the start, then 9 s of refill at most
    expect(granted).toBeLessThanOrEqual(rate.burst + 9 * rate.perSecond)
    // updated_at never moved back
    expect(stamps).toEqual([...stamps].sort((a, b) => a - b))
  })

  it('a caller behind the last take waits for its clock instead of getting tokens early', async () => {
    const db = get().db
    const key = 'skew:behind'
    expect((await takeFromBucket(db, key, 10, rate, start)).granted).toBe(10)
    const behind = new Date(start.getTime() - 30_000)
    expect((await takeFromBucket(db, key, 1, rate, behind)).granted).toBe(0)
    // the right clock, 3 s later: 3 tokens, not 33 capped at 10
    const later = new Date(start.getTime() + 3000)
    expect((await takeFromBucket(db, key, 10, rate, later)).granted).toBe(3)
  })
})
