/**
 * The overview's change column compares two whole days (yesterday against the day a week before
 * it), never today's partial figure against a whole day — on every test database.
 */
import { expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { addDays } from '../community/community-time.js'
import { readOverview } from './series.js'

forEachDatabase('the overview', (get) => {
  it('shows today live and the change of yesterday against the day a week before it', async () => {
    const appid = 'wx_overview_test'
    const now = new Date('2026-11-20T01:00:00Z') // 09:00 in Shanghai: today has barely started
    const today = '2026-11-20'
    const daily = (day: string, value: number) => ({ appid, metric: 'activity.dau', day, value })
    await get()
      .db.insertInto('analytics_daily')
      .values([
        daily(addDays(today, -1), 110),
        daily(addDays(today, -7), 120),
        daily(addDays(today, -8), 100),
      ])
      .execute()
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
})
