/**
 * The invite funnel's counted stages on every test database: the sums of the period's daily
 * `invites.*` figures, built or read live — and unknown (null), never a short count, when a day
 * of the period is a gap the nightly job has not built (series.ts `daySources`).
 */
import { expect, it } from 'vitest'
import { forEachDatabase } from '../../../test/databases.js'
import type { LiveReader } from '../../analytics/series.js'
import { FUNNEL_METRICS, inviteFunnel } from './invite-funnel.js'

const TZ = 'Asia/Shanghai'
/** 02:00 in Shanghai on 2026-11-10. */
const NOW = new Date('2026-11-09T18:00:00Z')

type Figures = Record<string, Record<string, number>>

/** A day's funnel figures (qr_issued, follows, attributed, qualified). */
const funnelDay = (qr: number, follows: number, attributed: number, qualified: number) => ({
  [FUNNEL_METRICS.qr_issued]: qr,
  [FUNNEL_METRICS.follows]: follows,
  [FUNNEL_METRICS.attributed]: attributed,
  [FUNNEL_METRICS.qualified]: qualified,
})

/** A live reader answering `figures[day]` (metric → value, dim ''). */
const liveOf =
  (figures: Figures): LiveReader =>
  async (_appid, day) =>
    Object.entries(figures[day] ?? {}).map(([metric, value]) => ({ metric, dim: '', value }))

forEachDatabase('the invite funnel', (get) => {
  const db = () => get().db
  /** Days built by the job: their `analytics_days` row and their figures. */
  const build = async (appid: string, days: Figures) => {
    const entries = Object.entries(days)
    await db()
      .insertInto('analytics_days')
      .values(entries.map(([day]) => ({ appid, day, built_at: NOW })))
      .execute()
    const rows = entries.flatMap(([day, figures]) =>
      Object.entries(figures).map(([metric, value]) => ({ appid, metric, day, value })),
    )
    await db().insertInto('analytics_daily').values(rows).execute()
  }
  const counts = async (appid: string, from: string, to: string, live: Figures = {}) =>
    (await inviteFunnel(db(), { appid, from, to, now: NOW, timeZone: TZ, live: liveOf(live) })).map(
      (s) => [s.stage, s.members],
    )

  it('sums the built and live days; a period with a day not built is unknown, not short of it', async () => {
    const appid = 'wxfunnelgap00000001'
    // 11-01 and 11-03 built; 11-02 is a gap (before the last built day: not read live)
    await build(appid, { '2026-11-01': funnelDay(5, 3, 2, 1), '2026-11-03': funnelDay(4, 2, 2, 2) })
    const live = { '2026-11-04': funnelDay(1, 1, 1, 0) }
    expect(await counts(appid, '2026-11-01', '2026-11-01')).toEqual([
      ['qr_issued', 5],
      ['follows', 3],
      ['attributed', 2],
      ['qualified', 1],
    ])
    // 11-03 built, 11-04 read live (after the last built day)
    expect(await counts(appid, '2026-11-03', '2026-11-04', live)).toEqual([
      ['qr_issued', 5],
      ['follows', 3],
      ['attributed', 3],
      ['qualified', 2],
    ])
    // 11-02 has no figure: every counted stage is unknown
    expect(await counts(appid, '2026-11-01', '2026-11-04', live)).toEqual([
      ['qr_issued', null],
      ['follows', null],
      ['attributed', null],
      ['qualified', null],
    ])
  })
})
