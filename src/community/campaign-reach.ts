/**
 * Whom a campaign reached, counting each member once however many of its runs they were in: the
 * campaign report's per-variant counts ({@link campaignReport}) count pushes — a weekly campaign to
 * the same 1,000 members has an audience of 4,000 after four runs — which is not reach. Read from
 * the recipients still kept: the runs rolled up by retention (campaign-retention.ts) keep only
 * counts, so their members cannot be told apart and are left out (`prunedRuns` says how many).
 */
import { type Kysely, sql } from 'kysely'
import type { Database } from '../db/schema.js'

/** Distinct members of a variant (or of the whole campaign: `variant` null). */
export interface MemberReach {
  variant: string | null
  /** Members in the audience of at least one run (enqueued or skipped). */
  audience: number
  /** Members with at least one push enqueued. */
  enqueued: number
  /** Members at least one push was sent to. */
  sent: number
  /** Members who converted after at least one of their pushes. */
  converted: number
  /** converted ÷ enqueued members (intent to treat, as the per-push rates), null without any. */
  conversionRate: number | null
}

/** A campaign's reach in distinct members, per variant and in all, over `runs` kept runs. */
export interface CampaignReach {
  variants: MemberReach[]
  total: MemberReach
  /** Runs whose recipients are kept and counted here. */
  runs: number
  /** Runs rolled up by retention: their members are not in these counts. */
  prunedRuns: number
}

const round = (x: number) => Math.round(x * 10_000) / 10_000

/**
 * Counts campaign `campaignId`'s distinct members, per variant and in all (a member whose variant
 * changed with the weights counts once in each variant and once in the total).
 * @example const { total } = await campaignReach(db, 7) // total.audience: members, not pushes
 */
export async function campaignReach(
  db: Kysely<Database>,
  campaignId: number,
): Promise<CampaignReach> {
  const { rows } = await sql<{
    variant: string | null
    whole: boolean
    audience: number
    enqueued: number
    sent: number
    converted: number
    runs: number
  }>`
    select r.variant, grouping(r.variant) = 1 as whole,
      count(distinct r.member_id)::int as audience,
      (count(distinct r.member_id) filter (where r.outcome = 'enqueued'))::int as enqueued,
      (count(distinct r.member_id) filter (where o.status = 'sent'))::int as sent,
      (count(distinct r.member_id) filter (where r.converted_at is not null))::int as converted,
      count(distinct r.slot)::int as runs
    from campaign_recipients r
    join campaigns c on c.id = r.campaign_id
    join members m on m.id = r.member_id
    left join push_outbox o
      on o.appid = c.appid and o.source = r.outbox_source and o.openid = m.openid
    where r.campaign_id = ${campaignId}
    group by grouping sets ((r.variant), ())
    order by whole, r.variant`.execute(db)
  const { rows: pruned } = await sql<{ n: number }>`
    select count(distinct slot)::int as n from campaign_rollups
    where campaign_id = ${campaignId}`.execute(db)
  const reach = (r: (typeof rows)[number] | undefined, variant: string | null): MemberReach => ({
    variant,
    audience: r?.audience ?? 0,
    enqueued: r?.enqueued ?? 0,
    sent: r?.sent ?? 0,
    converted: r?.converted ?? 0,
    conversionRate: r?.enqueued ? round(r.converted / r.enqueued) : null,
  })
  const whole = rows.find((r) => r.whole)
  return {
    variants: rows.filter((r) => !r.whole).map((r) => reach(r, r.variant)),
    total: reach(whole, null),
    runs: whole?.runs ?? 0,
    prunedRuns: pruned[0]?.n ?? 0,
  }
}
