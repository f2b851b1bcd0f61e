/**
 * What a campaign achieved: conversions and redemptions (marked incrementally every minute), and
 * the report per variant — audience, skipped, enqueued and how each enqueued push ended (sent,
 * failed, withdrawn, unknown, still queued), delivered, clicked, converted, redeemed — with a
 * two-proportion z-test between the first two variants (so a variant whose template names {{rec}}
 * against one without shows the recommendations' click and redemption uplift). Live recipients
 * and the rollups of pruned ones (campaign-retention.ts) are counted by one list,
 * {@link pushOutcomes}.
 */
import type { Kysely } from 'kysely'
import { sql } from 'kysely'
import type { Database } from '../db/schema.js'
import { MAX_CONVERSION_DAYS } from './campaigns.js'
import { CONVERSION_SETTLE_MS, convertingActivity, settledBy } from './marketing-opt-out.js'
import { OPTED_OUT } from './outbox.js'

/**
 * Conversion marking looks this far behind its watermark (activity committed late, clocks, and
 * activity too recent to count at the last mark: more than {@link CONVERSION_SETTLE_MS}).
 */
const MARK_OVERLAP_MS = 5 * 60_000

/**
 * Marks recipients who were active (any member action but opting out: {@link convertingActivity})
 * or bought something within the campaign's conversion window after their push was sent (a push
 * held, cancelled, failed or still queued converts no one) — and, apart from that, those who
 * redeemed a reward in it (`redeemed_at`, the first such redemption, even one
 * cancelled later). Activity and purchases count once a minute old ({@link CONVERSION_SETTLE_MS}:
 * a 退订 commits its activity a moment before its opt-out); the first of them after the push is
 * the conversion, set once. Incremental: only members active (or buying) since the last mark —
 * kept in `campaign_watermarks`, less a 5-minute overlap, which also reads again the activity too
 * recent to count last time — are joined to their open recipients inside the window (index on
 * open recipients by member and enqueue time), so its cost follows the activity since the last
 * run, not the history. Run every minute by the campaigns job; concurrent calls are serialized by
 * the watermark's row lock. Returns how many converted.
 */
export async function markConversions(db: Kysely<Database>, now: Date): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const first = new Date(now.getTime() - (MAX_CONVERSION_DAYS + 1) * 86_400_000)
    await trx
      .insertInto('campaign_watermarks')
      .values({ name: 'conversions', marked_at: first })
      .onConflict((oc) => oc.column('name').doNothing())
      .execute()
    const mark = await trx
      .selectFrom('campaign_watermarks')
      .select('marked_at')
      .where('name', '=', 'conversions')
      .forUpdate()
      .executeTakeFirstOrThrow()
    const since = new Date(Math.min(mark.marked_at.getTime(), now.getTime()) - MARK_OVERLAP_MS)
    const { rows } = await conversionsStatement(since, now).execute(trx)
    await redemptionsStatement(since, now).execute(trx)
    await trx
      .updateTable('campaign_watermarks')
      .set({ marked_at: now })
      .where('name', '=', 'conversions')
      .execute()
    return rows[0]!.n
  })
}

/**
 * The conversions `markConversions` marks: recipients whose member was active or bought since
 * `since`, after their push was sent and within the campaign's window (see there). Each outbox
 * item is found by its whole key, whatever the planner's statistics (the test holds its plan to
 * rows in proportion to the recipients on fresh, unanalyzed tables).
 */
