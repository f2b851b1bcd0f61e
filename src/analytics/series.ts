/**
 * Reading the rollups: a metric's series over a range of community days at day, week or month
 * granularity, zero-filled, with today's partial figure read live; and the overview (today vs.
 * yesterday vs. the same day last week). Everything comes from `analytics_daily` by its primary
 * key (appid, metric, day, dim) — never from raw facts — except today's live figures.
 */
import type { Kysely } from 'kysely'
import { addDays, localDay, weekStart } from '../community/community-time.js'
import type { Database } from '../db/schema.js'
import type { MetricSpec } from './families/day-scope.js'
import { CATALOGUE } from './families/index.js'
import { computeDay, type DailyFigure, familyOf } from './rollup.js'

export type { Aggregation } from './families/day-scope.js'

/**
 * The metrics the rollup writes, their unit, how they aggregate and what they count: the
 * families' catalogue (src/analytics/families/index.ts), so a metric cannot be written and not
 * served.
 */
export const METRICS: Record<string, MetricSpec> = Object.fromEntries(
  Object.entries(CATALOGUE).map(([metric, { unit, agg, about }]) => [metric, { unit, agg, about }]),
)

export type Granularity = 'day' | 'week' | 'month'

export interface SeriesPoint {
  /** The first community day of the period. */
  start: string
  value: number
  /** True for a period that includes today (its figure is still growing). */
  partial: boolean
}

export interface Series {
  metric: string
  dim: string
  unit: string
  granularity: Granularity
  from: string
  to: string
  points: SeriesPoint[]
}

/** The first day of `day`'s period (weeks start on Monday). */
export function periodStart(day: string, g: Granularity): string {
  if (g === 'day') return day
  if (g === 'month') return `${day.slice(0, 7)}-01`
  return weekStart(day)
}

/** Every community day from `from` to `to`, inclusive. */
export function daysBetween(from: string, to: string): string[] {
  const out: string[] = []
  for (let d = from; d <= to; d = addDays(d, 1)) out.push(d)
  return out
}

/** Reads today's figures of some families live. */
export type LiveReader = (
  appid: string,
  day: string,
  timeZone: string,
  families: readonly string[],
) => Promise<DailyFigure[]>

/**
 * Today's figures, read live per family and cached for a few seconds per account, so a
 * dashboard's several series cost one read of each family.
 */
export function liveToday(db: Kysely<Database>, ttlMs = 5000): LiveReader {
  const cache = new Map<string, { at: number; value: Promise<DailyFigure[]> }>()
  const one = (appid: string, day: string, timeZone: string, family: string) => {
    const key = `${appid}\n${day}\n${family}`
    const hit = cache.get(key)
    if (hit && Date.now() - hit.at < ttlMs) return hit.value
    const value = computeDay(db, { appid, day, timeZone, live: true }, { families: [family] })
    cache.set(key, { at: Date.now(), value })
    value.catch(() => cache.delete(key))
    return value
  }
  return async (appid, day, timeZone, families) =>
    (await Promise.all([...new Set(families)].map((f) => one(appid, day, timeZone, f)))).flat()
}

