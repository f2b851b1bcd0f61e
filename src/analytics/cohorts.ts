/**
 * Retention cohorts (issue #16 item 3): who followed when, and how many of them were active later.
 *
 * Definitions. A member's cohort is the community day of their **first** follow (a re-follow
 * starts no new cohort) and that follow's source (`invite`, `qr` — a campaign or poster QR — or
 * `organic`). "Retained at age k" (grain `day`) = a `member_days` row on follow day + k; age 0 is
 * the follow day itself, so it is 1 or close to it. Grain `week`: the cohort is the members whose
 * first follow falls in one Monday-to-Sunday week, and age k = active on any of the days
 * 7k … 7k + 6 after the member's **own** follow day (every member gets seven whole days per age,
 * so week 1 is days 7–13 for all of them, as d7 is). A week cohort's age k is over for its last
 * member 7k + 12 days after its Monday, so week cells appear on Saturdays.
 *
 * Storage. `buildCohortCells` runs once per community day after `buildDay` (which completes that
 * day's `member_days`) and writes only what became known that day: the day's bit in each active
 * cohort member's `days` (a `member_days` primary-key range joined by member id), the day cells of
 * the cohorts day − k at age k (k = 0 … MAX_DAY_AGE), and on Saturdays the week cells whose age
 * just closed — per source and for all sources (''). Reads are primary-key ranges of
 * `cohort_retention`.
 *
 * Segment filter: the member's **current** segment — as of the last build, which copies the
 * segment of every member moved by `segment_transitions` since the build before (segments are
 * recomputed nightly, before the rollup) — not the segment a member had when a cell was built.
 * Such a per-cell segment would be `new` for every young cohort and different at each age of the
 * same cohort, so a cohort's size would change along its row; the current segment answers what
 * operators ask ("how did the members who are loyal now retain?"). Mind that segments are defined
 * by recent activity, so `active` retains well and `dormant` badly by construction. It is served
 * from `cohort_segment_retention`, cells per (segment, source) kept equal to `cohort_members`: the
 * day's cells are counted per segment with the others (one scan), and each member whose segment
 * the build copies is moved, as a signed delta, out of every built cell of its cohort in the old
 * segment and into the new one — so a build costs what moved that day, and a filtered read is a
 * primary-key range like an unfiltered one.
 *
 * Lifetime value (cohort-ltv.ts) is built in the same transaction, after the retention cells.
 */
import { type Kysely, sql } from 'kysely'
import { addDays, localDay, weekStart } from '../community/community-time.js'
import { noJit } from '../db/keyed-joins.js'
import type { Database, Segment } from '../db/schema.js'
import { buildLtvCells } from './cohort-ltv.js'
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
import { REFERENCE_RETENTION } from './fit.js'

export type { CohortGrain, CohortSource } from './cohort-query.js'
export { MAX_COHORTS, MAX_DAY_AGE, MAX_WEEK_AGE } from './cohort-query.js'

/** How far back a build needs cohort members: the oldest week cohort it may write. */
const HORIZON = WEEK_LAG + 7 * MAX_WEEK_AGE

/** Days tracked per member in `cohort_members.days` (bits 0 … 188: week 26 ends on day 188). */
const TRACKED_DAYS = 7 * MAX_WEEK_AGE + 7
/** bit(TRACKED_DAYS) with bit 0 set: `>> k` sets bit k. */
const BIT0 = sql.raw(`B'1'::bit(${TRACKED_DAYS})`)

/** What `buildCohortCells` wrote. */
export interface CohortBuildResult {
  /** Members who entered `cohort_members` (their cohort day had not been read before). */
  members: number
  /** Cohort members whose segment changed since the last build. */
  segments: number
  dayCells: number
  weekCells: number
}

/**
 * Builds the retention cells that became known on the community day `day` (call it after
 * `buildDay` for that day, every day, oldest first; idempotent, re-runnable). In one transaction:
 * cohort days within the horizon never read are read (members with their activity so far and
 * segment); segments changed since the last build are copied; the day's activity sets its bit;
 * the day cells (cohorts day − k at age k) and, on Saturdays, the week cells whose age just closed
 * are written per source and for all sources (''). With `now`, a day that is not over yet in
 * `timeZone` is refused (its activity is partial).
 * @example await buildCohortCells(db, { appid, day: '2026-11-30', timeZone: 'Asia/Shanghai' })
 */
