/**
 * Campaign analytics: each campaign that ran in a range, its funnel per variant (audience,
 * skipped, sent → delivered → clicked → converted), the A/B two-proportion tests, the quota it
 * used (every send attempt that reached WeChat), and a minimum-sample warning: the per-variant
 * sample a test needs to detect the observed difference (two-sided α = 0.05, power 0.8), compared
 * with what each variant has. Served from the rollups (campaign-figures.ts): the daily campaign
 * figures up to the last built day (`asOf`), the days since read live, and the per-run rollups of
 * campaigns whose recipients were all pruned; one campaign's report from its recipients is
 * `campaignReport`. They agree except for events later than a run's window (61 days).
 */
import { type Kysely, sql } from 'kysely'
import { type VariantCounts, variantReport } from '../community/campaign-report.js'
import type { Database } from '../db/schema.js'
import { type CampaignSpan, campaignFigures, EVENT_WINDOW_DAYS } from './campaign-figures.js'
import type { LiveReader } from './series.js'

/** z for α/2 = 0.025 and for power 0.8. */
const Z_ALPHA = 1.959964
const Z_BETA = 0.841621
/** Below this many recipients per variant no rate is worth comparing. */
export const MIN_VARIANT_SAMPLE = 100

/**
 * The sample per variant a two-proportion test needs to detect `p1` vs `p2` (α 0.05, power 0.8);
 * null when the rates are equal (no difference to detect).
 */
export function requiredSample(p1: number, p2: number): number | null {
  if (p1 === p2) return null
  const n = ((Z_ALPHA + Z_BETA) ** 2 * (p1 * (1 - p1) + p2 * (1 - p2))) / (p1 - p2) ** 2
  return Math.ceil(n)
}

/**
 * The campaigns with a run in `[from, to)` and their figures per variant, from the rollups as of
 * `asOf` (the last built day) plus the days after it read live.
 */
export async function campaignAnalytics(
  db: Kysely<Database>,
  q: {
    appid: string
    from: Date
    to: Date
    /** The community's today and time zone (days after `asOf` up to today are read live). */
    today: string
    timeZone: string
    live: LiveReader
  },
) {
  const campaigns = await campaignSpans(db, q)
  const figures = await campaignFigures(db, {
    appid: q.appid,
    today: q.today,
    timeZone: q.timeZone,
    live: q.live,
    campaigns,
  })
  const out = []
  for (const c of campaigns) {
    const report = variantReport(figures.counts.get(c.id) ?? [])
    const [a, b] = report.variants
    const needed =
      a && b && a.conversionRate !== null && b.conversionRate !== null
        ? requiredSample(a.conversionRate, b.conversionRate)
        : null
    const smallest = Math.min(...report.variants.map((v) => v.enqueued))
    const warnings: string[] = []
    if (report.variants.length > 1 && smallest < MIN_VARIANT_SAMPLE)
      warnings.push(`每个版本至少需要 ${MIN_VARIANT_SAMPLE} 人，最少的只有 ${smallest} 人`)
    if (needed !== null && smallest < needed)
      warnings.push(`要可靠地区分两个版本的转化率，每个版本需要约 ${needed} 人（现有 ${smallest}）`)
    const unbuilt = figures.unbuilt.get(c.id)
    if (unbuilt)
      warnings.push(
        `有 ${unbuilt.length} 天（${unbuilt[0]} 至 ${unbuilt.at(-1)}）尚未汇总，这些天的数字未计入；可用 POST analytics/rebuild 补建`,
      )
    out.push({
      id: c.id,
      name: c.name,
      status: c.status,
      variants: report.variants,
      abTest: report.abTest,
      quotaUsed: report.variants.reduce((n, v) => n + v.sent + v.failed, 0),
      sample: { smallestVariant: smallest, neededPerVariant: needed },
      warnings,
    })
  }
  return { asOf: figures.asOf, campaigns: out }
}

/**
 * Sent → delivered → clicked → converted per variant of the campaigns `ids` (the console's list),
 * from the rollups like {@link campaignAnalytics}; a campaign that never ran has none.
 */
export async function campaignFunnels(
  db: Kysely<Database>,
  q: { appid: string; ids: number[]; today: string; timeZone: string; live: LiveReader },
): Promise<Map<number, VariantCounts[]>> {
  if (q.ids.length === 0) return new Map()
  const campaigns = await campaignSpans(db, q)
  return (await campaignFigures(db, { ...q, campaigns })).counts
}

/**
 * The campaigns of the account with a run in `[from, to)`, or those of `ids` that ran: their first
 * and last run's community days (the last extended by the events window) and whether every run
 * was pruned into rollups.
 */
async function campaignSpans(
  db: Kysely<Database>,
  q: { appid: string; timeZone: string } & ({ from: Date; to: Date } | { ids: number[] }),
): Promise<(CampaignSpan & { name: string; status: string })[]> {
  const which =
    'ids' in q
      ? sql`c.id in (${sql.join(q.ids)}) and (r.first is not null or k.first is not null)`
      : sql`(exists (select 1 from campaign_runs x where x.campaign_id = c.id
          and x.slot >= ${q.from} and x.slot < ${q.to})
        or exists (select 1 from campaign_rollups x where x.campaign_id = c.id
          and x.slot >= ${q.from} and x.slot < ${q.to}))`
  const { rows } = await sql<CampaignSpan & { name: string; status: string }>`
    select c.id, c.name, c.status,
      to_char(least(r.first, k.first) at time zone ${q.timeZone}, 'YYYY-MM-DD') as "firstDay",
      to_char((greatest(r.last, k.last) at time zone ${q.timeZone})::date
        + ${EVENT_WINDOW_DAYS}::int, 'YYYY-MM-DD') as "lastDay",
      r.live = 0 as pruned
    from campaigns c
    cross join lateral (select min(slot) as first, max(slot) as last,
        count(*) filter (where pruned_at is null) as live
      from campaign_runs where campaign_id = c.id) r
    cross join lateral (select min(slot) as first, max(slot) as last
      from campaign_rollups where campaign_id = c.id) k
    where c.appid = ${q.appid}
      -- a run in the range, live or already rolled up (pruned cron runs leave only rollups)
      and ${which}
    order by c.id`.execute(db)
  return rows
}
