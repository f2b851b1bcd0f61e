/**
 * Campaign analytics: each campaign that ran in a range, its funnel per variant (sent → delivered
 * → clicked → converted, from the campaign report: live recipients plus pruned rollups), the A/B
 * two-proportion tests, the quota it used (every send attempt that reached WeChat), and a
 * minimum-sample warning: the per-variant sample a test needs to detect the observed difference
 * (two-sided α = 0.05, power 0.8), compared with what each variant has.
 */
import { type Kysely, sql } from 'kysely'
import { campaignReport } from '../community/campaign-report.js'
import type { Database } from '../db/schema.js'

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

export async function campaignAnalytics(
  db: Kysely<Database>,
  q: { appid: string; from: Date; to: Date },
) {
  const campaigns = await db
    .selectFrom('campaigns')
    .select(['id', 'name', 'status'])
    .where('appid', '=', q.appid)
    // A run in the range, live or already rolled up (pruned cron runs leave only rollups).
    .where((eb) =>
      eb.or([
        eb.exists(
          eb
            .selectFrom('campaign_runs')
            .select(sql`1`.as('one'))
            .whereRef('campaign_runs.campaign_id', '=', 'campaigns.id')
            .where('campaign_runs.slot', '>=', q.from)
            .where('campaign_runs.slot', '<', q.to),
        ),
        eb.exists(
          eb
            .selectFrom('campaign_rollups')
            .select(sql`1`.as('one'))
            .whereRef('campaign_rollups.campaign_id', '=', 'campaigns.id')
            .where('campaign_rollups.slot', '>=', q.from)
            .where('campaign_rollups.slot', '<', q.to),
        ),
      ]),
    )
    .orderBy('id')
    .execute()
  const out = []
  for (const c of campaigns) {
    const report = await campaignReport(db, c.id)
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
  return out
}
