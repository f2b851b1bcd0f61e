/**
 * Reading the rollups: a metric's series over a range of community days at day, week or month
 * granularity, and the overview (today vs. yesterday vs. the same day last week). Built days come
 * from `analytics_daily` by its primary key (appid, metric, day, dim) — never from raw facts; the
 * days the nightly job has not built yet — today, and the days after the last built one (`asOf`:
 * the job's lag, or a failed run) — are read live, at most `MAX_LIVE_DAYS` of them, as
 * src/analytics/campaign-figures.ts does. Any other day not built (a gap the nightly job has not
 * filled yet) has no value: null, never 0. A built day without a row is 0, and so is a day before
 * the first built one (the account's data had not begun).
 *
 * A ratio (`agg: 'ratio'`) over any days — one, a week, a month — is the sum of its numerator over
 * the sum of its denominator (the parts its catalogue entry names), null when that is 0: an AOV
 * over a week is the week's GMV ÷ its orders, not the mean of the days' AOVs.
 */
import { type Kysely, sql } from 'kysely'
import { memberScope } from '../admin/reads/account-members.js'
import { addDays, localDay, weekStart } from '../community/community-time.js'
import type { Database } from '../db/schema.js'
import type { ShopSettings } from '../shop/catalog.js'
import {
  chainDay,
  type DayScope,
  type MetricSpec,
  stocksNowStatement,
} from './families/day-scope.js'
import { CATALOGUE, FAMILIES, STOCKS } from './families/index.js'
import { computeDay, type DailyFigure, familyOf, SNAPSHOT_METRICS } from './rollup.js'

export type { Aggregation, RatioParts } from './families/day-scope.js'

/**
 * The metrics the rollup writes, their unit, how they aggregate (a ratio: its parts) and what
 * they count: the families' catalogue (src/analytics/families/index.ts), so a metric cannot be
 * written and not served.
 */
export const METRICS: Record<string, MetricSpec> = Object.fromEntries(
  Object.entries(CATALOGUE).map(([metric, { unit, agg, about, ratio, nonzero }]) => [
    metric,
    { unit, agg, about, ...(ratio ? { ratio } : {}), ...(nonzero ? { nonzero } : {}) },
  ]),
)

/** Days after the last built one read live per request (today and a week of job lag). */
export const MAX_LIVE_DAYS = 8

export type Granularity = 'day' | 'week' | 'month'

