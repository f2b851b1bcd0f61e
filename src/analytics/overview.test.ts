/**
 * The overview's change column compares two whole days (yesterday against the day a week before
 * it), never today's partial figure against a whole day; a day the nightly job has not built yet
 * is read live, and one it cannot read is null, never 0 — on every test database.
 */
import { expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { addDays } from '../community/community-time.js'
import type { LiveReader } from './series.js'
import { readOverview } from './series.js'

forEachDatabase('the overview', (get) => {
  /** Days the job built: their `analytics_days` row and `activity.dau`. */
  const built = async (appid: string, dau: Record<string, number>) => {
    const days = Object.entries(dau)
    await get()
      .db.insertInto('analytics_days')
      .values(days.map(([day]) => ({ appid, day, built_at: new Date() })))
      .execute()
    await get()
      .db.insertInto('analytics_daily')
      .values(days.map(([day, value]) => ({ appid, metric: 'activity.dau', day, value })))
      .execute()
  }
  /** A live reader answering `dau[day]` as the day's DAU, recording the days asked. */
  const liveDau =
    (dau: Record<string, number>, asked: string[] = []): LiveReader =>
    async (_appid, day) => {
      asked.push(day)
      return day in dau ? [{ metric: 'activity.dau', dim: '', value: dau[day]! }] : []
    }

  it('shows today live and the change of yesterday against the day a week before it', async () => {
    const appid = 'wx_overview_test'
    const now = new Date('2026-11-20T01:00:00Z') // 09:00 in Shanghai: today has barely started
    const today = '2026-11-20'
    await built(appid, {
      [addDays(today, -1)]: 110,
      [addDays(today, -7)]: 120,
      [addDays(today, -8)]: 100,
    })
    const live = async () => [{ metric: 'activity.dau', dim: '', value: 9 }]
    const { metrics } = await readOverview(get().db, {
      appid,
      now,
      timeZone: 'Asia/Shanghai',
      live,
    })
    expect(metrics.find((m) => m.metric === 'activity.dau')).toEqual({
      metric: 'activity.dau',
      unit: 'count',
      today: 9,
      yesterday: 110,
      sameDayLastWeek: 120,
      // (110 − 100) / 100, not (9 − 120) / 120
      yesterdayVsWeekBefore: 0.1,
    })
    // With no day a week before yesterday there is nothing to compare with.
    expect(metrics.find((m) => m.metric === 'followers.new')?.yesterdayVsWeekBefore).toBeNull()
  })

  it('reads yesterday live before the nightly job has built it, not as 0 (−100 %)', async () => {
    const appid = 'wx_overview_lag'
    const now = new Date('2026-11-09T18:00:00Z') // 02:00 on 11-10 in Shanghai; the job runs at 04:00
    await built(appid, { '2026-11-02': 100, '2026-11-03': 120, '2026-11-08': 95 })
    const asked: string[] = []
    const overview = await readOverview(get().db, {
      appid,
      now,
      timeZone: 'Asia/Shanghai',
      live: liveDau({ '2026-11-09': 110, '2026-11-10': 4 }, asked),
    })
    expect(overview.metrics.find((m) => m.metric === 'activity.dau')).toEqual({
      metric: 'activity.dau',
      unit: 'count',
      today: 4,
      yesterday: 110,
      sameDayLastWeek: 120,
      yesterdayVsWeekBefore: 0.1,
    })
    expect(overview.asOf).toBe('2026-11-08')
    // only the days after the last built one are read live
    expect([...new Set(asked)].sort()).toEqual(['2026-11-09', '2026-11-10'])
  })

  it('after a week of failed builds, reads the 8 days after the last built one live and leaves the older ones null', async () => {
    const appid = 'wx_overview_stalled'
    const now = new Date('2026-11-09T18:00:00Z') // 02:00 on 11-10
    await built(appid, { '2026-10-31': 80 })
    const overview = await readOverview(get().db, {
      appid,
      now,
      timeZone: 'Asia/Shanghai',
      live: liveDau({ '2026-11-02': 100, '2026-11-03': 120, '2026-11-09': 110, '2026-11-10': 4 }),
    })
    // 11-03 (a week ago) is among the 8 days read live; 11-02 is not, and is not built: null
    expect(overview.metrics.find((m) => m.metric === 'activity.dau')).toEqual({
      metric: 'activity.dau',
      unit: 'count',
      today: 4,
      yesterday: 110,
      sameDayLastWeek: 120,
      yesterdayVsWeekBefore: null,
    })
    expect(overview.asOf).toBe('2026-10-31')
  })
})
