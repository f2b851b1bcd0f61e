/**
 * The invite funnel of a period: invite QR codes issued → follows through them → invitees
 * attributed → invites qualified (the invitee's first check-in) — each the sum of the period's
 * daily figures (`invites.*` rollups, today read live) — then, when the period's invite cohorts
 * have reached it, the members of those cohorts active on their day 7 (cohortTriangle's d7).
 * The stages count different days' events, so a later stage may exceed an earlier one. A sum
 * over a day the nightly job has not built and that is not read live (a gap, series.ts
 * `daySources`) is unknown — null, as a series' period over such a day is — never a count short
 * of that day.
 */
import type { Kysely } from 'kysely'
import { cohortTriangle } from '../../analytics/cohorts.js'
import { type LiveReader, readSeries } from '../../analytics/series.js'
import type { Database } from '../../db/schema.js'

/** The counted stages, in order, and the metric each sums. */
export const FUNNEL_METRICS = {
  qr_issued: 'invites.qr_issued',
  follows: 'invites.follows',
  attributed: 'invites.attributed',
  qualified: 'invites.qualified',
} as const

export type FunnelStage = keyof typeof FUNNEL_METRICS | 'retained'

/** A stage and its count; null: a day of the period has no figure (not built, not read live). */
export interface FunnelCount {
  stage: FunnelStage
  members: number | null
}

/** The stages with their counts; `retained` only when a cohort of the period reached day 7. */
export async function inviteFunnel(
  db: Kysely<Database>,
  q: { appid: string; from: string; to: string; now: Date; timeZone: string; live: LiveReader },
): Promise<FunnelCount[]> {
  const sums = await Promise.all(
    Object.entries(FUNNEL_METRICS).map(async ([stage, metric]) => {
      const s = await readSeries(db, { ...q, metric, granularity: 'day' })
      // A day neither built nor read live (null) makes the sum unknown: 0 would under-count.
      let members: number | null = 0
      for (const p of s.points)
        members = p.value === null || members === null ? null : members + p.value
      return { stage: stage as FunnelStage, members }
    }),
  )
  const cohorts = await cohortTriangle(db, {
    appid: q.appid,
    grain: 'day',
    from: q.from,
    to: q.to,
    maxAge: 7,
    source: 'invite',
  })
  const d7 = cohorts.summary.d7
  return d7.cohorts > 0 ? [...sums, { stage: 'retained', members: d7.retained }] : sums
}