export function conversionsStatement(since: Date, now: Date) {
  const settled = settledBy(now)
  return sql<{ n: number }>`
    with moved as (
      select id, openid, last_active_at, last_purchased_at, marketing_opted_out_at from members
      where last_active_at > ${since}
      union
      select id, openid, last_active_at, last_purchased_at, marketing_opted_out_at from members
      where last_purchased_at > ${since}
    ), active as (
      select id, openid, ${convertingActivity('moved', settled)} as active_at,
        case when last_purchased_at <= ${settled}::timestamptz then last_purchased_at end
          as purchased_at
      from moved
    ), matched as (
      -- only a push that was sent, from when it was sent (one held, cancelled or failed reached
      -- no one): its outbox item by its whole key (appid, source, openid), one probe per
      -- recipient — the limit keeps the planner from joining the items on their source alone,
      -- which every item of a campaign run shares: planned without statistics (a fresh table on
      -- PGlite, which has no autovacuum) that read recipients × items rows, 55 million for a
      -- run to 7,448 members, for two minutes with the server stalled (bench/README.md,
      -- session 30)
      select r.campaign_id, r.slot, r.member_id, least(
          case when a.active_at > o.sent_at then a.active_at end,
          case when a.purchased_at > o.sent_at then a.purchased_at end) as at
      from active a
      join campaign_recipients r on r.member_id = a.id
      join campaigns c on c.id = r.campaign_id
      cross join lateral (
        select o.sent_at from push_outbox o
        where o.appid = c.appid and o.source = r.outbox_source and o.openid = a.openid
          and o.status = 'sent'
          and o.sent_at > ${now}::timestamptz - make_interval(days => c.conversion_days)
        limit 1
      ) o
      where r.outcome = 'enqueued' and r.converted_at is null
        and r.enqueued_at > ${now}::timestamptz - make_interval(days => ${MAX_CONVERSION_DAYS})
        and (a.active_at > o.sent_at or a.purchased_at > o.sent_at)
    ), converted as (
      update campaign_recipients r set converted_at = m.at
      from matched m
      where r.campaign_id = m.campaign_id and r.slot = m.slot and r.member_id = m.member_id
      returning 1
    )
    select count(*)::int as n from converted`
}

/** The redemptions since `since` `markConversions` marks: each member's first after a sent push. */
export function redemptionsStatement(since: Date, now: Date) {
  return sql`
    update campaign_recipients r set redeemed_at = x.at
    from (
      select o.campaign_id, o.slot, o.member_id, min(d.created_at) as at
      from redemptions d
      join campaign_recipients o on o.member_id = d.member_id and o.outcome = 'enqueued'
        and o.redeemed_at is null and o.enqueued_at < d.created_at
        and o.enqueued_at > ${now}::timestamptz - make_interval(days => ${MAX_CONVERSION_DAYS})
      join campaigns c on c.id = o.campaign_id
      join members m on m.id = o.member_id
      -- as conversions: only after a push that was sent, found by its whole key
      cross join lateral (
        select p.sent_at from push_outbox p
        where p.appid = c.appid and p.source = o.outbox_source and p.openid = m.openid
          and p.status = 'sent' and p.sent_at < d.created_at
        limit 1
      ) p
      where d.created_at > ${since}
        and d.created_at <= p.sent_at + make_interval(days => c.conversion_days)
      group by o.campaign_id, o.slot, o.member_id
    ) x
    where r.campaign_id = x.campaign_id and r.slot = x.slot and r.member_id = x.member_id`
}

/** Two-proportion z-test: is rate A different from rate B? (two-sided, normal approximation) */
export function twoProportionZTest(a: { n: number; x: number }, b: { n: number; x: number }) {
  if (a.n === 0 || b.n === 0) return null
  const pa = a.x / a.n
  const pb = b.x / b.n
  const p = (a.x + b.x) / (a.n + b.n)
  const se = Math.sqrt(p * (1 - p) * (1 / a.n + 1 / b.n))
  if (se === 0) return { z: 0, pValue: 1, significant: false }
  const z = (pa - pb) / se
  const pValue = 2 * (1 - normalCdf(Math.abs(z)))
  return { z: round(z), pValue: round(pValue), significant: pValue < 0.05 }
}

const round = (x: number) => Math.round(x * 10_000) / 10_000

/** Φ(x) via the Abramowitz–Stegun erf approximation (|error| < 1.5e-7). */
function normalCdf(x: number) {
  const t = 1 / (1 + 0.3275911 * (x / Math.SQRT2))
  const y =
    1 -
    ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) *
      t *
      Math.exp(-(x * x) / 2)
  return 0.5 * (1 + y)
}

/**
 * When an enqueued push `o` (push_outbox) ended in each outcome — sent; failed (WeChat refused it,
 * or it was skipped: expired, window closed); withdrawn unsent because the member opted out (退订)
 * after it was enqueued (outbox.ts, `OPTED_OUT`); cancelled unsent (a finished campaign, an ended
 * journey enrollment); unknown (a send interrupted, not sent again). What is none of these is still
 * queued (pending, held, being sent). The one definition every report counts by: the campaign
 * report, the rollups of pruned recipients, the journey report ({@link pushOutcomes}) and the
 * analytics' campaigns family (by the day each settled).
 */
