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
 * recomputed nightly, before the rollup) — not a segment stored per cell. A per-cell segment would
 * be the segment when the cell was built: `new` for every young cohort, and a different one at
 * each age of the same cohort, so a cohort's size would change along its row. The current segment
 * answers what operators ask ("how did the members who are loyal now retain?"); mind that
 * segments are defined by recent activity, so `active` retains well and `dormant` badly by
 * construction. It is read from `cohort_members (appid, segment, cohort_day)` — the filtered
 * members with their activity bits, counted in memory — so its cost grows with the members of
 * those cohorts in that segment, not with all members.
 */
import { type Kysely, sql } from 'kysely'
import { addDays, localDay, weekStart } from '../community/community-time.js'
import type { Database, Segment } from '../db/schema.js'
import { REFERENCE_RETENTION } from './fit.js'

/** The oldest age (days) kept for grain `day`. */
export const MAX_DAY_AGE = 90
/** The oldest age (weeks) kept for grain `week`. */
export const MAX_WEEK_AGE = 26
/** Days after its Monday until a week cohort's age 0 is over for all of it (Sunday + 6). */
const WEEK_LAG = 12
/** How far back a build needs cohort members: the oldest week cohort it may write. */
const HORIZON = WEEK_LAG + 7 * MAX_WEEK_AGE

