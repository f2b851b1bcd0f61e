/**
 * Reading the rollups as series, on every test database: a day the nightly job has not built yet
 * is read live (the days after the last built one, at most `MAX_LIVE_DAYS`), any other unbuilt day
 * is null — never 0; a ratio over a week or a month is the ratio of its summed parts, and a day
 * without a denominator has no value.
 */
import { expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import {
  daysBetween,
  LIVE_COST_FACTOR,
  LIVE_MAX_KEEP_MS,
  type LiveReader,
  liveToday,
  METRICS,
  readSeries,
} from './series.js'

const TZ = 'Asia/Shanghai'
/** 02:00 in Shanghai on 2026-11-10: the job (04:00) has not built 11-09 yet. */
const BEFORE_THE_JOB = new Date('2026-11-09T18:00:00Z')

type Figures = Record<string, Record<string, number>>

/** A live reader answering `figures[day]` (metric → value, dim ''), recording the days asked. */
const liveOf = (figures: Figures, asked: string[] = []): LiveReader => {
  return async (_appid, day) => {
    asked.push(day)
    return Object.entries(figures[day] ?? {}).map(([metric, value]) => ({ metric, dim: '', value }))
  }
}

it('declares every ratio by its parts, metrics of the catalogue', () => {
  for (const [metric, spec] of Object.entries(METRICS)) {
    if (spec.unit === 'ratio') expect(spec.agg, metric).toBe('ratio')
    expect(spec.ratio !== undefined, metric).toBe(spec.agg === 'ratio')
    for (const part of [...(spec.ratio ?? []), ...(spec.nonzero ?? [])])
      if (part !== null) expect(METRICS, `${metric}: ${part}`).toHaveProperty([part])
  }
  expect(METRICS['commerce.aov_fen']).toMatchObject({
    unit: 'fen',
    agg: 'ratio',
    ratio: ['commerce.gmv_fen', 'commerce.orders'],
  })
})

forEachDatabase('series from the rollups', (get) => {
  const db = () => get().db
  /** Days built by the job: their `analytics_days` row and their figures (metric → value). */
  const build = async (appid: string, days: Figures) => {
    const entries = Object.entries(days)
    await db()
      .insertInto('analytics_days')
      .values(entries.map(([day]) => ({ appid, day, built_at: new Date() })))
      .execute()
    const rows = entries.flatMap(([day, figures]) =>
      Object.entries(figures).map(([metric, value]) => ({ appid, metric, day, value })),
    )
    if (rows.length > 0) await db().insertInto('analytics_daily').values(rows).execute()
  }
  const series = (
    appid: string,
    q: {
      metric: string
      from: string
      to: string
      granularity?: 'day' | 'week' | 'month'
      now?: Date
      live?: LiveReader
    },
  ) =>
    readSeries(db(), {
      appid,
      timeZone: TZ,
      granularity: 'day',
      now: BEFORE_THE_JOB,
      live: liveOf({}),
      ...q,
    })

  it("keeps a family's live figures LIVE_COST_FACTOR times as long as reading them took", async () => {
    const appid = 'wxseriescost0000001'
    const member = await db()
      .insertInto('members')
      .values({ appid, openid: 'o_cost', first_seen_at: BEFORE_THE_JOB, points_balance: 10 })
      .returning('id')
      .executeTakeFirstOrThrow()
    // A clock that moves 1 s each time it is read: the first read takes 1 s.
    let t = 0
    const now = () => {
      t += 1000
      return t - 1000
    }
    /** points.outstanding of today as `live` reads it. */
    const outstandingBy = (live: LiveReader) => async () =>
      (await live(appid, '2026-11-10', TZ, ['points'])).find(
        (f) => f.metric === 'points.outstanding' && f.dim === '',
      )?.value
    const outstanding = outstandingBy(liveToday(db(), 100, undefined, now))
    expect(await outstanding()).toBe(10)
    await db()
      .updateTable('members')
      .set({ points_balance: 25 })
      .where('id', '=', member.id)
      .execute()
    // 2 s after that read began: past the reader's 100 ms, within 20 × 1 s — as read then
    expect(await outstanding()).toBe(10)
    t = LIVE_COST_FACTOR * 1000 + 1
    expect(await outstanding()).toBe(25)
    // …and never longer than LIVE_MAX_KEEP_MS: a read that took 10 s (20 × 10 s would be 200 s)
    let slow = 0
    const value = outstandingBy(
      liveToday(db(), 100, undefined, () => {
        slow += 10_000
        return slow - 10_000
      }),
    )
    expect(await value()).toBe(25) // began at 0, done at 10 s
    await db()
      .updateTable('members')
      .set({ points_balance: 30 })
      .where('id', '=', member.id)
      .execute()
    slow = LIVE_MAX_KEEP_MS + 1
    expect(await value()).toBe(30)
    // 0: never kept, however long a read takes
    const read = outstandingBy(liveToday(db(), 0, undefined, now))
    expect(await read()).toBe(30)
    await db()
      .updateTable('members')
      .set({ points_balance: 40 })
      .where('id', '=', member.id)
      .execute()
    expect(await read()).toBe(40)
  })

  it('reads a day the job has not built yet live, and counts a day before the first build as empty', async () => {
    const appid = 'wx_series_lag'
    await build(
      appid,
      Object.fromEntries(
        daysBetween('2026-11-01', '2026-11-08').map((d) => [d, { 'activity.dau': 100 }]),
      ),
    )
    const asked: string[] = []
    const live = liveOf(
      { '2026-11-09': { 'activity.dau': 90 }, '2026-11-10': { 'activity.dau': 7 } },
      asked,
    )
    const s = await series(appid, {
      metric: 'activity.dau',
      from: '2026-10-31',
      to: '2026-11-10',
      live,
    })
    // 11-09 is over but not built: its figure is read live, not 0
    expect(s.points.at(-2)).toEqual({ start: '2026-11-09', value: 90, partial: false })
    expect(s.points.at(-1)).toEqual({ start: '2026-11-10', value: 7, partial: true })
    expect(s.points.at(1)).toEqual({ start: '2026-11-01', value: 100, partial: false })
    // nothing was built before 11-01: the account's data begins there, an empty day (0)
    expect(s.points.at(0)).toEqual({ start: '2026-10-31', value: 0, partial: false })
    expect(asked.sort()).toEqual(['2026-11-09', '2026-11-10'])
    expect(s.asOf).toBe('2026-11-08')
    // weeks average their days in the range (DAU), the live ones included (10-31 empty, 11-01 100)
    const weekly = await series(appid, {
      metric: 'activity.dau',
      from: '2026-10-31',
      to: '2026-11-10',
      granularity: 'week',
      live,
    })
    expect(weekly.points).toEqual([
      { start: '2026-10-26', value: 50, partial: false },
      { start: '2026-11-02', value: 100, partial: false },
      { start: '2026-11-09', value: 48.5, partial: true },
    ])
  })

  it('reads at most 8 days live after the last built one (a failed job); older ones are null', async () => {
    const appid = 'wx_series_stalled'
    await build(appid, { '2026-10-20': { 'followers.new': 5 } })
    const asked: string[] = []
    const figures = Object.fromEntries(
      daysBetween('2026-10-21', '2026-11-10').map((d) => [d, { 'followers.new': 3 }]),
    )
    const s = await series(appid, {
      metric: 'followers.new',
      from: '2026-10-20',
      to: '2026-11-10',
      live: liveOf(figures, asked),
    })
    const value = (day: string) => s.points.find((p) => p.start === day)?.value
    expect(value('2026-10-20')).toBe(5)
    for (const day of daysBetween('2026-10-21', '2026-11-02')) expect(value(day), day).toBeNull()
    for (const day of daysBetween('2026-11-03', '2026-11-10')) expect(value(day), day).toBe(3)
    expect(asked.sort()).toEqual(daysBetween('2026-11-03', '2026-11-10'))
    expect(s.asOf).toBe('2026-10-20')
  })

  /** November 2026: one order of 10,000 fen on Monday 11-02 from a returning payer, none after. */
  const seedNovember = async (appid: string) => {
    const none = {
      'activity.dau': 10,
      'commerce.orders': 0,
      'commerce.gmv_fen': 0,
      'commerce.paying_members': 0,
      // what the commerce family writes for a day without orders
      'commerce.aov_fen': 0,
      'commerce.arppu_fen': 0,
      'commerce.arpu_fen': 0,
      'commerce.repeat_rate': 0,
    }
    await build(
      appid,
      Object.fromEntries(
        daysBetween('2026-11-01', '2026-11-30').map((d) => [
          d,
          d === '2026-11-02'
            ? {
                ...none,
                'commerce.orders': 1,
                'commerce.gmv_fen': 10_000,
                'commerce.paying_members': 1,
                'commerce.aov_fen': 10_000,
                'commerce.arppu_fen': 10_000,
                'commerce.arpu_fen': 1000,
                'commerce.repeat_rate': 1,
              }
            : none,
        ]),
      ),
    )
  }

  it('gives a ratio over a week or a month as the ratio of its summed parts', async () => {
    const appid = 'wx_series_ratio'
    await seedNovember(appid)
    const december = new Date('2026-12-05T02:00:00Z')
    const nov = { from: '2026-11-01', to: '2026-11-30', now: december }
    const weekly = await series(appid, { ...nov, metric: 'commerce.aov_fen', granularity: 'week' })
    expect(weekly.points.find((p) => p.start === '2026-11-02')?.value).toBe(10_000)
    // the weeks without an order have no average order value
    expect(weekly.points.find((p) => p.start === '2026-11-09')?.value).toBeNull()
    const daily = await series(appid, { ...nov, metric: 'commerce.aov_fen' })
    expect(daily.points.find((p) => p.start === '2026-11-02')?.value).toBe(10_000)
    expect(daily.points.find((p) => p.start === '2026-11-03')?.value).toBeNull()
    const monthly = (metric: string) =>
      series(appid, { ...nov, metric, granularity: 'month' }).then((s) => s.points)
    expect(await monthly('commerce.arppu_fen')).toEqual([
      { start: '2026-11-01', value: 10_000, partial: false },
    ])
    // Σ GMV ÷ Σ DAU (300 member-days)
    expect((await monthly('commerce.arpu_fen'))[0]?.value).toBeCloseTo(10_000 / 300, 10)
    // the repeat payers (not stored) are recovered from the day's rate × its paying members
    expect((await monthly('commerce.repeat_rate'))[0]?.value).toBe(1)
  })

  it('adds the live days into a ratio the same way', async () => {
    const appid = 'wx_series_ratio_live'
    await build(appid, {
      '2026-11-30': { 'commerce.orders': 0, 'commerce.gmv_fen': 0, 'commerce.aov_fen': 0 },
      '2026-12-01': {
        'commerce.orders': 1,
        'commerce.gmv_fen': 10_000,
        'commerce.aov_fen': 10_000,
      },
    })
    const weekly = await series(appid, {
      metric: 'commerce.aov_fen',
      from: '2026-11-30',
      to: '2026-12-02',
      granularity: 'week',
      now: new Date('2026-12-02T02:00:00Z'),
      live: liveOf({
        '2026-12-02': {
          'commerce.orders': 3,
          'commerce.gmv_fen': 2000,
          'commerce.aov_fen': 666.67,
        },
      }),
    })
    expect(weekly.points).toEqual([{ start: '2026-11-30', value: 3000, partial: true }])
  })

  it('recovers a denominator the rollup does not store, and K from its summed parts', async () => {
    const appid = 'wx_series_ratio_parts'
    await build(appid, {
      // 6 messages from 2 members; K = (2 ÷ 1) × (1 ÷ 2) × (1 ÷ 3)
      '2026-11-02': {
        'activity.dau': 3,
        'activity.messages': 6,
        'activity.messages_per_active': 3,
        'invites.sharers': 1,
        'invites.attributed': 2,
        'invites.qualified': 1,
        'invites.k_factor': 1 / 3,
      },
      // 1 message from 1 member; an invite of an earlier day qualifies, nobody shared: K has no
      // value that day (stored as 0)
      '2026-11-03': {
        'activity.dau': 2,
        'activity.messages': 1,
        'activity.messages_per_active': 1,
        'invites.sharers': 0,
        'invites.attributed': 0,
        'invites.qualified': 1,
        'invites.k_factor': 0,
      },
    })
    const q = {
      from: '2026-11-02',
      to: '2026-11-03',
      now: new Date('2026-11-04T02:00:00Z'),
    }
    const weekly = (metric: string) =>
      series(appid, { ...q, metric, granularity: 'week' }).then((s) => s.points[0]?.value)
    // 7 messages ÷ 3 members who sent any, not the mean of 3 and 1
    expect(await weekly('activity.messages_per_active')).toBeCloseTo(7 / 3, 10)
    // i × conv × c over the week: (2 ÷ 1) × (2 ÷ 2) × (1 ÷ 5)
    expect(await weekly('invites.k_factor')).toBeCloseTo(0.4, 10)
    const k = await series(appid, { ...q, metric: 'invites.k_factor' })
    expect(k.points[0]?.value).toBeCloseTo(1 / 3, 10)
    expect(k.points[1]?.value).toBeNull()
  })
})