export function pushOutcomeConditions(o: string) {
  const status = sql.ref(`${o}.status`)
  const errmsg = sql.ref(`${o}.errmsg`)
  return {
    sent: sql<boolean>`${status} = 'sent'`,
    failed: sql<boolean>`${status} in ('failed', 'skipped')`,
    withdrawn_opted_out: sql<boolean>`(${status} = 'cancelled' and ${errmsg} = ${OPTED_OUT})`,
    cancelled: sql<boolean>`(${status} = 'cancelled' and ${errmsg} is distinct from ${OPTED_OUT})`,
    unknown: sql<boolean>`${status} = 'unknown'`,
  }
}

/** The count of each {@link pushOutcomeConditions} outcome of pushes `o`, as columns of its name. */
export function pushOutcomes(o: string) {
  return sql.join(
    Object.entries(pushOutcomeConditions(o)).map(
      ([name, when]) => sql`(count(*) filter (where ${when}))::int as ${sql.raw(name)}`,
    ),
  )
}

/** A row's enqueued pushes by how they ended, as the campaign and journey reports show them. */
export function pushEndings(
  r: Pick<
    VariantCounts,
    'enqueued' | 'sent' | 'failed' | 'withdrawn_opted_out' | 'cancelled' | 'unknown'
  >,
) {
  return {
    sent: r.sent,
    failed: r.failed,
    withdrawn: { optedOut: r.withdrawn_opted_out, cancelled: r.cancelled },
    unknown: r.unknown,
    queued: r.enqueued - r.sent - r.failed - r.withdrawn_opted_out - r.cancelled - r.unknown,
  }
}

/** A variant's counts, as the report and the rollup-based campaign list read them. */
export interface VariantCounts {
  variant: string
  audience: number
  enqueued: number
  capped: number
  opted_out: number
  unreachable: number
  sent: number
  failed: number
  /** Enqueued, then withdrawn unsent: the member opted out (退订) before it was sent. */
  withdrawn_opted_out: number
  /** Enqueued, then cancelled unsent: the campaign was finished first. */
  cancelled: number
  /** Enqueued; whether it reached the member is unknown (a send interrupted, not sent again). */
  unknown: number
  delivered: number
  clicked: number
  converted: number
  /** Recipients who redeemed a reward within the conversion window. */
  redeemed: number
}

/**
 * The report of variants' counts (in their order): rates and the A/B test of the first two.
 * Each variant's audience is `enqueued` + `skipped` (at enqueue: capped, opted out, unreachable),
 * and each enqueued recipient is in exactly one of `sent`, `failed`, `withdrawn` (opted out since,
 * or cancelled), `unknown` and `queued` (not settled yet). Rates and the z-tests count every
 * enqueued recipient (intent to treat: a push withdrawn or failed still belongs to its variant).
 */
export function variantReport(rows: VariantCounts[]) {
  const variants = rows.map((r) => ({
    variant: r.variant,
    audience: r.audience,
    enqueued: r.enqueued,
    skipped: { capped: r.capped, optedOut: r.opted_out, unreachable: r.unreachable },
    ...pushEndings(r),
    delivered: r.delivered,
    clicked: r.clicked,
    converted: r.converted,
    redeemed: r.redeemed,
    clickRate: r.enqueued ? round(r.clicked / r.enqueued) : null,
    conversionRate: r.enqueued ? round(r.converted / r.enqueued) : null,
    redemptionRate: r.enqueued ? round(r.redeemed / r.enqueued) : null,
  }))
  const [a, b] = variants
  return {
    variants,
    abTest:
      a && b
        ? {
            compared: [a.variant, b.variant],
            conversion: twoProportionZTest(
              { n: a.enqueued, x: a.converted },
              { n: b.enqueued, x: b.converted },
            ),
            click: twoProportionZTest(
              { n: a.enqueued, x: a.clicked },
              { n: b.enqueued, x: b.clicked },
            ),
            redemption: twoProportionZTest(
              { n: a.enqueued, x: a.redeemed },
              { n: b.enqueued, x: b.redeemed },
            ),
          }
        : null,
  }
}
