/**
 * The operations plan's curves fitted to an account's history (issue #16 item 4): growth of the
 * follower count and cohort retention, with the plan's reference lines. Reads only rollups — the
 * daily `followers.*` figures of `analytics_daily` and the day cells of `cohort_retention` — and
 * runs the pure fits of src/analytics/fit.ts.
 *
 * R(t) is `followers.total` (the plan's R is the user count: followers at the end of each
 * community day), not DAU, whose weekly rhythm an exponential does not describe. t counts days
 * from `from`. The retention points are the pooled day cohorts of `from` … `to` at ages
 * 1 … maxAge (at most the last MAX_COHORTS.day of them), weighted by the members observed at each
 * age.
 */
import { type Kysely, sql } from 'kysely'
import { addDays } from '../community/community-time.js'
import type { Database } from '../db/schema.js'
import { cohortTriangle, MAX_COHORTS, MAX_DAY_AGE } from './cohorts.js'
import {
  compareRetention,
  type ForecastPoint,
  fitGrowth,
  forecastGrowth,
  type GrowthFit,
  type GrowthRates,
  growthRates,
  REFERENCE_RETENTION,
  type RetentionComparison,
  type RetentionPoint,
} from './fit.js'

/** What `analyticsFits` returns (JSON-ready). */
export interface AnalyticsFits {
  appid: string
  from: string
  to: string
  growth: {
    series: 'followers.total'
    /** Days with a followers.total figure in range. */
    days: number
    /** R(t) = R(0)·e^{kt}, t in days since `from`; null with fewer than 3 days > 0. */
    fit: GrowthFit | null
    /** Observed r (acquisition) and l (loss) per day, and the k they imply. */
    rates: GrowthRates | null
    forecast: {
      level: number
      points: (ForecastPoint & { day: string })[]
    } | null
  }
  retention: RetentionComparison & {
    /** Day cohorts pooled, and their members. */
    cohorts: number
    members: number
    maxAge: number
    points: RetentionPoint[]
  }
  reference: typeof REFERENCE_RETENTION
}

const GROWTH_METRICS = ['followers.total', 'followers.new', 'followers.unfollowed'] as const

/**
 * Fits growth (followers.total) and retention (day cohorts from `from` to `to`) and forecasts the
 * follower count `horizon` days past the last observed day (default 30) with a `level` prediction
 * interval (default 0.95).
 * @example await analyticsFits(db, { appid, from: '2026-09-01', to: '2026-11-30' })
 */
export async function analyticsFits(
  db: Kysely<Database>,
  o: { appid: string; from: string; to: string; maxAge?: number; horizon?: number; level?: number },
): Promise<AnalyticsFits> {
  const maxAge = o.maxAge ?? 30
  const horizon = o.horizon ?? 30
  const level = o.level ?? 0.95
  if (!Number.isInteger(maxAge) || maxAge < 1 || maxAge > MAX_DAY_AGE)
    throw new RangeError(`maxAge must be an integer in 1..${MAX_DAY_AGE}`)
  if (!Number.isInteger(horizon) || horizon < 0 || horizon > 365)
    throw new RangeError('horizon must be an integer in 0..365')
  const rows = await db
    .selectFrom('analytics_daily')
    .select(['metric', sql<string>`day::text`.as('day'), 'value'])
    .where('appid', '=', o.appid)
    .where('metric', 'in', [...GROWTH_METRICS])
    .where('dim', '=', '')
    .where('day', '>=', o.from)
    .where('day', '<=', o.to)
    .orderBy('day')
    .execute()
  const t = (day: string) => Math.round((Date.parse(day) - Date.parse(o.from)) / 86_400_000)
  const days = new Map<number, { t: number; total: number; new: number; unfollowed: number }>()
  const totals = new Set<number>()
  for (const r of rows) {
    const day = r.day
    const d = days.get(t(day)) ?? { t: t(day), total: 0, new: 0, unfollowed: 0 }
    if (r.metric === 'followers.total') {
      d.total = r.value
      totals.add(d.t)
    } else if (r.metric === 'followers.new') d.new = r.value
    else d.unfollowed = r.value
    days.set(d.t, d)
  }
  const observed = [...days.values()].filter((d) => totals.has(d.t)).sort((a, b) => a.t - b.t)
  const fit = fitGrowth(observed.map((d) => ({ t: d.t, value: d.total })))
  const last = observed.at(-1)?.t ?? 0
  const forecast = fit
    ? {
        level,
        points: forecastGrowth(
          fit,
          Array.from({ length: horizon }, (_, i) => last + i + 1),
          level,
        ).map((p) => ({ day: addDays(o.from, p.t), ...p })),
      }
    : null

  // At most MAX_COHORTS.day cohorts: the latest ones of a longer range.
  const oldest = addDays(o.to, 1 - MAX_COHORTS.day)
  const triangle = await cohortTriangle(db, {
    appid: o.appid,
    grain: 'day',
    from: [o.from, oldest].sort()[1]!, // the later day
    to: o.to,
    maxAge,
  })
  const points = triangle.pooled
    .filter((p) => p.age >= 1 && p.share !== null)
    .map((p) => ({ t: p.age, share: p.share!, weight: p.size }))
  return {
    appid: o.appid,
    from: o.from,
    to: o.to,
    growth: {
      series: 'followers.total',
      days: observed.length,
      fit,
      rates: growthRates(observed),
      forecast,
    },
    retention: {
      ...compareRetention(points),
      cohorts: triangle.cohorts.length,
      members: triangle.cohorts.reduce((n, c) => n + c.size, 0),
      maxAge,
      points,
    },
    reference: REFERENCE_RETENTION,
  }
}