export interface SeriesPoint {
  /** The first community day of the period. */
  start: string
  /**
   * The period's figure; null when a day of it is neither built nor read live, or when a ratio's
   * denominator is 0.
   */
  value: number | null
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
  /** The last built day before today (null when none is): the days after it are read live. */
  asOf: string | null
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

/** Reads a day's figures of some families live (today, or a day not built yet). */
export type LiveReader = (
  appid: string,
  day: string,
  timeZone: string,
  families: readonly string[],
) => Promise<DailyFigure[]>

/**
 * How long a family's figures read live are kept, in multiples of the time reading them took
 * (when longer than the reader's `ttlMs`): reads of a large account's figures take at most about
 * 1/20 of the time, however often a dashboard asks. Stocks chain from a recent built day's rollup
 * (families/day-scope.ts `stock`), but without one (a new install) they take a pass over every
 * member, one for the days read at once ({@link liveToday}): on the embedded database at
 * 1,000,000 members the points family (Σ every member's balance) took up to 1.2 s a read, the
 * follows family up to 0.5 s — read every 4 s by a dashboard, most of the server's one thread
 * (bench/README.md, issue 20, session 33).
 */
export const LIVE_COST_FACTOR = 20
/** The longest a family's figures read live are kept, however long reading them took. */
export const LIVE_MAX_KEEP_MS = 30_000

/**
 * A day's figures read live per family (today, or a day after the last built one) and cached for
 * a few seconds per account and day — `ttlMs`, or {@link LIVE_COST_FACTOR} times as long as the
 * read took (waiting for a connection included) if longer, {@link LIVE_MAX_KEEP_MS} at most; 0:
 * never —, so a dashboard's several series cost one read of each family; a read under way is
 * shared for as long (up to {@link LIVE_MAX_KEEP_MS}). A family's stocks on a day with no built
 * day to chain from (a new install: families/day-scope.ts `stock`) are its account's state now
 * minus what changed after the day; the state now of every stock is read in one pass, shared by
 * the family reads begun within `ttlMs / 2` of it — the overview's three days, read at once, make
 * one pass over the members, not nine — and by no later one: a figure read again has a state now
 * of its own, never an older one with newer changes. (Read in statements of their own, a follow
 * or a points entry between the two is in one of them only, in that figure.)
 * `shop`: the account's mini program's members count in its points figures (as the build's).
 * `now` (ms) is for tests.
 */
export function liveToday(
  db: Kysely<Database>,
  ttlMs = 5000,
  shop?: { settings: Pick<ShopSettings, 'appid' | 'mpAppid'> },
  now: () => number = Date.now,
): LiveReader {
  const cache = new Map<string, { at: number; ttl: number; value: Promise<DailyFigure[]> }>()
  const states = new Map<string, { at: number; value: Promise<Record<string, number>> }>()
  /** Every stock's state now, in one pass over the account's members (and its mini program's). */
  const stocksNow = (scope: DayScope, at: number) => {
    const hit = states.get(scope.appid)
    if (hit && at - hit.at < ttlMs / 2) return hit.value
    const stocks = Object.entries(STOCKS)
    const value = stocksNowStatement(
      scope,
      stocks.map(([, def]) => def),
    )
      .execute(db)
      .then(({ rows }) =>
        Object.fromEntries(stocks.map(([m], i) => [m, Number(rows[0]![`v${i}`])])),
      )
    const entry = { at, value }
    states.set(scope.appid, entry)
    value.catch(() => {
      if (states.get(scope.appid) === entry) states.delete(scope.appid)
    })
    return value
  }
  const read = async (appid: string, day: string, timeZone: string, family: string, at: number) => {
    const { mpAppids } = memberScope(appid, shop)
    const scope: DayScope = { appid, day, timeZone, live: true, mpAppids }
    const stocks = FAMILIES[family]?.stocks
    if (stocks && !(await chainsFromBuiltDay(db, appid, day, Object.keys(stocks))))
      scope.stocksNow = await stocksNow(scope, at)
    return computeDay(db, scope, { families: [family] })
  }
  const one = (appid: string, day: string, timeZone: string, family: string) => {
    const key = `${appid}\n${day}\n${family}`
    const hit = cache.get(key)
    if (hit && now() - hit.at < hit.ttl) return hit.value
    const at = now()
    const value = read(appid, day, timeZone, family, at)
    // Shared while it runs, for LIVE_MAX_KEEP_MS at most (a read that hangs is not shared for
    // ever; ttl 0: not at all), then kept in proportion to its cost.
    const entry = { at, ttl: ttlMs > 0 ? LIVE_MAX_KEEP_MS : 0, value }
    cache.set(key, entry)
    value.then(
      () => {
        if (ttlMs > 0)
          entry.ttl = Math.min(LIVE_MAX_KEEP_MS, Math.max(ttlMs, LIVE_COST_FACTOR * (now() - at)))
      },
      () => {
        if (cache.get(key) === entry) cache.delete(key)
      },
    )
    return value
  }
  return async (appid, day, timeZone, families) =>
    (await Promise.all([...new Set(families)].map((f) => one(appid, day, timeZone, f)))).flat()
}

/**
 * Whether every one of `metrics` (stocks) of `day` read live chains from a built day: their rows
 * on the day the chain reads (families/day-scope.ts `chainDay`); else the state now is read.
 */
async function chainsFromBuiltDay(
  db: Kysely<Database>,
  appid: string,
  day: string,
  metrics: readonly string[],
) {
  const { rows } = await sql<{ n: number }>`select count(*)::int as n from analytics_daily b
    where b.appid = ${appid} and b.dim = '' and b.metric in (${sql.join([...metrics])})
      and b.day = ${chainDay(appid, sql`${day}::date`)}`.execute(db)
  return Number(rows[0]!.n) === metrics.length
}

/** Where the figures of a range's days come from. */
export interface DaySources {
  /** The last built day before today, null when none is. */
  asOf: string | null
  /** The range's built days: their rollup (a metric without a row is 0). */
  built: Set<string>
  /**
   * The range's days read live: today and the days after `asOf`, the last `MAX_LIVE_DAYS` up to
   * today. Any other day of the range is unbuilt (no value).
   */
  live: Set<string>
}

/** Which days of [from, to] are built, which are read live (see {@link DaySources}). */
export async function daySources(
  db: Kysely<Database>,
  q: { appid: string; from: string; to: string; today: string },
): Promise<DaySources> {
  const last = await db
    .selectFrom('analytics_days')
    .select((eb) => [eb.fn.max('day').as('day'), eb.fn.min('day').as('first')])
    .where('appid', '=', q.appid)
    .where('day', '<', q.today)
    .executeTakeFirst()
  const asOf = last?.day ? dayText(last.day) : null
  const built = new Set<string>()
  const lastPast = [q.to, addDays(q.today, -1)].sort()[0]!
  // Before the first built day the account's data had not begun (the first build starts at its
  // oldest fact): those days are empty — 0, not unknown — so the install's month still adds up.
  if (last?.first)
    for (const day of daysBetween(q.from, [lastPast, addDays(dayText(last.first), -1)].sort()[0]!))
      built.add(day)
  if (q.from <= lastPast)
    for (const r of await db
      .selectFrom('analytics_days')
      .select('day')
      .where('appid', '=', q.appid)
      .where('day', '>=', q.from)
      .where('day', '<=', lastPast)
      .execute())
      built.add(dayText(r.day))
  const after = asOf ? addDays(asOf, 1) : q.from
  const firstLive = [q.from, addDays(q.today, 1 - MAX_LIVE_DAYS), after].sort().at(-1)!
  const live = new Set(daysBetween(firstLive, [q.to, q.today].sort()[0]!))
  return { asOf, built, live }
}

/**
 * A day's figures of `metrics` at `dim`. Without a dim ('') a metric's figure is its total row,
 * or the sum of its dimensions when its family writes them only (a per-segment size, a streak
 * bucket): the total a dimension-less read promises, never a 0 that reads as a collapse.
 */
function figuresOfDim(
  figures: readonly DailyFigure[],
  dim: string,
  metrics: readonly string[],
): Map<string, number> {
  const values = new Map<string, number>()
  const sums = new Map<string, number>()
  for (const f of figures) {
    if (!metrics.includes(f.metric)) continue
    if (f.dim === dim) values.set(f.metric, f.value)
    // (a ratio's dimensions do not add up: none is written per dimension only)
    else if (dim === '' && METRICS[f.metric]?.agg !== 'ratio')
      sums.set(f.metric, (sums.get(f.metric) ?? 0) + f.value)
  }
  for (const [metric, sum] of sums) if (!values.has(metric)) values.set(metric, sum)
  return values
}

/** A metric's figure on a day (of the dim read), null when the day has none. */
type DayFigure = (day: string, metric: string) => number | null

/**
 * The figures of `metrics` (one dim) on `days`: a built day's rollup rows (a missing row is 0), a
 * live day's live read (the metrics' families only); null on an unbuilt day, and for a state-now
 * metric (`members.level`, `segments.size`) on a live day before yesterday — the state now is
 * not that day's.
 */
async function readDays(
  db: Kysely<Database>,
  q: {
    appid: string
    metrics: readonly string[]
    dim: string
    days: readonly string[]
    today: string
    timeZone: string
    live: LiveReader
  },
  sources: DaySources,
): Promise<DayFigure> {
  const stored = q.days.filter((d) => sources.built.has(d)).sort()
  // Without a dim the figure is the total: the '' row, or — a metric written per dimension only
  // (segments.size, members.level, checkins.streak, segments.flow) — the sum of its dimensions.
  const rows =
    stored.length === 0
      ? []
      : await db
          .selectFrom('analytics_daily')
          .select(['metric', 'day', 'dim', 'value'])
          .where('appid', '=', q.appid)
          .where('metric', 'in', [...q.metrics])
          .where('day', '>=', stored[0]!)
          .where('day', '<=', stored.at(-1)!)
          .$if(q.dim !== '', (qb) => qb.where('dim', '=', q.dim))
          .execute()
  const byDay = new Map<string, Map<string, number>>(stored.map((d) => [d, new Map()]))
  const grouped = new Map<string, DailyFigure[]>()
  for (const r of rows) {
    const day = dayText(r.day)
    const list = grouped.get(day) ?? []
    list.push({ metric: r.metric, dim: r.dim, value: Number(r.value) })
    grouped.set(day, list)
  }
  for (const [day, list] of grouped) byDay.set(day, figuresOfDim(list, q.dim, q.metrics))
  const yesterday = addDays(q.today, -1)
  const liveDays = q.days.filter((d) => sources.live.has(d))
  await Promise.all(
    liveDays.map(async (day) => {
      const metrics = q.metrics.filter((m) => day >= yesterday || !SNAPSHOT_METRICS.includes(m))
      const figures = await q.live(q.appid, day, q.timeZone, [...new Set(metrics.map(familyOf))])
      byDay.set(day, figuresOfDim(figures, q.dim, metrics))
    }),
  )
  return (day, metric) => {
    const values = byDay.get(day)
    if (!values) return null
    if (day < yesterday && sources.live.has(day) && SNAPSHOT_METRICS.includes(metric)) return null
    return values.get(metric) ?? 0
  }
}

/**
 * A metric's days summed over the community days [from, to] (today's so far; none after it),
 * each read as a series reads it: built, live, or none — null when a day has no figure. The
 * invite report's Σ DAU, the denominator of its share rate and K as of `invites.k_factor`.
 */
export async function readSum(
  db: Kysely<Database>,
  q: {
    appid: string
    metric: string
    from: string
    to: string
    now: Date
    timeZone: string
    live: LiveReader
  },
): Promise<number | null> {
  const today = localDay(q.now, q.timeZone)
  const days = q.from > today ? [] : daysBetween(q.from, [q.to, today].sort()[0]!)
  if (days.length === 0) return 0
  const sources = await daySources(db, { appid: q.appid, from: q.from, to: q.to, today })
  const figure = await readDays(db, { ...q, metrics: [q.metric], dim: '', days, today }, sources)
  let sum = 0
  for (const day of days) {
    const v = figure(day, q.metric)
    if (v === null) return null
    sum += v
  }
  return sum
}

/** The metrics a metric's value is made of: itself, or a ratio's parts. */
function partsOf(metric: string): string[] {
  const spec = METRICS[metric]!
  if (!spec.ratio) return [metric]
  const [num, den] = spec.ratio
  return [...new Set([num ?? metric, den ?? metric, ...(spec.nonzero ?? [])])]
}

/** A ratio's parts on a day (see `RatioParts`); null when a part has no figure. */
function dayParts(
  metric: string,
  spec: MetricSpec,
  day: string,
  figure: DayFigure,
): { num: number; den: number; nonzero: number[] } | null {
  const [numMetric, denMetric] = spec.ratio!
  const nonzero: number[] = []
  for (const m of spec.nonzero ?? []) {
    const v = figure(day, m)
    if (v === null) return null
    nonzero.push(v)
  }
  const num = numMetric === null ? null : figure(day, numMetric)
  const den = denMetric === null ? null : figure(day, denMetric)
  if ((numMetric !== null && num === null) || (denMetric !== null && den === null)) return null
  if (num !== null && den !== null) return { num, den, nonzero }
  // A part the rollup does not store, recovered from the day's ratio (a count: rounded).
  const value = figure(day, metric)
  if (value === null) return null
  if (num === null) return { num: Math.round(value * den!), den: den!, nonzero }
  return value > 0 ? { num, den: Math.round(num / value), nonzero } : { num: 0, den: 0, nonzero }
}

/**
 * A metric's value over `days` (a period's, in order): summed, averaged, the last day's, or a
 * ratio's Σ numerator ÷ Σ denominator; null when a day it needs has no figure, or a ratio's
 * denominator (or a `nonzero` part) sums to 0.
 */
function valueOver(metric: string, days: readonly string[], figure: DayFigure): number | null {
  const spec = METRICS[metric]!
  if (spec.ratio) {
    let num = 0
    let den = 0
    const nonzero = (spec.nonzero ?? []).map(() => 0)
    for (const day of days) {
      const p = dayParts(metric, spec, day, figure)
      if (!p) return null
      num += p.num
      den += p.den
      p.nonzero.forEach((x, i) => {
        nonzero[i]! += x
      })
    }
    return den === 0 || nonzero.some((x) => x === 0) ? null : num / den
  }
  if (spec.agg === 'last') return days.length === 0 ? null : figure(days.at(-1)!, metric)
  let sum = 0
  for (const day of days) {
    const v = figure(day, metric)
    if (v === null) return null
    sum += v
  }
  return spec.agg === 'avg' ? sum / days.length : sum
}

/** A metric's series; a day not built is read live or is null, today's period partial. */
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
  const days = daysBetween(q.from, [q.to, today].sort()[0]!)
  const sources = await daySources(db, { appid: q.appid, from: q.from, to: q.to, today })
  const figure = await readDays(db, { ...q, metrics: partsOf(q.metric), dim, days, today }, sources)
  const periods = new Map<string, string[]>()
  for (const day of days) {
    const start = periodStart(day, q.granularity)
    const period = periods.get(start)
    if (period) period.push(day)
    else periods.set(start, [day])
  }
  const points = [...periods].map(([start, period]) => ({
    start,
    value: valueOver(q.metric, period, figure),
    partial: period.includes(today),
  }))
  return {
    metric: q.metric,
    dim,
    unit: spec.unit,
    granularity: q.granularity,
    from: q.from,
    to: q.to,
    asOf: sources.asOf,
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
 * against a whole day would read as a fall every morning). Each day is read as a series' is: built,
 * read live (yesterday before the nightly job has built it), or null.
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
  const sources = await daySources(db, {
    appid: q.appid,
    from: weekBeforeYesterday,
    to: today,
    today,
  })
  const figure = await readDays(
    db,
    {
      ...q,
      metrics: [...new Set(OVERVIEW_METRICS.flatMap(partsOf))],
      dim: '',
      days: [weekBeforeYesterday, lastWeek, yesterday, today],
      today,
    },
    sources,
  )
  return {
    today,
    /** The last built day before today (null when none is): the days after it are read live. */
    asOf: sources.asOf,
    metrics: OVERVIEW_METRICS.map((metric) => {
      const y = valueOver(metric, [yesterday], figure)
      const before = valueOver(metric, [weekBeforeYesterday], figure)
      return {
        metric,
        unit: METRICS[metric]!.unit,
        today: valueOver(metric, [today], figure),
        yesterday: y,
        sameDayLastWeek: valueOver(metric, [lastWeek], figure),
        /**
         * Yesterday's relative change vs. the day a week before it; null when that was 0 or
         * either day has no figure.
         */
        yesterdayVsWeekBefore:
          y === null || before === null || before === 0 ? null : (y - before) / before,
      }
    }),
  }
}

/** A `date` column as `YYYY-MM-DD` (pg answers text, PGlite a Date at UTC midnight). */
export const dayText = (d: unknown): string =>
  d instanceof Date ? d.toISOString().slice(0, 10) : String(d).slice(0, 10)