/** A metric's series, zero-filled, today's period partial. */
export async function readSeries(
  db: Kysely<Database>,
  q: {
    appid: string
    metric: string
    dim?: string
    from: string
    to: string
    granularity: Granularity
    now: Date
    timeZone: string
    live: LiveReader
  },
): Promise<Series> {
  const spec = METRICS[q.metric]
  if (!spec) throw new RangeError(`unknown metric ${q.metric}`)
  const dim = q.dim ?? ''
  const today = localDay(q.now, q.timeZone)
  const rows = await db
    .selectFrom('analytics_daily')
    .select(['day', 'value'])
    .where('appid', '=', q.appid)
    .where('metric', '=', q.metric)
    .where('day', '>=', q.from)
    .where('day', '<=', [q.to, addDays(today, -1)].sort()[0]!)
    .where('dim', '=', dim)
    .execute()
  const byDay = new Map<string, number>()
  for (const r of rows) byDay.set(dayText(r.day), Number(r.value))
  if (q.from <= today && today <= q.to) {
    const figures = await q.live(q.appid, today, q.timeZone, [familyOf(q.metric)])
    const f = figures.find((x) => x.metric === q.metric && x.dim === dim)
    byDay.set(today, f?.value ?? 0)
  }
  const periods = new Map<string, { values: number[]; last: number; partial: boolean }>()
  for (const day of daysBetween(q.from, [q.to, today].sort()[0]!)) {
    const start = periodStart(day, q.granularity)
    const p = periods.get(start) ?? { values: [], last: 0, partial: false }
    const value = byDay.get(day) ?? 0
    p.values.push(value)
    p.last = value
    if (day === today) p.partial = true
    periods.set(start, p)
  }
  const points = [...periods].map(([start, p]) => ({
    start,
    value:
      spec.agg === 'sum'
        ? p.values.reduce((a, b) => a + b, 0)
        : spec.agg === 'avg'
          ? p.values.reduce((a, b) => a + b, 0) / p.values.length
          : p.last,
    partial: p.partial,
  }))
  return {
    metric: q.metric,
    dim,
    unit: spec.unit,
    granularity: q.granularity,
    from: q.from,
    to: q.to,
    points,
  }
}

/** The overview's metrics: what an operator checks first each morning. */
export const OVERVIEW_METRICS = [
  'followers.new',
  'followers.net',
  'followers.total',
  'activity.dau',
  'checkins.participants',
  'points.issued',
  'points.spent',
  'commerce.gmv_fen',
  'commerce.orders',
] as const

/**
 * Today (live, partial) vs. yesterday vs. the same day last week, per overview metric. The change
 * is yesterday's against the day a week before it: two whole days (today's partial figure
 * against a whole day would read as a fall every morning).
 */
export async function readOverview(
  db: Kysely<Database>,
  q: {
    appid: string
    now: Date
    timeZone: string
    live: LiveReader
  },
) {
  const today = localDay(q.now, q.timeZone)
  const yesterday = addDays(today, -1)
  const lastWeek = addDays(today, -7)
  const weekBeforeYesterday = addDays(today, -8)
  const rows = await db
    .selectFrom('analytics_daily')
    .select(['metric', 'day', 'value'])
    .where('appid', '=', q.appid)
    .where('metric', 'in', [...OVERVIEW_METRICS])
    .where('dim', '=', '')
    .where('day', 'in', [yesterday, lastWeek, weekBeforeYesterday])
    .execute()
  const live = await q.live(q.appid, today, q.timeZone, OVERVIEW_METRICS.map(familyOf))
  const value = (metric: string, day: string) =>
    day === today
      ? (live.find((f) => f.metric === metric && f.dim === '')?.value ?? 0)
      : Number(rows.find((r) => r.metric === metric && dayText(r.day) === day)?.value ?? 0)
  return {
    today,
    metrics: OVERVIEW_METRICS.map((metric) => {
      const t = value(metric, today)
      const y = value(metric, yesterday)
      const w = value(metric, lastWeek)
      const before = value(metric, weekBeforeYesterday)
      return {
        metric,
        unit: METRICS[metric]!.unit,
        today: t,
        yesterday: y,
        sameDayLastWeek: w,
        /** Yesterday's relative change vs. the day a week before it; null when that was 0. */
        yesterdayVsWeekBefore: before === 0 ? null : (y - before) / before,
      }
    }),
  }
}

/** A `date` column as `YYYY-MM-DD` (pg answers text, PGlite a Date at UTC midnight). */
export const dayText = (d: unknown): string =>
  d instanceof Date ? d.toISOString().slice(0, 10) : String(d).slice(0, 10)
