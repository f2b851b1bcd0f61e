/**
 * What the cohort reads share (retention in cohorts.ts, lifetime value in cohort-ltv.ts): the
 * request's checks, its range of cohort starts, how far the cells are built, and a cohort's cells
 * laid out by age.
 */
import { type Kysely, sql } from 'kysely'
import { addDays, weekStart } from '../community/community-time.js'
import type { Database, Segment } from '../db/schema.js'

/** The oldest age (days) kept for grain `day`. */
export const MAX_DAY_AGE = 90
/** The oldest age (weeks) kept for grain `week`. */
export const MAX_WEEK_AGE = 26
/** Days after its Monday until a week cohort's age 0 is over for all of it (Sunday + 6). */
export const WEEK_LAG = 12
/** At most this many cohorts a request (bounds a request's cost). */
export const MAX_COHORTS = { day: 366, week: 105 } as const

export type CohortSource = 'invite' | 'qr' | 'organic'
export type CohortGrain = 'day' | 'week'

export const COHORT_SOURCES: readonly CohortSource[] = ['invite', 'qr', 'organic']
const SEGMENTS: readonly Segment[] = ['new', 'active', 'loyal', 'at_risk', 'dormant', 'churned']

/** A request over a range of cohorts. */
export interface CohortRangeQuery {
  appid: string
  grain: CohortGrain
  /** The first cohort, `YYYY-MM-DD` (grain `week`: any day of the first week). */
  from: string
  /** The last cohort, inclusive (grain `week`: any day of the last week). */
  to: string
  /** Only members acquired this way. */
  source?: CohortSource
  /** Only members whose segment is this one now (as of the last build). */
  segment?: Segment
  /** The oldest age shown, in the grain's unit (0 … MAX_DAY_AGE days, 0 … MAX_WEEK_AGE weeks). */
  maxAge: number
}

const isDay = (d: string) => /^\d{4}-\d{2}-\d{2}$/.test(d) && addDays(d, 0) === d
const daysBetween = (a: string, b: string) => (Date.parse(b) - Date.parse(a)) / 86_400_000

/** Throws a RangeError (`<what>: why`) for a request the cells cannot answer cheaply. */
export function checkCohortQuery(what: string, q: CohortRangeQuery): void {
  const fail = (why: string) => {
    throw new RangeError(`${what}: ${why}`)
  }
  if (q.grain !== 'day' && q.grain !== 'week') fail(`grain must be day or week, got ${q.grain}`)
  const top = q.grain === 'day' ? MAX_DAY_AGE : MAX_WEEK_AGE
  if (!Number.isInteger(q.maxAge) || q.maxAge < 0 || q.maxAge > top)
    fail(`maxAge must be an integer in 0..${top} for grain ${q.grain}`)
  if (!isDay(q.from) || !isDay(q.to)) fail('from and to must be days, YYYY-MM-DD')
  if (q.from > q.to) fail('from must not be after to')
  const span = daysBetween(q.from, q.to) / (q.grain === 'day' ? 1 : 7)
  if (span >= MAX_COHORTS[q.grain]) fail(`at most ${MAX_COHORTS[q.grain]} cohorts a request`)
  if (q.source !== undefined && !COHORT_SOURCES.includes(q.source))
    fail(`unknown source ${q.source}`)
  if (q.segment !== undefined && !SEGMENTS.includes(q.segment)) fail(`unknown segment ${q.segment}`)
}

/**
 * The cohort starts of a request (weeks: their Mondays), the last follow day they cover, and the
 * last community day whose cells are built (null: none yet).
 */
export async function cohortRange(db: Kysely<Database>, q: CohortRangeQuery) {
  const from = q.grain === 'week' ? weekStart(q.from) : q.from
  const to = q.grain === 'week' ? weekStart(q.to) : q.to
  const built = await db
    .selectFrom('cohort_days')
    .select(sql<string | null>`max(day)::text`.as('day'))
    .where('appid', '=', q.appid)
    .where('cells_built_at', 'is not', null)
    .executeTakeFirst()
  return {
    from,
    to,
    lastDay: q.grain === 'week' ? addDays(to, 6) : to,
    builtThrough: built?.day ?? null,
  }
}

/** A cell of a cohort at one age: the cohort's size then, and the cell's own figures. */
export interface AgeCell {
  start: string
  age: number
  size: number
}

/**
 * Cells grouped into one row per cohort, oldest first: its size and its cells by age 0 … maxAge
 * (null where the age is not built yet).
 */
export function cohortRows<C extends AgeCell>(
  cells: C[],
  maxAge: number,
): { start: string; size: number; ages: (C | null)[] }[] {
  const byStart = new Map<string, C[]>()
  for (const c of cells) {
    if (c.age > maxAge) continue
    const list = byStart.get(c.start)
    if (list) list.push(c)
    else byStart.set(c.start, [c])
  }
  return [...byStart.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([start, cs]) => {
      const ages: (C | null)[] = Array(maxAge + 1).fill(null)
      for (const c of cs) ages[c.age] = c
      return { start, size: Math.max(...cs.map((c) => c.size)), ages }
    })
}