export async function buildCohortCells(
  db: Kysely<Database>,
  s: { appid: string; day: string; timeZone?: string; now?: Date },
): Promise<CohortBuildResult> {
  if (s.now && s.day >= localDay(s.now, s.timeZone ?? 'Asia/Shanghai'))
    throw new RangeError(`cohort cells: ${s.day} is not over yet`)
  const { appid, day } = s
  return db.transaction().execute(async (trx) => {
    await noJit(trx)
    const missing = await sql<{ day: string }>`
      select g::date::text as day
      from generate_series(${day}::date - ${HORIZON}::int, ${day}::date, interval '1 day') g
      where not exists (select 1 from cohort_days c where c.appid = ${appid} and c.day = g::date)`
      .execute(trx)
      .then((r) => r.rows.map((x) => x.day))
    let members = 0
    if (missing.length > 0) {
      const added = await sql`
        insert into cohort_members (member_id, appid, cohort_day, source, segment, days)
        select distinct on (f.member_id) f.member_id, f.appid, f.day, f.source, m.segment,
          coalesce((select bit_or(${BIT0} >> (md.day - f.day)) from member_days md
            where md.member_id = f.member_id and md.appid = ${appid}
              and md.day between f.day and least(f.day + ${TRACKED_DAYS - 1}::int, ${day}::date)),
            B'0'::bit(${sql.raw(String(TRACKED_DAYS))}))
        from follow_events f left join member_segments m on m.member_id = f.member_id
        where f.appid = ${appid} and f.kind = 'follow' and f.day = any(${missing}::date[])
          and not exists (select 1 from follow_events e
            where e.member_id = f.member_id and e.kind = 'follow' and e.at < f.at)
        order by f.member_id, f.at
        on conflict (member_id) do nothing`.execute(trx)
      members = Number(added.numAffectedRows ?? 0)
      await sql`insert into cohort_days (appid, day)
        select ${appid}, d from unnest(${missing}::date[]) d
        on conflict do nothing`.execute(trx)
    }
    // Segments: the members moved by transitions since the last build (one snapshot), each moved
    // out of every built cell of its cohort in its old segment and into the new one.
    const synced = await sql<{ n: number }>`
      with w as (
        select coalesce((select transitions_through from cohort_syncs where appid = ${appid}),
            '-infinity'::timestamptz) as since,
          (select max(at) from segment_transitions where appid = ${appid}) as through
      ), moved as (
        update cohort_members c set segment = m.segment
        from member_segments m, cohort_members o
        where m.member_id = c.member_id and o.member_id = c.member_id and c.appid = ${appid}
          and c.segment is distinct from m.segment
          -- from the last mark on, inclusive: a chunked recompute (Workers) stamps every chunk
          -- with its run's time, so chunks committed after a sync share the mark's time; moving
          -- a member again to the segment it has is a no-op (the distinct test above)
          and c.member_id in (select t.member_id from segment_transitions t, w
            where t.appid = ${appid} and t.at >= w.since and t.at <= w.through)
        returning c.cohort_day, c.source, c.days, o.segment as old, c.segment as new
      ), signed as (
        select cohort_day, source, days, old as segment, -1 as sign from moved where old is not null
        union all
        select cohort_day, source, days, new, 1 from moved where new is not null
      ), delta as (
        select t.grain, s.segment, t.cohort_start, s.source, t.age, s.sign,
          case when t.grain = 'day' then get_bit(s.days, t.age) = 1
            else substring(s.days from 7 * t.age + 1 for 7) <> B'0000000' end as active
        from signed s join cohort_retention t on t.appid = ${appid} and t.grain = 'day'
          and t.source = '' and t.cohort_start = s.cohort_day
        union all
        select t.grain, s.segment, t.cohort_start, s.source, t.age, s.sign,
          substring(s.days from 7 * t.age + 1 for 7) <> B'0000000'
        from signed s join cohort_retention t on t.appid = ${appid} and t.grain = 'week'
          and t.source = '' and t.cohort_start = date_trunc('week', s.cohort_day)::date
      ), applied as (
        insert into cohort_segment_retention as r
          (appid, grain, segment, cohort_start, source, age, cohort_size, retained)
        select ${appid}, grain, segment, cohort_start, source, age, sum(sign)::int,
          coalesce(sum(sign) filter (where active), 0)::int
        from delta group by grain, segment, cohort_start, source, age
        on conflict (appid, grain, segment, cohort_start, source, age) do update
          set cohort_size = r.cohort_size + excluded.cohort_size,
            retained = r.retained + excluded.retained
      ), mark as (
        insert into cohort_syncs (appid, transitions_through)
        select ${appid}, through from w where through is not null
        on conflict (appid) do update set transitions_through =
          greatest(cohort_syncs.transitions_through, excluded.transitions_through)
      )
      select count(*)::int as n from moved`.execute(trx)
    await sql`
      with a as materialized (
        select member_id from member_days where appid = ${appid} and day = ${day}::date
      )
      update cohort_members c set days = c.days | (${BIT0} >> (${day}::date - c.cohort_day))
      from a
      where c.member_id = a.member_id
        and c.cohort_day between ${day}::date - ${TRACKED_DAYS - 1}::int and ${day}::date
        and get_bit(c.days, ${day}::date - c.cohort_day) = 0`.execute(trx)
    // The day's cells per source, for all sources ('') and per (source, segment): one scan.
    const daily = await sql`
      with g as materialized (
        select cohort_day as start, ${day}::date - cohort_day as age, source, segment,
          grouping(source, segment) as level, count(*)::int as size,
          (count(*) filter (where get_bit(days, ${day}::date - cohort_day) = 1))::int as retained
        from cohort_members
        where appid = ${appid}
          and cohort_day between ${day}::date - ${MAX_DAY_AGE}::int and ${day}::date
        group by grouping sets ((cohort_day), (cohort_day, source), (cohort_day, source, segment))
      ), segmented as (
        ${segmentCells(appid, 'day')}
      )
      ${allCells(appid, 'day')}`.execute(trx)
    let weekCells = 0
    const monday = addDays(day, -WEEK_LAG)
    if (weekStart(monday) === monday) {
      const weekly = await sql`
        with g as materialized (
          select w.start, w.age, c.source, c.segment, grouping(c.source, c.segment) as level,
            count(*)::int as size,
            (count(*) filter (where substring(c.days from 7 * w.age + 1 for 7) <> B'0000000'))::int
              as retained
          from (select k as age, ${monday}::date - 7 * k as start
            from generate_series(0, ${MAX_WEEK_AGE}::int) k) w
          join cohort_members c on c.appid = ${appid}
            and c.cohort_day between w.start and w.start + 6
          group by grouping sets ((w.start, w.age), (w.start, w.age, c.source),
            (w.start, w.age, c.source, c.segment))
        ), segmented as (
          ${segmentCells(appid, 'week')}
        )
        ${allCells(appid, 'week')}`.execute(trx)
      weekCells = Number(weekly.numAffectedRows ?? 0)
    }
    await buildLtvCells(trx, { appid, day, timeZone: s.timeZone ?? 'Asia/Shanghai' })
    await sql`update cohort_days set cells_built_at = ${s.now ?? new Date()}
      where appid = ${appid} and day = ${day}::date`.execute(trx)
    return {
      members,
      segments: synced.rows[0]?.n ?? 0,
      dayCells: Number(daily.numAffectedRows ?? 0),
      weekCells,
    }
  })
}

