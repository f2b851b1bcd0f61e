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
 * day's `member_days`), writing only the cells that became known that day: for grain `day` the
 * cohorts day − k (k = 0 … MAX_DAY_AGE) at age k, from that one day's `member_days` (a primary-key
 * range) joined to `cohort_members` by member id; for grain `week` (Saturdays) the week cohorts at
 * the age that just closed. The read path sums a primary-key range of `cohort_retention`.
 *
 * Segment filter: the members' **current** segment, read live (`cohort_members` joined to
 * `members` and `member_days` by index), not a stored dimension. A segment stored per cell would
 * be the segment when the cell was built — `new` for every young cohort, and a different one at
 * each age of the same cohort, so a cohort's size would change along its row. The current segment
 * is the question operators ask ("how did the members who are loyal now retain?") — mind that
 * segments are defined by recent activity, so `active` retains well and `dormant` badly by
 * construction. Its cost grows with the members of the cohorts in range, not with all members.
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

/** What `buildCohortCells` wrote. */
export interface CohortBuildResult {
  /** Members who entered `cohort_members` (their cohort day had not been read before). */
  members: number
  dayCells: number
  weekCells: number
}

/**
 * Builds the retention cells that became known on the community day `day` (call it after
 * `buildDay` for that day, oldest day first; idempotent, re-runnable). Cohort days within the
 * horizon whose members were never read are read first, so a gap in past builds leaves no cohort
 * out. With `now`, a day that is not over yet in `timeZone` is refused (its activity is partial).
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
    const missing = await sql<{ day: string }>`
      select g::date::text as day
      from generate_series(${day}::date - ${HORIZON}::int, ${day}::date, interval '1 day') g
      where not exists (select 1 from cohort_days c where c.appid = ${appid} and c.day = g::date)`
      .execute(trx)
      .then((r) => r.rows.map((x) => x.day))
    let members = 0
    if (missing.length > 0) {
      const added = await sql`
        insert into cohort_members (member_id, appid, cohort_day, source)
        select distinct on (f.member_id) f.member_id, f.appid, f.day, f.source
        from follow_events f
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
    const daily = await sql`
      insert into cohort_retention as r
        (appid, grain, cohort_start, source, age, cohort_size, retained)
      select ${appid}, 'day', s.cohort_day, s.source, ${day}::date - s.cohort_day, s.n,
        coalesce(a.n, 0)
      from (
        select cohort_day, source, count(*)::int as n from cohort_members
        where appid = ${appid} and cohort_day between ${day}::date - ${MAX_DAY_AGE}::int
          and ${day}::date
        group by cohort_day, source
      ) s left join (
        select c.cohort_day, c.source, count(*)::int as n
        from member_days md join cohort_members c on c.member_id = md.member_id
        where md.appid = ${appid} and md.day = ${day}::date
          and c.cohort_day between ${day}::date - ${MAX_DAY_AGE}::int and ${day}::date
        group by c.cohort_day, c.source
      ) a on a.cohort_day = s.cohort_day and a.source = s.source
      on conflict (appid, grain, cohort_start, source, age) do update
        set cohort_size = excluded.cohort_size, retained = excluded.retained`.execute(trx)
    let weekCells = 0
    const monday = addDays(day, -WEEK_LAG)
    if (weekStart(monday) === monday) {
      const weekly = await sql`
        insert into cohort_retention as r
          (appid, grain, cohort_start, source, age, cohort_size, retained)
        select ${appid}, 'week', w.start, c.source, w.age, count(*)::int,
          (count(*) filter (where exists (select 1 from member_days md
            where md.member_id = c.member_id and md.appid = ${appid}
              and md.day between c.cohort_day + 7 * w.age and c.cohort_day + 7 * w.age + 6)))::int
        from (select k as age, ${monday}::date - 7 * k as start
          from generate_series(0, ${MAX_WEEK_AGE}::int) k) w
        join cohort_members c on c.appid = ${appid}
          and c.cohort_day between w.start and w.start + 6
        group by w.start, c.source, w.age
        on conflict (appid, grain, cohort_start, source, age) do update
          set cohort_size = excluded.cohort_size, retained = excluded.retained`.execute(trx)
      weekCells = Number(weekly.numAffectedRows ?? 0)
    }
    await sql`update cohort_days set cells_built_at = ${s.now ?? new Date()}
      where appid = ${appid} and day = ${day}::date`.execute(trx)
    return { members, dayCells: Number(daily.numAffectedRows ?? 0), weekCells }
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
  /** `cells`: summed from cohort_retention; `members`: counted live (segment filter). */
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
/** At most this many cohorts a request (bounds the live path's cost). */
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
 * cells (`cohort_retention`), or, with a segment filter, counted live from the members.
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
  const read = (grain: CohortGrain, until: string, maxAge: number, extra: number[]) =>
    q.segment
      ? liveCells(db, {
          ...q,
          segment: q.segment,
          grain,
          from,
          to: until,
          maxAge,
          extra,
          builtThrough,
        })
      : storedCells(db, { ...q, grain, from, to: until, maxAge, extra })
  const daily = await read('day', lastDay, q.grain === 'day' ? q.maxAge : -1, SUMMARY_AGES)
  const cells = q.grain === 'day' ? daily : await read('week', to, q.maxAge, [])
  const figure = (cs: Cell[]): RetentionFigure => {
    const size = cs.reduce((n, c) => n + c.size, 0)
    const retained = cs.reduce((n, c) => n + c.retained, 0)
    return { share: size > 0 ? retained / size : null, retained, size, cohorts: cs.length }
  }
  const summaryAt = (age: number) => figure(daily.filter((c) => c.age === age))
  const shown = cells.filter((c) => c.age <= q.maxAge)
  const byStart = new Map<string, Cell[]>()
  for (const c of shown) byStart.set(c.start, [...(byStart.get(c.start) ?? []), c])
  const cohorts = [...byStart.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([start, cs]): CohortRow => {
      const size = Math.max(...cs.map((c) => c.size))
      const retained = Array.from(
        { length: q.maxAge + 1 },
        (_, age) => cs.find((c) => c.age === age)?.retained ?? null,
      )
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

interface CellQuery {
  appid: string
  grain: CohortGrain
  from: string
  to: string
  source?: CohortSource
  /** Ages 0 … maxAge, plus `extra`. */
  maxAge: number
  extra: number[]
}

/** Cells summed over sources from `cohort_retention` (a primary-key range). */
async function storedCells(db: Kysely<Database>, q: CellQuery): Promise<Cell[]> {
  const { rows } = await sql<Cell>`
    select cohort_start::text as start, age, sum(cohort_size)::int as size,
      sum(retained)::int as retained
    from cohort_retention
    where appid = ${q.appid} and grain = ${q.grain}
      and cohort_start between ${q.from}::date and ${q.to}::date
      and (age <= ${q.maxAge}::int or age = any(${q.extra}::int[]))
      ${q.source ? sql`and source = ${q.source}` : sql``}
    group by cohort_start, age
    order by cohort_start, age`.execute(db)
  return rows
}

/**
 * Cells counted from the members of the cohorts whose segment is `segment` now: sizes from
 * `cohort_members` ⋈ `members`, activity from `member_days` by (member_id, day). A cell exists
 * once its age is over for the whole cohort and built (`builtThrough`), as in the stored cells.
 */
async function liveCells(
  db: Kysely<Database>,
  q: CellQuery & { segment: Segment; builtThrough: string | null },
): Promise<Cell[]> {
  if (!q.builtThrough) return []
  const ages = [...Array.from({ length: q.maxAge + 1 }, (_, i) => i), ...q.extra]
  const top = Math.max(...ages)
  const week = q.grain === 'week'
  const start = week
    ? sql`c.cohort_day - (extract(isodow from c.cohort_day)::int - 1)`
    : sql`c.cohort_day`
  const { rows } = await sql<{ start: string; age: number; n: number }>`
    with c as (
      select c.member_id, c.cohort_day, ${start} as start
      from cohort_members c join members m on m.id = c.member_id
      where c.appid = ${q.appid} and c.cohort_day between ${q.from}::date and ${q.to}::date
        and m.segment = ${q.segment} ${q.source ? sql`and c.source = ${q.source}` : sql``}
    )
    select start::text as start, -1 as age, count(*)::int as n from c group by c.start
    union all
    select c.start::text, ${week ? sql`(md.day - c.cohort_day) / 7` : sql`md.day - c.cohort_day`},
      count(distinct c.member_id)::int
    from c join member_days md on md.member_id = c.member_id and md.appid = ${q.appid}
      and md.day between c.cohort_day and c.cohort_day + ${week ? 7 * top + 6 : top}::int
      and md.day <= ${q.builtThrough}::date
    group by 1, 2`.execute(db)
  const counts = new Map(rows.map((r) => [`${r.start}/${r.age}`, r.n]))
  const reached = (s: string, age: number) =>
    (week ? addDays(s, 7 * age + WEEK_LAG) : addDays(s, age)) <= q.builtThrough!
  const cells: Cell[] = []
  for (const r of rows.filter((x) => x.age === -1).sort((a, b) => (a.start < b.start ? -1 : 1)))
    for (const age of new Set(ages))
      if (age >= 0 && reached(r.start, age))
        cells.push({
          start: r.start,
          age,
          size: r.n,
          retained: counts.get(`${r.start}/${age}`) ?? 0,
        })
  return cells
}
