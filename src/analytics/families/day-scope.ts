/**
 * What every metric family shares: the day it reads (account, community day, time zone, live or
 * built), the instant range of that day, the way a stock is read at the day's end, and the shape
 * of a family — its SELECT and the metrics it writes, with their unit, how days combine and what
 * they mean.
 */
import { type RawBuilder, sql } from 'kysely'

/** One rolled-up figure. */
export interface DailyFigure {
  metric: string
  dim: string
  value: number
}

/** The day a family reads. */
export interface DayScope {
  appid: string
  /** The community day, `YYYY-MM-DD`. */
  day: string
  timeZone: string
  /**
   * A live read (today, or a day after the last built one): stocks (followers in total, points
   * outstanding and frozen) are chained from the last built day's rolled-up figure when one is
   * recent ({@link stock}) — index probes instead of a pass over every member.
   */
  live?: boolean
  /**
   * The stocks' state now by metric, read once for several days read live (series.ts
   * `liveToday`, {@link stocksNowStatement}): a stock's exact form subtracts what changed after
   * the day from it instead of passing over every member itself.
   */
  stocksNow?: Readonly<Record<string, number>>
  /**
   * The account's mini programs (its shop's, account-members.ts `memberScope`): their members'
   * points are the account's, as their orders are (`orders.appid` is the account's already).
   */
  mpAppids?: readonly string[]
}

/** The appids whose members' points ledger is the account's: its own, then its mini programs'. */
export const pointsAppids = (s: DayScope) =>
  sql`(${sql.join([s.appid, ...(s.mpAppids ?? [])].map((a) => sql`${a}`))})`

/**
 * How a metric's days combine into a week or a month: summed, averaged, the last day's, or (a
 * ratio) the period's summed numerator ÷ its summed denominator (`MetricSpec.ratio`).
 */
export type Aggregation = 'sum' | 'avg' | 'last' | 'ratio'

/**
 * A ratio's numerator and denominator: metrics of the catalogue, read with the ratio's dim. null
 * names a part the rollup does not store, a count recovered from the day's stored ratio and the
 * other part (numerator = ratio × denominator; denominator = numerator ÷ ratio, 0 when the ratio
 * is 0).
 */
export type RatioParts = readonly [numerator: string | null, denominator: string | null]

/** A metric of the catalogue. */
export interface MetricSpec {
  unit: 'count' | 'fen' | 'ratio' | 'points'
  agg: Aggregation
  /** What it counts, for the catalogue (`GET analytics/metrics`) and README. */
  about: string
  /**
   * With `agg: 'ratio'`: the value over any days (one, a week, a month) is Σ numerator ÷
   * Σ denominator; none (null) when Σ denominator is 0.
   */
  ratio?: RatioParts
  /**
   * A product of ratios (K = i × conv × c = qualified ÷ DAU): metrics whose sums must be non-zero
   * too (the inner denominators), else no value.
   */
  nonzero?: readonly string[]
}

/** A metric family: one SELECT over the facts of a day and the metrics it writes. */
export interface Family {
  metrics: Record<string, MetricSpec>
  /** Reads the day's scope and its DAU (counted once per computation). */
  query: (s: DayScope & { dau: number }) => RawBuilder<DailyFigure>
  /** State-now metrics: written when yesterday or today is built, kept when an older day is. */
  snapshot?: boolean
  /** Its stocks (metrics of `metrics` read at the day's end), for {@link stock}. */
  stocks?: Record<string, Stock>
}

/** The half-open instant range [start, end) of a community day. */
export const dayWindow = (s: DayScope) => ({
  start: sql`(${s.day}::date::timestamp at time zone ${s.timeZone})`,
  end: sql`((${s.day}::date + 1)::timestamp at time zone ${s.timeZone})`,
})

/**
 * How many days back a stock read live looks for a built day to chain from: 2, so that the chain
 * reads at most one day of changes besides the day's own — today's stocks from midnight until the
 * nightly build, chained from the day before yesterday. Each further day of changes costs about
 * what one day's facts cost to read (at 1,000,000 members, 0.12 s on PGlite, 0.22 s on
 * PostgreSQL, bench:live-stocks), and a week of them more than the pass over every member the
 * chain spares (0.8–1.0 s): after a build that failed longer, the exact form.
 */
