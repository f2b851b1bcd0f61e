/**
 * Lifetime value by cohort (issue #16): the cumulative net revenue of a retention cohort's members
 * (cohorts.ts: the community day or week of their first follow, by source) at each age.
 *
 * Definition. A member's revenue is the GMV of their paid orders (`paid_total_fen`, else
 * `amount_fen`, of orders `paid` or `refunded`), on the community day paid, minus the successful
 * refunds of those orders on the community day refunded — in integer fen. LTV at age k (grain
 * `day`) counts what the member paid from their follow day through follow day + k, less what of
 * it was refunded by then; grain `week` counts through the member's **own** day 7k + 6, as the
 * week retention does. Orders paid before the follow day do not count (nor their refunds). `payers`
 * = members with at least one such paid order by then.
 *
 * Storage: `cohort_ltv`, one cell per retention cell (same key, same size, written in the same
 * build right after it): each night the day cells of cohorts day − k at age k (k = 0 … 90) from
 * the orders paid in the last 91 days of those cohorts' members, and on Saturdays the week cells
 * whose age just closed. A cell is computed from the orders, not added to the cell before it, so
 * a missed or rebuilt night leaves no error behind. Reads are primary-key ranges.
 */
import { type Kysely, sql, type Transaction } from 'kysely'
import { addDays, localDayStart, weekStart } from '../community/community-time.js'
import type { Database } from '../db/schema.js'
import {
  type AgeCell,
  type CohortGrain,
  type CohortRangeQuery,
  type CohortSource,
  checkCohortQuery,
  cohortRange,
  cohortRows,
  MAX_DAY_AGE,
  MAX_WEEK_AGE,
  WEEK_LAG,
} from './cohort-query.js'

/**
 * Writes the LTV cells that became known on `day` (inside `buildCohortCells`' transaction, after
 * the retention cells of that day): the day diagonal, and on Saturdays the closing week cells.
 * Returns the cells written.
 */
export async function buildLtvCells(
  trx: Transaction<Database>,
  s: { appid: string; day: string; timeZone: string },
): Promise<number> {
  const { appid, day, timeZone } = s
  const upsert = sql`on conflict (appid, grain, source, cohort_start, age) do update
    set cohort_size = excluded.cohort_size, revenue_fen = excluded.revenue_fen,
      payers = excluded.payers`
  /** Orders of the account paid from `first` through `day` (the paid_at index), net per cut. */
  const orders = (first: string) => sql`
    select o.id, o.member_id, (o.paid_at at time zone ${timeZone})::date as day,
      coalesce(o.paid_total_fen, o.amount_fen) as fen
    from orders o
    where o.appid = ${appid} and o.status in ('paid', 'refunded')
      and o.paid_at >= ${localDayStart(first, timeZone)}
      and o.paid_at < ${localDayStart(addDays(day, 1), timeZone)}`
  /** What of order `o` was refunded by community day `cut`. */
  const refunded = (cut: ReturnType<typeof sql>) => sql`coalesce((select sum(r.amount_fen)
    from refunds r where r.order_id = o.id and r.status = 'success'
      and (r.updated_at at time zone ${timeZone})::date <= ${cut}), 0)`
  const daily = await sql`
    with o as materialized (${orders(addDays(day, -MAX_DAY_AGE))}), v as (
      select c.cohort_day as start, coalesce(c.source, '') as source,
        sum(o.fen - ${refunded(sql`${day}::date`)})::bigint as fen,
        count(distinct c.member_id)::int as payers
      from o join cohort_members c on c.member_id = o.member_id
      where c.appid = ${appid} and c.cohort_day between ${day}::date - ${MAX_DAY_AGE}::int
        and ${day}::date and o.day >= c.cohort_day
      group by grouping sets ((c.cohort_day), (c.cohort_day, c.source))
    )
    insert into cohort_ltv as l
      (appid, grain, source, cohort_start, age, cohort_size, revenue_fen, payers)
    select ${appid}, 'day', t.source, t.cohort_start, t.age, t.cohort_size,
      coalesce(v.fen, 0), coalesce(v.payers, 0)
    from cohort_retention t left join v on v.start = t.cohort_start and v.source = t.source
    where t.appid = ${appid} and t.grain = 'day'
      and t.cohort_start between ${day}::date - ${MAX_DAY_AGE}::int and ${day}::date
      and t.age = ${day}::date - t.cohort_start
    ${upsert}`.execute(trx)
  let written = Number(daily.numAffectedRows ?? 0)
  const monday = addDays(day, -WEEK_LAG)
  if (weekStart(monday) !== monday) return written
  // Week k of a member: through their own day 7k + 6; cohort w.start, k = w.age.
  const cut = sql`c.cohort_day + 7 * w.age + 6`
  const weekly = await sql`
    with o as materialized (${orders(addDays(monday, -7 * MAX_WEEK_AGE))}), v as (
      select w.start, w.age, coalesce(c.source, '') as source,
        sum(o.fen - ${refunded(cut)})::bigint as fen, count(distinct c.member_id)::int as payers
      from (select k as age, ${monday}::date - 7 * k as start
        from generate_series(0, ${MAX_WEEK_AGE}::int) k) w
      join cohort_members c on c.appid = ${appid} and c.cohort_day between w.start and w.start + 6
      join o on o.member_id = c.member_id and o.day between c.cohort_day and ${cut}
      group by grouping sets ((w.start, w.age), (w.start, w.age, c.source))
    )
    insert into cohort_ltv as l
      (appid, grain, source, cohort_start, age, cohort_size, revenue_fen, payers)
    select ${appid}, 'week', t.source, t.cohort_start, t.age, t.cohort_size,
      coalesce(v.fen, 0), coalesce(v.payers, 0)
    from cohort_retention t
    left join v on v.start = t.cohort_start and v.age = t.age and v.source = t.source
    where t.appid = ${appid} and t.grain = 'week'
      and t.cohort_start between ${monday}::date - ${7 * MAX_WEEK_AGE}::int and ${monday}::date
      and t.cohort_start = ${monday}::date - 7 * t.age
    ${upsert}`.execute(trx)
  written += Number(weekly.numAffectedRows ?? 0)
  return written
}