export type CohortSource = 'invite' | 'qr' | 'organic'
export type CohortGrain = 'day' | 'week'

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
  const upsert = sql`on conflict (appid, grain, source, cohort_start, age) do update
    set cohort_size = excluded.cohort_size, retained = excluded.retained`
  return db.transaction().execute(async (trx) => {
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
        from follow_events f join members m on m.id = f.member_id
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
    // Segments: the members moved by transitions since the last build (one snapshot).
    const synced = await sql<{ n: number }>`
      with w as (
        select coalesce((select transitions_through from cohort_syncs where appid = ${appid}),
            '-infinity'::timestamptz) as since,
          (select max(at) from segment_transitions where appid = ${appid}) as through
      ), moved as (
        update cohort_members c set segment = m.segment
        from members m
        where m.id = c.member_id and c.appid = ${appid} and c.segment is distinct from m.segment
          and c.member_id in (select t.member_id from segment_transitions t, w
            where t.appid = ${appid} and t.at > w.since and t.at <= w.through)
        returning 1
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
    const daily = await sql`
      insert into cohort_retention as r
        (appid, grain, source, cohort_start, age, cohort_size, retained)
      select ${appid}, 'day', coalesce(source, ''), cohort_day, ${day}::date - cohort_day,
        count(*)::int, (count(*) filter (where get_bit(days, ${day}::date - cohort_day) = 1))::int
      from cohort_members
      where appid = ${appid}
        and cohort_day between ${day}::date - ${MAX_DAY_AGE}::int and ${day}::date
      group by grouping sets ((cohort_day), (cohort_day, source))
      ${upsert}`.execute(trx)
    let weekCells = 0
    const monday = addDays(day, -WEEK_LAG)
    if (weekStart(monday) === monday) {
      const weekly = await sql`
        insert into cohort_retention as r
          (appid, grain, source, cohort_start, age, cohort_size, retained)
        select ${appid}, 'week', coalesce(c.source, ''), w.start, w.age, count(*)::int,
          (count(*) filter (where substring(c.days from 7 * w.age + 1 for 7) <> B'0000000'))::int
        from (select k as age, ${monday}::date - 7 * k as start
          from generate_series(0, ${MAX_WEEK_AGE}::int) k) w
        join cohort_members c on c.appid = ${appid}
          and c.cohort_day between w.start and w.start + 6
        group by grouping sets ((w.start, w.age), (w.start, w.age, c.source))
        ${upsert}`.execute(trx)
      weekCells = Number(weekly.numAffectedRows ?? 0)
    }
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

/** A cohort triangle request. */
export interface CohortQuery {
  appid: string
  grain: CohortGrain
  /** The first cohort, `YYYY-MM-DD` (grain `week`: any day of the first week). */
  from: string
  /** The last cohort, inclusive (grain `week`: any day of the last week). */
  to: string
  /** Only members acquired this way. */
  source?: CohortSource
  /** Only members whose segment is this one now (read live, see the file's comment). */
  segment?: Segment
  /** The oldest age shown, in the grain's unit (0 … MAX_DAY_AGE days, 0 … MAX_WEEK_AGE weeks). */
  maxAge: number
}

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
  /** `cells`: read from cohort_retention; `members`: counted from cohort_members (segment). */
  basis: 'cells' | 'members'
  /** The last community day whose cells are built (null: none yet). */
  builtThrough: string | null
  cohorts: CohortRow[]
  pooled: (RetentionFigure & { age: number })[]
  /** Daily ages 1, 7 and 30 of the cohort days in range (grain `week`: the days of its weeks). */
  summary: { d1: RetentionFigure; d7: RetentionFigure; d30: RetentionFigure }
  reference: typeof REFERENCE_RETENTION
}

interface Cell {
  start: string
  age: number
  size: number
  retained: number
}

const SOURCES: readonly CohortSource[] = ['invite', 'qr', 'organic']
const SEGMENTS: readonly Segment[] = ['new', 'active', 'loyal', 'at_risk', 'dormant', 'churned']
const SUMMARY_AGES = [1, 7, 30]
/** At most this many cohorts a request (bounds a request's cost, above all a segment's). */
export const MAX_COHORTS = { day: 366, week: 105 } as const

const isDay = (d: string) => /^\d{4}-\d{2}-\d{2}$/.test(d) && addDays(d, 0) === d
const daysBetween = (a: string, b: string) => (Date.parse(b) - Date.parse(a)) / 86_400_000

function checkQuery(q: CohortQuery): void {
  const fail = (why: string) => {
    throw new RangeError(`cohorts: ${why}`)
  }
  if (q.grain !== 'day' && q.grain !== 'week') fail(`grain must be day or week, got ${q.grain}`)
  const top = q.grain === 'day' ? MAX_DAY_AGE : MAX_WEEK_AGE
  if (!Number.isInteger(q.maxAge) || q.maxAge < 0 || q.maxAge > top)
    fail(`maxAge must be an integer in 0..${top} for grain ${q.grain}`)
  if (!isDay(q.from) || !isDay(q.to)) fail('from and to must be days, YYYY-MM-DD')
  if (q.from > q.to) fail('from must not be after to')
  const span = daysBetween(q.from, q.to) / (q.grain === 'day' ? 1 : 7)
  if (span >= MAX_COHORTS[q.grain]) fail(`at most ${MAX_COHORTS[q.grain]} cohorts a request`)
  if (q.source !== undefined && !SOURCES.includes(q.source)) fail(`unknown source ${q.source}`)
  if (q.segment !== undefined && !SEGMENTS.includes(q.segment)) fail(`unknown segment ${q.segment}`)
}

/**
 * The retention triangle of the cohorts from `from` to `to`: each cohort's size and active members
 * per age (null where the age is not over yet), the pooled share per age, and d1/d7/d30 — from the
 * cells (`cohort_retention`), or, with a segment filter, counted from the activity bits of that
 * segment's cohort members.
 * @example await cohortTriangle(db, { appid, grain: 'day', from: '2026-11-01', to: '2026-11-30', maxAge: 30 })
 */
export async function cohortTriangle(
  db: Kysely<Database>,
  q: CohortQuery,
): Promise<CohortTriangle> {
  checkQuery(q)
  const from = q.grain === 'week' ? weekStart(q.from) : q.from
  const to = q.grain === 'week' ? weekStart(q.to) : q.to
  const lastDay = q.grain === 'week' ? addDays(to, 6) : to
  const built = await db
    .selectFrom('cohort_days')
    .select(sql<string | null>`max(day)::text`.as('day'))
    .where('appid', '=', q.appid)
    .where('cells_built_at', 'is not', null)
    .executeTakeFirst()
  const builtThrough = built?.day ?? null
  const triangleAges = Array.from({ length: q.maxAge + 1 }, (_, age) => age)
  let daily: Cell[]
  let cells: Cell[]
  if (q.segment) {
    const rows = await segmentMembers(db, {
      ...q,
      segment: q.segment,
      from,
      to: lastDay,
      days: Math.max(...SUMMARY_AGES, q.grain === 'day' ? q.maxAge : 7 * q.maxAge + 6) + 1,
    })
    daily = cellsOf(rows, 'day', SUMMARY_AGES, builtThrough)
    cells = cellsOf(rows, q.grain, triangleAges, builtThrough)
  } else {
    const range = { appid: q.appid, source: q.source ?? '', from }
    daily = await storedCells(db, { ...range, grain: 'day', to: lastDay, ages: SUMMARY_AGES })
    cells = await storedCells(db, { ...range, grain: q.grain, to, maxAge: q.maxAge })
  }
  const figure = (cs: Cell[]): RetentionFigure => {
    const size = cs.reduce((n, c) => n + c.size, 0)
    const retained = cs.reduce((n, c) => n + c.retained, 0)
    return { share: size > 0 ? retained / size : null, retained, size, cohorts: cs.length }
  }
  const summaryAt = (age: number) => figure(daily.filter((c) => c.age === age))
  const shown = cells.filter((c) => c.age <= q.maxAge)
  const byStart = new Map<string, Cell[]>()
  for (const c of shown) {
    const list = byStart.get(c.start)
    if (list) list.push(c)
    else byStart.set(c.start, [c])
  }
  const cohorts = [...byStart.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([start, cs]): CohortRow => {
      const size = Math.max(...cs.map((c) => c.size))
      const retained: (number | null)[] = Array(q.maxAge + 1).fill(null)
      for (const c of cs) retained[c.age] = c.retained
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
    basis: q.segment ? 'members' : 'cells',
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
 * Cells of `cohort_retention` for one source ('' = all): ages 0 … maxAge of the cohorts in range
 * (a primary-key range), or the given ages (a range of the age index per age).
 */
async function storedCells(
  db: Kysely<Database>,
  q: { appid: string; grain: CohortGrain; source: string; from: string; to: string } & (
    | { maxAge: number }
    | { ages: number[] }
  ),
): Promise<Cell[]> {
  const { rows } = await sql<Cell>`
    select cohort_start::text as start, age, cohort_size as size, retained
    from cohort_retention
    where appid = ${q.appid} and grain = ${q.grain} and source = ${q.source}
      and cohort_start between ${q.from}::date and ${q.to}::date
      and ${'ages' in q ? sql`age = any(${q.ages}::int[])` : sql`age <= ${q.maxAge}::int`}
    order by cohort_start, age`.execute(db)
  return rows
}

interface SegmentMember {
  /** The cohort day. */
  day: string
  /** Activity from the cohort day on: character k = '1' when active on day + k. */
  bits: string
}

/**
 * The members of the cohorts from `from` to `to` whose segment (as of the last build) is
 * `segment`, with the first `days` days of their activity: one range of
 * `cohort_members (appid, segment, cohort_day)`.
 */
async function segmentMembers(
  db: Kysely<Database>,
  q: {
    appid: string
    segment: Segment
    source?: CohortSource
    from: string
    to: string
    days: number
  },
): Promise<SegmentMember[]> {
  const { rows } = await sql<SegmentMember>`
    select cohort_day::text as day, substring(days::text from 1 for ${q.days}::int) as bits
    from cohort_members
    where appid = ${q.appid} and segment = ${q.segment}
      and cohort_day between ${q.from}::date and ${q.to}::date
      ${q.source ? sql`and source = ${q.source}` : sql``}`.execute(db)
  return rows
}

/**
 * Cells counted from members' activity bits, for the given ages: a cell exists once its age is
 * over for the whole cohort and built (`builtThrough`), as the stored cells do.
 */
function cellsOf(
  members: SegmentMember[],
  grain: CohortGrain,
  ages: number[],
  builtThrough: string | null,
): Cell[] {
  if (!builtThrough) return []
  const week = grain === 'week'
  const reached = (start: string, age: number) =>
    (week ? addDays(start, 7 * age + WEEK_LAG) : addDays(start, age)) <= builtThrough
  const active = (bits: string, age: number) =>
    week ? bits.slice(7 * age, 7 * age + 7).includes('1') : bits[age] === '1'
  const byStart = new Map<string, SegmentMember[]>()
  for (const m of members) {
    const start = week ? weekStart(m.day) : m.day
    const list = byStart.get(start)
    if (list) list.push(m)
    else byStart.set(start, [m])
  }
  const cells: Cell[] = []
  for (const [start, ms] of [...byStart].sort(([a], [b]) => (a < b ? -1 : 1)))
    for (const age of ages)
      if (reached(start, age))
        cells.push({
          start,
          age,
          size: ms.length,
          retained: ms.filter((m) => active(m.bits, age)).length,
        })
  return cells
}
