/**
 * The analytics tables as CSV (`format=csv`): the retention triangle and the LTV triangle (one row
 * per cohort: start, size, then one column per age, empty where the age is not over yet) and the
 * campaigns' funnel (one row per campaign and variant).
 */
import type { Context } from 'hono'
import type { campaignAnalytics } from '../analytics/campaigns.js'
import type { LtvTriangle } from '../analytics/cohort-ltv.js'
import type { CohortTriangle } from '../analytics/cohorts.js'
import { csvResponse } from './csv.js'

const ageColumns = (maxAge: number) => Array.from({ length: maxAge + 1 }, (_, k) => `age_${k}`)
const filters = (t: { grain: string; source: string | null; from: string; to: string }) =>
  `${t.grain}${t.source ? `-${t.source}` : ''}-${t.from}-${t.to}.csv`

/** The retention triangle: members active per age (counts; divide by `size` for the share). */
export function cohortsCsv(c: Context, t: CohortTriangle): Response {
  return csvResponse(
    c,
    `cohorts-${t.segment ? `${t.segment}-` : ''}${filters(t)}`,
    ['cohort', 'size', ...ageColumns(t.maxAge)],
    t.cohorts.map((r) => [r.start, r.size, ...r.retained]),
  )
}

/** The LTV triangle: the cohort's cumulative net revenue per age, in fen. */
export function ltvCsv(c: Context, t: LtvTriangle): Response {
  return csvResponse(
    c,
    `ltv-${filters(t)}`,
    ['cohort', 'size', ...ageColumns(t.maxAge)],
    t.cohorts.map((r) => [r.start, r.size, ...r.revenueFen]),
  )
}

/**
 * The campaigns' funnel per variant. The enqueued pushes neither sent nor failed — withdrawn
 * (opted out since, cancelled), unknown, still queued — come last, after the rates, so the
 * columns before them keep their places.
 */
export function campaignsCsv(
  c: Context,
  filename: string,
  campaigns: Awaited<ReturnType<typeof campaignAnalytics>>['campaigns'],
): Response {
  return csvResponse(
    c,
    filename,
    [
      'campaign_id',
      'campaign',
      'status',
      'variant',
      'audience',
      'enqueued',
      'capped',
      'opted_out',
      'unreachable',
      'sent',
      'failed',
      'delivered',
      'clicked',
      'converted',
      'click_rate',
      'conversion_rate',
      'withdrawn_opted_out',
      'cancelled',
      'unknown',
      'queued',
    ],
    campaigns.flatMap((k) =>
      k.variants.map((v) => [
        k.id,
        k.name,
        k.status,
        v.variant,
        v.audience,
        v.enqueued,
        v.skipped.capped,
        v.skipped.optedOut,
        v.skipped.unreachable,
        v.sent,
        v.failed,
        v.delivered,
        v.clicked,
        v.converted,
        v.clickRate,
        v.conversionRate,
        v.withdrawn.optedOut,
        v.withdrawn.cancelled,
        v.unknown,
        v.queued,
      ]),
    ),
  )
}