export const STOCK_CHAIN_DAYS = 2

/** The day a stock of `day` read live chains from: the last built in {@link STOCK_CHAIN_DAYS}. */
export const chainDay = (appid: string, day: RawBuilder<unknown>) =>
  sql`(select max(day) from analytics_days where appid = ${appid}
    and day < ${day} and day >= ${day} - ${STOCK_CHAIN_DAYS}::int)`

/**
 * A stock: a figure at the end of a day (followers in total, points outstanding), known now from
 * the members and for any day from the changes after it.
 */
export interface Stock {
  /**
   * Its state now: an aggregate over the rows of `members` whose appid is in
   * {@link pointsAppids} (every stock in one pass: {@link stocksNowStatement}).
   */
  now: (s: DayScope) => RawBuilder<unknown>
  /** Its `now` counts the account's own members only: read alone, it scans only those. */
  accountOnly?: boolean
  /** What changed over the days after `from`, up to `through` (without: up to today). */
  change: (
    s: DayScope,
    from: RawBuilder<unknown>,
    through?: RawBuilder<unknown>,
  ) => RawBuilder<unknown>
}

/**
 * `metric` at the end of the day: exact — its state now (`s.stocksNow`'s, else a pass over the
 * members) minus what changed after the day —, or, read live, the last built day's rolled-up
 * figure (within {@link STOCK_CHAIN_DAYS} before the day) plus what changed after it up to the
 * day before, plus `dayChange` (the day's change, from the rows the family reads anyway): a few
 * index probes instead of a pass over every member; the exact form without such a built day (a
 * new install).
 */
export const stock = (s: DayScope, metric: string, def: Stock, dayChange: RawBuilder<unknown>) => {
  const day = sql`${s.day}::date`
  const now =
    s.stocksNow?.[metric] !== undefined
      ? sql`${s.stocksNow[metric]}::float8`
      : sql`(select ${def.now(s)} from members
          where appid in ${def.accountOnly ? sql`(${s.appid})` : pointsAppids(s)})`
  const exact = sql`(${now} - ${def.change(s, day)})::float8`
  return s.live
    ? sql`coalesce((select b.value + ${def.change(s, sql`b.day`, sql`${day} - 1`)} + ${dayChange}
        from analytics_daily b
        where b.appid = ${s.appid} and b.metric = ${metric} and b.dim = ''
          and b.day = ${chainDay(s.appid, day)}), ${exact})::float8`
    : exact
}

/** The day's range of a stock's change: after `from`, up to `through` when given. */
export const changeRange = (from: RawBuilder<unknown>, through?: RawBuilder<unknown>) =>
  through ? sql`day > ${from} and day <= ${through}` : sql`day > ${from}`

/**
 * The state now of `stocks` in one pass over the account's members: one row, a column `v<i>` per
 * stock, in order.
 */
export const stocksNowStatement = (s: DayScope, stocks: readonly Stock[]) =>
  sql<Record<string, number>>`select ${sql.join(
    stocks.map((d, i) => sql`(${d.now(s)})::float8 as ${sql.id(`v${i}`)}`),
  )} from members where appid in ${pointsAppids(s)}`

/** Shorthands for the catalogue. */
export const count = (about: string, agg: Aggregation = 'sum'): MetricSpec => ({
  unit: 'count',
  agg,
  about,
})
/** A ratio of two parts (see `MetricSpec.ratio`); `unit: 'fen'` for money per order or member. */
export const ratio = (
  about: string,
  parts: RatioParts,
  o: { unit?: MetricSpec['unit']; nonzero?: readonly string[] } = {},
): MetricSpec => ({
  unit: o.unit ?? 'ratio',
  agg: 'ratio',
  about,
  ratio: parts,
  ...(o.nonzero ? { nonzero: o.nonzero } : {}),
})