/** Inserts the per-(source, segment) rows of `g` (level 0) into the segment cells. */
const segmentCells = (appid: string, grain: CohortGrain) => sql`
  insert into cohort_segment_retention as r
    (appid, grain, segment, cohort_start, source, age, cohort_size, retained)
  select ${appid}, ${grain}, segment, start, source, age, size, retained
  from g where level = 0 and segment is not null
  on conflict (appid, grain, segment, cohort_start, source, age) do update
    set cohort_size = excluded.cohort_size, retained = excluded.retained`

/** Inserts the per-source and all-sources ('') rows of `g` into the cells. */
const allCells = (appid: string, grain: CohortGrain) => sql`
  insert into cohort_retention as r (appid, grain, source, cohort_start, age, cohort_size, retained)
  select ${appid}, ${grain}, case level when 1 then source else '' end, start, age, size, retained
  from g where level > 0
  on conflict (appid, grain, source, cohort_start, age) do update
    set cohort_size = excluded.cohort_size, retained = excluded.retained`

/** A cohort triangle request (`segment`: the member's current segment, see the file's comment). */
export type CohortQuery = CohortRangeQuery

/** One cohort: its size and, per age 0 … maxAge, how many were active (null: not over yet). */
export interface CohortRow {
  /** The cohort's day, or its week's Monday. */
  start: string
  size: number
  retained: (number | null)[]
  /** retained / size per age; null where retained is null. */
  shares: (number | null)[]
}

/** Cohorts pooled at one age: Σ retained / Σ size over the cohorts that reached it. */
export interface RetentionFigure {
  share: number | null
  retained: number
  size: number
  cohorts: number
}