/** An LTV triangle request (no segment: lifetime value is by follow day or week and source). */
export type LtvQuery = Omit<CohortRangeQuery, 'segment'>

/** One cohort: its size and, per age 0 … maxAge, its net revenue so far (null: not over yet). */
export interface LtvRow {
  /** The cohort's day, or its week's Monday. */
  start: string
  size: number
  revenueFen: (number | null)[]
  /** revenueFen / size per age (fen, not rounded); null where revenueFen is null. */
  perMemberFen: (number | null)[]
  /** Members who had paid by that age. */
  payers: (number | null)[]
}

/** Cohorts pooled at one age: Σ revenue / Σ size over the cohorts that reached it. */
export interface LtvFigure {
  perMemberFen: number | null
  revenueFen: number
  size: number
  payers: number
  cohorts: number
}

/** The LTV triangle, its pooled bottom line, and d0/d7/d30/d60/d90 (JSON-ready). */
export interface LtvTriangle {
  appid: string
  grain: CohortGrain
  ageUnit: 'day' | 'week'
  unit: 'fen'
  from: string
  to: string
  source: CohortSource | null
  maxAge: number
  /** The last community day whose cells are built (null: none yet). */
  builtThrough: string | null
  cohorts: LtvRow[]
  pooled: (LtvFigure & { age: number })[]
  /** Daily ages 0, 7, 30, 60 and 90 of the cohort days in range (week: the days of its weeks). */
  summary: Record<'d0' | 'd7' | 'd30' | 'd60' | 'd90', LtvFigure>
}

interface LtvCell extends AgeCell {
  revenue: number
  payers: number
}

const SUMMARY_AGES = [0, 7, 30, 60, 90] as const

/**
 * The lifetime-value triangle of the cohorts from `from` to `to`: per cohort and age its net
 * revenue in fen (null where the age is not over yet; 0 where nothing was paid), per member, the
 * pooled value per age, and d0/d7/d30/d60/d90 — read from `cohort_ltv` only.
 * @example await ltvTriangle(db, { appid, grain: 'week', from: '2026-09-01', to: '2026-11-30', maxAge: 12 })
 */
export async function ltvTriangle(db: Kysely<Database>, q: LtvQuery): Promise<LtvTriangle> {
  checkCohortQuery('ltv', q)
  const { from, to, lastDay, builtThrough } = await cohortRange(db, q)
  const read = (grain: CohortGrain, last: string, ages: ReturnType<typeof sql>) =>
    sql<LtvCell>`
      select cohort_start::text as start, age, cohort_size as size,
        revenue_fen::float8 as revenue, payers
      from cohort_ltv
      where appid = ${q.appid} and grain = ${grain} and source = ${q.source ?? ''}
        and cohort_start between ${from}::date and ${last}::date and ${ages}
      order by cohort_start, age`
      .execute(db)
      .then((r) => r.rows)
  const cells = await read(q.grain, to, sql`age <= ${q.maxAge}::int`)
  const daily = await read('day', lastDay, sql`age = any(${[...SUMMARY_AGES]}::int[])`)
  const figure = (cs: LtvCell[]): LtvFigure => {
    const size = cs.reduce((n, c) => n + c.size, 0)
    const revenueFen = cs.reduce((n, c) => n + c.revenue, 0)
    const payers = cs.reduce((n, c) => n + c.payers, 0)
    const perMemberFen = size > 0 ? revenueFen / size : null
    return { perMemberFen, revenueFen, size, payers, cohorts: cs.length }
  }
  const at = (age: number) => figure(daily.filter((c) => c.age === age))
  return {
    appid: q.appid,
    grain: q.grain,
    ageUnit: q.grain,
    unit: 'fen',
    from,
    to,
    source: q.source ?? null,
    maxAge: q.maxAge,
    builtThrough,
    cohorts: cohortRows(cells, q.maxAge).map(({ start, size, ages }) => ({
      start,
      size,
      revenueFen: ages.map((c) => c?.revenue ?? null),
      perMemberFen: ages.map((c) => (c ? c.revenue / size : null)),
      payers: ages.map((c) => c?.payers ?? null),
    })),
    pooled: Array.from({ length: q.maxAge + 1 }, (_, age) => ({
      age,
      ...figure(cells.filter((c) => c.age === age)),
    })),
    summary: { d0: at(0), d7: at(7), d30: at(30), d60: at(60), d90: at(90) },
  }
}
