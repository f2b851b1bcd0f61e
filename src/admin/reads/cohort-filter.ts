/**
 * The console's cohort filter (留存与分层): grain, source and segment from a GET form, and the
 * cohort request they make with the operator API's defaults — the 30 cohort days (12 weeks) up to
 * yesterday, ages 0 … 30 days (0 … 8 weeks).
 */
import * as v from 'valibot'
import { COHORT_SOURCES } from '../../analytics/cohort-query.js'
import type { CohortQuery } from '../../analytics/cohorts.js'
import { addDays } from '../../community/community-time.js'
import { SEGMENTS } from '../../community/segments.js'

/** The filter's fields; an empty source or segment means all of them. */
export const cohortFilterInput = v.object({
  grain: v.optional(v.picklist(['day', 'week'] as const), 'day'),
  source: v.optional(v.picklist(['', ...COHORT_SOURCES] as const), ''),
  segment: v.optional(v.picklist(['', ...SEGMENTS] as const), ''),
})

export type CohortFilter = v.InferOutput<typeof cohortFilterInput>

/** The cohort request of a filter for `appid` on community day `today`. */
export function cohortFilterQuery(f: CohortFilter, appid: string, today: string): CohortQuery {
  const to = addDays(today, -1)
  return {
    appid,
    grain: f.grain,
    from: addDays(to, f.grain === 'week' ? -7 * 11 : -29),
    to,
    maxAge: f.grain === 'week' ? 8 : 30,
    ...(f.source ? { source: f.source } : {}),
    ...(f.segment ? { segment: f.segment } : {}),
  }
}