/** The triangle, its pooled bottom line, and d1/d7/d30 (JSON-ready). */
export interface CohortTriangle {
  appid: string
  grain: CohortGrain
  ageUnit: 'day' | 'week'
  from: string
  to: string
  source: CohortSource | null
  segment: Segment | null
  maxAge: number
  /** `cells`: read from cohort_retention; `segment-cells`: from cohort_segment_retention. */
  basis: 'cells' | 'segment-cells'
  /** The last community day whose cells are built (null: none yet). */
  builtThrough: string | null
  cohorts: CohortRow[]
  pooled: (RetentionFigure & { age: number })[]
  /** Daily ages 1, 7 and 30 of the cohort days in range (grain `week`: the days of its weeks). */
  summary: { d1: RetentionFigure; d7: RetentionFigure; d30: RetentionFigure }
  reference: typeof REFERENCE_RETENTION
}

interface Cell extends AgeCell {
  retained: number
}

const SUMMARY_AGES = [1, 7, 30]

/**
 * The retention triangle of the cohorts from `from` to `to`: each cohort's size and active members
 * per age (null where the age is not over yet), the pooled share per age, and d1/d7/d30 — from the
 * cells (`cohort_retention`), or, with a segment filter, from the segment cells
 * (`cohort_segment_retention`); never from the members.
 * @example await cohortTriangle(db, { appid, grain: 'day', from: '2026-11-01', to: '2026-11-30', maxAge: 30 })
 */
export async function cohortTriangle(
  db: Kysely<Database>,
  q: CohortQuery,
): Promise<CohortTriangle> {
  checkCohortQuery('cohorts', q)
  const { from, to, lastDay, builtThrough } = await cohortRange(db, q)
  const range = { appid: q.appid, source: q.source, segment: q.segment, from }
  const daily = await storedCells(db, { ...range, grain: 'day', to: lastDay, ages: SUMMARY_AGES })
  const cells = await storedCells(db, { ...range, grain: q.grain, to, maxAge: q.maxAge })
  const figure = (cs: Cell[]): RetentionFigure => {
    const size = cs.reduce((n, c) => n + c.size, 0)
    const retained = cs.reduce((n, c) => n + c.retained, 0)
    return { share: size > 0 ? retained / size : null, retained, size, cohorts: cs.length }
  }
  const summaryAt = (age: number) => figure(daily.filter((c) => c.age === age))
  const shown = cells.filter((c) => c.age <= q.maxAge)
  const cohorts = cohortRows(shown, q.maxAge).map(({ start, size, ages }): CohortRow => {
    const retained = ages.map((c) => c?.retained ?? null)
    return { start, size, retained, shares: retained.map((r) => (r === null ? null : r / size)) }
  })
  return {
    appid: q.appid,
    grain: q.grain,
    ageUnit: q.grain,
    from,
    to,
    source: q.source ?? null,
    segment: q.segment ?? null,
    maxAge: q.maxAge,
    basis: q.segment ? 'segment-cells' : 'cells',
    builtThrough,
    cohorts,
    pooled: Array.from({ length: q.maxAge + 1 }, (_, age) => ({
      age,
      ...figure(shown.filter((c) => c.age === age)),
    })),
    summary: { d1: summaryAt(1), d7: summaryAt(7), d30: summaryAt(30) },
    reference: REFERENCE_RETENTION,
  }
}

/**
 * Cells of one source (none: all) and, with a segment, of that segment: ages 0 … maxAge of the
 * cohorts in range, or the given ages — a primary-key range of `cohort_retention`, or of
 * `cohort_segment_retention` summed over its sources (a segment's empty cells left out).
 */
async function storedCells(
  db: Kysely<Database>,
  q: {
    appid: string
    grain: CohortGrain
    source?: CohortSource
    segment?: Segment
    from: string
    to: string
  } & ({ maxAge: number } | { ages: number[] }),
): Promise<Cell[]> {
  const ages = 'ages' in q ? sql`age = any(${q.ages}::int[])` : sql`age <= ${q.maxAge}::int`
  const range = sql`appid = ${q.appid} and grain = ${q.grain}
    and cohort_start between ${q.from}::date and ${q.to}::date and ${ages}`
  const { rows } = q.segment
    ? await sql<Cell>`
      select cohort_start::text as start, age, sum(cohort_size)::int as size,
        sum(retained)::int as retained
      from cohort_segment_retention
      where ${range} and segment = ${q.segment} ${q.source ? sql`and source = ${q.source}` : sql``}
      group by cohort_start, age
      having sum(cohort_size) > 0
      order by cohort_start, age`.execute(db)
    : await sql<Cell>`
      select cohort_start::text as start, age, cohort_size as size, retained
      from cohort_retention
      where ${range} and source = ${q.source ?? ''}
      order by cohort_start, age`.execute(db)
  return rows
}
