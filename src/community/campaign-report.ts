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

/**
 * The report of a campaign, per variant, with the A/B test on conversions and clicks: live
 * recipients plus the rollups of pruned ones (the same numbers before and after pruning).
 */
export async function campaignReport(db: Kysely<Database>, campaignId: number) {
  return variantReport(await campaignCounts(db, campaignId))
}

/**
 * Recipients one counting statement reads at most ({@link recipientSlices}): ≈ 80 ms on PGlite,
 * where a statement holds the server's one thread — a campaign to 1,000,000 members counted in
 * one statement held every push behind it for up to 7.2 s (bench/README.md, session 33).
 */
export const COUNT_SLICE_ROWS = 10_000

/**
 * A slice of a campaign's kept recipients: those of its runs `slots` (ISO 8601 times, exact to
 * the microsecond) whose member id is in (`after`, `upTo`]. Slices by member cut no member's
 * recipients apart, so distinct members add up over them (campaign-reach.ts).
 */
export interface RecipientSlice {
  slots: string[]
  after: number
  upTo: number
}

/**
 * Slices covering campaign `campaignId`'s kept recipients, each of at most `rows` recipients (a
 * range of `rows` ÷ runs member ids, each of which is in a run at most once — the primary key):
 * every statement over one reads its runs' ranges of the primary key (campaign, slot, member),
 * never the whole campaign. The runs are found by a skip over the key (one probe per run), their
 * member ids' bounds by one probe at each end of each run. No kept recipient: no slice.
 */
export async function recipientSlices(
  db: Kysely<Database>,
  campaignId: number,
  rows = COUNT_SLICE_ROWS,
): Promise<RecipientSlice[]> {
  const { rows: runs } = await sql<{ slot: string; lo: string; hi: string }>`
    with recursive s as (
      select min(slot) as slot from campaign_recipients where campaign_id = ${campaignId}
      union all
      select (select min(slot) from campaign_recipients
        where campaign_id = ${campaignId} and slot > s.slot)
      from s where s.slot is not null
    )
    -- each end an ordered probe: min() and max() over a correlated slot read the whole run
    select to_json(s.slot) #>> '{}' as slot,
      (select member_id from campaign_recipients where campaign_id = ${campaignId}
        and slot = s.slot order by member_id limit 1)::text as lo,
      (select member_id from campaign_recipients where campaign_id = ${campaignId}
        and slot = s.slot order by member_id desc limit 1)::text as hi
    from s where s.slot is not null`.execute(db)
  if (runs.length === 0) return []
  const slots = runs.map((r) => r.slot)
  const first = Math.min(...runs.map((r) => Number(r.lo))) - 1
  const last = Math.max(...runs.map((r) => Number(r.hi)))
  const width = Math.max(1, Math.floor(rows / slots.length))
  const slices: RecipientSlice[] = []
  for (let after = first; after < last; after += width)
    slices.push({ slots, after, upTo: Math.min(after + width, last) })
  return slices
}

/** Sums rows of counts (their numbers) by their `key`, in the order of the keys (capital letters). */
export function sumByKey<T extends object>(rows: T[], key: keyof T): T[] {
  const sums = new Map<unknown, T>()
  for (const row of rows) {
    const sum = sums.get(row[key]) as Record<string, unknown> | undefined
    if (!sum) sums.set(row[key], { ...row })
    else
      for (const [k, v] of Object.entries(row))
        if (typeof v === 'number') sum[k] = (sum[k] as number) + v
  }
  return [...sums.values()].sort((a, b) => (String(a[key]) < String(b[key]) ? -1 : 1))
}

/**
 * The per-variant counts {@link campaignReport} reports, counted now: every kept recipient read,
 * slice by slice ({@link recipientSlices}; `sliceRows` for tests), plus the rollups of pruned
 * ones. The slices are read one after another, not in one snapshot: a recipient enqueued or sent
 * while they are read may or may not be counted, as in any figure of a campaign still sending.
 */
export async function campaignCounts(
  db: Kysely<Database>,
  campaignId: number,
  sliceRows = COUNT_SLICE_ROWS,
): Promise<VariantCounts[]> {
  const rows: VariantCounts[] = []
  for (const slice of await recipientSlices(db, campaignId, sliceRows))
    rows.push(...(await campaignReportStatement(campaignId, slice).execute(db)).rows)
  const { rows: pruned } = await sql<VariantCounts>`
    select variant, audience, enqueued, capped, opted_out, unreachable, sent, failed,
      withdrawn_opted_out, cancelled, unknown, delivered, clicked, converted, redeemed
    from campaign_rollups where campaign_id = ${campaignId}`.execute(db)
  return sumByKey([...rows, ...pruned], 'variant')
}

/**
 * The counts {@link campaignReport} reports, per variant, of the kept recipients of `slice`
 * (exported for its plan test).
 */
export function campaignReportStatement(campaignId: number, slice: RecipientSlice) {
  return sql<VariantCounts>`
    select r.variant, ${recipientCounts('r')}
    from (${recipientsWithKeys(campaignId, slice)}) r
    left join push_outbox o
      on o.appid = r.appid and o.source = r.outbox_source and o.openid = r.openid
    -- a receipt that raced the send's result write is only in push_receipts
    left join push_receipts rc on rc.appid = o.appid and rc.msgid = o.wechat_msgid
    group by r.variant`
}

/**
 * The {@link VariantCounts} of recipients `r` joined to their outbox items `o` and those items'
 * receipts `rc`, as columns of their names: the report's and retention's rollups' one definition
 * (campaign-retention.ts counts the recipients it prunes by it).
 */
export function recipientCounts(r: string) {
  const column = (name: string) => sql.ref(`${r}.${name}`)
  const outcome = (o: string) =>
    sql`(count(*) filter (where ${column('outcome')} = ${sql.lit(o)}))::int as ${sql.raw(o)}`
  const stamped = (name: string, as: string) =>
    sql`(count(*) filter (where ${column(name)} is not null))::int as ${sql.raw(as)}`
  return sql.join([
    sql`count(*)::int as audience`,
    ...['enqueued', 'capped', 'opted_out', 'unreachable'].map(outcome),
    pushOutcomes('o'),
    sql`(count(*) filter (where coalesce(o.delivery, rc.status) = 'success'))::int as delivered`,
    stamped('clicked_at', 'clicked'),
    stamped('converted_at', 'converted'),
    stamped('redeemed_at', 'redeemed'),
  ])
}

/**
 * A campaign's recipients with their outbox item's key (the account, and the member's openid
 * beside the run's `outbox_source`), to be joined to `push_outbox` on all three. Every item of a
 * run shares its source: planned without statistics (a fresh table on PGlite, which has no
 * autovacuum), a join that could reach the items on the source alone read recipients × items rows
 * — up to 5 s per view of a running campaign's report on PGlite, the server's one thread stalled
 * meanwhile (bench/README.md, session 30). `offset 0` keeps this subquery whole, so the items
 * are joined by their whole key: hashed or probed, rows in proportion to the recipients. Only the
 * recipients of `slice` ({@link recipientSlices}): its runs' ranges of the primary key.
 */
export function recipientsWithKeys(campaignId: number, slice: RecipientSlice) {
  return sql`select r.*, c.appid, m.openid from campaign_recipients r
      join campaigns c on c.id = r.campaign_id
      join members m on m.id = r.member_id
      where r.campaign_id = ${campaignId} and r.slot = any(${slice.slots}::timestamptz[])
        and r.member_id > ${slice.after} and r.member_id <= ${slice.upTo}
      offset 0`
}
