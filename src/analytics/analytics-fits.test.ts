import { expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { addDays } from '../community/community-time.js'
import { analyticsFits } from './analytics-fits.js'

const APPID = 'wxf1t500000000001'
const DAY0 = '2026-10-01'
const day = (n: number) => addDays(DAY0, n)
const SIZE = 10_000
const retention = (k: number) => 0.1 + 0.9 * Math.exp(-0.3 * k)
const total = (t: number) => 500 * Math.exp(0.02 * t)

forEachDatabase('analytics fits from the rollups', (get) => {
  it('fits followers.total and the day cohorts, and forecasts 30 days', async () => {
    const db = get().db
    const figures = Array.from({ length: 40 }, (_, t) => t)
      .filter((t) => t !== 17) // a day never built: no figure, not a zero
      .flatMap((t) => [
        { appid: APPID, metric: 'followers.total', day: day(t), dim: '', value: total(t) },
        { appid: APPID, metric: 'followers.new', day: day(t), dim: '', value: 20 },
        { appid: APPID, metric: 'followers.new', day: day(t), dim: 'invite', value: 7 },
        { appid: APPID, metric: 'followers.unfollowed', day: day(t), dim: '', value: 5 },
      ])
    await db.insertInto('analytics_daily').values(figures).execute()
    const cells = Array.from({ length: 40 }, (_, c) => c).flatMap((c) =>
      Array.from({ length: 40 - c }, (_, k) => ({
        appid: APPID,
        grain: 'day' as const,
        cohort_start: day(c),
        source: '' as const, // all sources (per-source rows are not read here)
        age: k,
        cohort_size: SIZE,
        retained: Math.round(SIZE * retention(k)),
      })),
    )
    await db.insertInto('cohort_retention').values(cells).execute()

    const fits = await analyticsFits(db, { appid: APPID, from: day(0), to: day(39) })
    const g = fits.growth
    expect(g.series).toBe('followers.total')
    expect(g.days).toBe(39)
    expect(g.fit!.k).toBeCloseTo(0.02, 10)
    expect(g.fit!.r0).toBeCloseTo(500, 6)
    expect(g.fit!.n).toBe(39)
    // r and l pooled over days whose previous day has a total (not day 0, 17, 18)
    const base = Array.from({ length: 40 }, (_, t) => t)
      .filter((t) => t > 0 && t !== 17 && t !== 18)
      .reduce((a, t) => a + total(t - 1), 0)
    expect(g.rates!.days).toBe(37)
    expect(g.rates!.acquisition).toBeCloseTo((37 * 20) / base, 12)
    expect(g.rates!.loss).toBeCloseTo((37 * 5) / base, 12)
    expect(g.forecast!.level).toBe(0.95)
    expect(g.forecast!.points).toHaveLength(30)
    const first = g.forecast!.points[0]!
    expect(first.day).toBe(day(40))
    expect(first.t).toBe(40)
    expect(first.value).toBeCloseTo(total(40), 6)
    expect(g.forecast!.points.at(-1)!.day).toBe(day(69))

    const r = fits.retention
    expect(r.cohorts).toBe(40)
    expect(r.members).toBe(40 * SIZE)
    expect(r.points).toHaveLength(30)
    expect(r.points[6]).toEqual({
      t: 7,
      share: Math.round(SIZE * retention(7)) / SIZE,
      weight: 33 * SIZE,
    })
    expect(r.better).toBe('floor')
    expect(r.floor!.b).toBeCloseTo(0.1, 3)
    expect(r.floor!.m).toBeCloseTo(0.3, 3)
    expect(r.exponential!.method).toBe('log-ls')
    expect(r.observed.d30).toBeCloseTo(retention(30), 4)
    expect(fits.reference).toEqual({ d1: 0.25, d7: 0.15, d30: 0.08 })
    // JSON-ready: nothing lost on a round trip
    expect(JSON.parse(JSON.stringify(fits))).toEqual(fits)
  })

  it('returns no fit where there is nothing to fit', async () => {
    const fits = await analyticsFits(get().db, { appid: 'wx_none', from: day(0), to: day(9) })
    expect(fits.growth.fit).toBeNull()
    expect(fits.growth.forecast).toBeNull()
    expect(fits.growth.rates).toBeNull()
    expect(fits.retention.better).toBeNull()
    expect(fits.retention.points).toEqual([])
  })
})
