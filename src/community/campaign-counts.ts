/**
 * A campaign's figures counted from its kept recipients — the report's per-variant counts (pushes:
 * a member in four runs counts four times) and its reach (distinct members) — in one pass: one
 * statement counts both (grouping sets: each variant's rows and distinct members, and all the
 * members), plus the rollups of pruned runs (campaign-retention.ts) for the counts. On PostgreSQL
 * one statement over the whole campaign; on PGlite, where a statement holds the server's one
 * thread, one per slice of members of at most {@link COUNT_SLICE_ROWS} recipients
 * ({@link recipientSlices}), summed — slices by member cut no member's recipients apart, so
 * distinct members add up too. A campaign to 1,000,000 members counted in one statement (and its
 * reach in a second) held every push behind it for up to 7.2 s (bench/README.md, issue 20,
 * sessions 33–34). The reach of a large campaign is shown as last counted (campaign-reach.ts).
 */
import { type Kysely, sql } from 'kysely'
import type { Database } from '../db/schema.js'
import { pushOutcomes, type VariantCounts, variantReport } from './campaign-report.js'

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

/** A campaign's figures, counted in one pass ({@link campaignCounts}). */
export interface CampaignCounts {
  /** Per variant, pushes: the report's funnel ({@link variantReport}), pruned runs included. */
  counts: VariantCounts[]
  /**
   * Distinct members, per variant and in all (a member whose variant changed with the weights
   * counts once in each variant and once in the total), over the kept runs only.
   */
  reach: CampaignReach
}

/**
 * The report of a campaign, per variant, with the A/B test on conversions and clicks: live
 * recipients plus the rollups of pruned ones (the same numbers before and after pruning).
 */
export async function campaignReport(
  db: Kysely<Database>,
  campaignId: number,
  sliceRows = COUNT_SLICE_ROWS,
) {
  return variantReport((await campaignCounts(db, campaignId, sliceRows)).counts)
}

const round = (x: number) => Math.round(x * 10_000) / 10_000

/** A count stopped by its `proceed` hook ({@link campaignCounts}): another count took it over. */
export class CountStopped extends Error {
  constructor() {
    super('campaign count stopped')
  }
}

/** Times a count is begun again when retention rolled recipients up while it ran. */
const COUNT_ATTEMPTS = 3

/**
 * Counts campaign `campaignId`'s figures now, exactly (see the file's comment): every kept
 * recipient read, in slices of `sliceRows` ({@link countSliceRows}: ∞, one statement). Slices are
 * read one after another, not in one snapshot: a recipient enqueued or sent while they are read
 * may or may not be counted, as in any figure of a campaign still sending. Retention moving
 * recipients into the rollups meanwhile would count them twice or not at all: the rollups are read
 * before and after, and the count begun again when they changed (at most {@link COUNT_ATTEMPTS}
 * times; then the last). `proceed` is asked before each slice: false stops the count
 * ({@link CountStopped}).
 * @example const { counts, reach } = await campaignCounts(db, 7) // reach.total.audience: members
 */
export async function campaignCounts(
  db: Kysely<Database>,
  campaignId: number,
  sliceRows = COUNT_SLICE_ROWS,
  proceed?: () => Promise<boolean>,
): Promise<CampaignCounts> {
  const rollups = () =>
    sql<VariantCounts & { slot: Date }>`
    select slot, variant, audience, enqueued, capped, opted_out, unreachable, sent, failed,
      withdrawn_opted_out, cancelled, unknown, delivered, clicked, converted, redeemed
    from campaign_rollups where campaign_id = ${campaignId}
    order by slot, variant`.execute(db)
  let before = (await rollups()).rows
  for (let attempt = 1; ; attempt++) {
    const counted: SliceRow[] = []
    let runs = 0
    for await (const slice of recipientSlices(db, campaignId, sliceRows)) {
      if (proceed && !(await proceed())) throw new CountStopped()
      runs = slice.slots.length
      counted.push(...(await campaignCountsStatement(campaignId, slice).execute(db)).rows)
    }
    const after = (await rollups()).rows
    const settled = JSON.stringify(after) === JSON.stringify(before)
    if (settled || attempt === COUNT_ATTEMPTS) return summed(counted, after, runs)
    before = after
  }
}

/** {@link campaignCounts}' figures from its slices' rows, the rollups and the kept runs. */
function summed(
  counted: SliceRow[],
  pruned: (VariantCounts & { slot: Date })[],
  runs: number,
): CampaignCounts {
  const rows = sumByKey(counted, 'variant')
  const reach = (r: SliceRow | undefined, variant: string | null): MemberReach => ({
    variant,
    audience: r?.members ?? 0,
    enqueued: r?.members_enqueued ?? 0,
    sent: r?.members_sent ?? 0,
    converted: r?.members_converted ?? 0,
    conversionRate: r?.members_enqueued ? round(r.members_converted / r.members_enqueued) : null,
  })
  const variants = rows.flatMap((r) => (r.variant === null ? [] : [{ ...r, variant: r.variant }]))
  return {
    counts: sumByKey(
      [...variants, ...pruned].map((r) => countsOf(r)),
      'variant',
    ),
    reach: {
      variants: variants.map((r) => reach(r, r.variant)),
      total: reach(
        rows.find((r) => r.variant === null),
        null,
      ),
      // every slice holds every run (recipientSlices lists only runs with kept recipients)
      runs,
      prunedRuns: new Set(pruned.map((r) => r.slot.getTime())).size,
    },
  }
}

/** The {@link VariantCounts} of a row (its other columns left out). */
function countsOf(r: VariantCounts): VariantCounts {
  return {
    variant: r.variant,
    audience: r.audience,
    enqueued: r.enqueued,
    capped: r.capped,
    opted_out: r.opted_out,
    unreachable: r.unreachable,
    sent: r.sent,
    failed: r.failed,
    withdrawn_opted_out: r.withdrawn_opted_out,
    cancelled: r.cancelled,
    unknown: r.unknown,
    delivered: r.delivered,
    clicked: r.clicked,
    converted: r.converted,
    redeemed: r.redeemed,
  }
}

/** A row of {@link campaignCountsStatement}: a variant's (or all members') counts and members. */
type SliceRow = Omit<VariantCounts, 'variant'> & {
  /** Null on the row of all members. */
  variant: string | null
  members: number
  members_enqueued: number
  members_sent: number
  members_converted: number
}

/**
 * The figures {@link campaignCounts} counts, of the kept recipients of `slice`, in one statement:
 * per variant the pushes ({@link recipientCounts}) and the distinct members, and the distinct
 * members of all (`variant` null; its push counts are not used). Exported for its plan test.
 */
export function campaignCountsStatement(campaignId: number, slice: RecipientSlice) {
  return sql<SliceRow>`
    select r.variant, ${recipientCounts('r')},
      count(distinct r.member_id)::int as members,
      (count(distinct r.member_id) filter (where r.outcome = 'enqueued'))::int
        as members_enqueued,
      (count(distinct r.member_id) filter (where o.status = 'sent'))::int as members_sent,
      (count(distinct r.member_id) filter (where r.converted_at is not null))::int
        as members_converted
    from (${recipientsWithKeys(campaignId, slice)}) r
    ${outboxItems('r', { probe: !slice.whole })}
    group by grouping sets ((r.variant), ())`
}

/**
 * Recipients one counting statement reads at most on PGlite ({@link recipientSlices}; ≈ 80 ms),
 * where a statement holds the server's one thread — a campaign to 1,000,000 members counted in
 * one statement held every push behind it for up to 7.2 s (bench/README.md, session 33). On
 * PostgreSQL a count runs on a connection of its own and goes in one statement
 * ({@link countSliceRows}): there the whole campaign's joins hashed once beat a probe per
 * recipient (sessions 33–34).
 */
export const COUNT_SLICE_ROWS = 10_000

/** Recipients per counting statement on a database: see {@link COUNT_SLICE_ROWS}. */
export const countSliceRows = (embeddedDatabase: boolean) =>
  embeddedDatabase ? COUNT_SLICE_ROWS : Number.POSITIVE_INFINITY

/**
 * A slice of a campaign's kept recipients: those of its runs `slots` (ISO 8601 times, exact to
 * the microsecond) whose member id is in (`after`, `upTo`]. Slices by member cut no member's
 * recipients apart, so distinct members add up over them.
 */
export interface RecipientSlice {
  slots: string[]
  after: number
  upTo: number
  /**
   * The one slice of all the kept recipients, counted with joins (PostgreSQL); else each
   * recipient's outbox item is found by a probe ({@link outboxItems}).
   */
  whole: boolean
}

/**
 * Slices covering campaign `campaignId`'s kept recipients, one after another: with `rows` ∞ one
 * whole slice; else each of at most max(`rows`, runs) recipients — `rows` ÷ the runs meeting the
 * slice members of each, by the runs' own member ids (a probe per run that reads as many index
 * entries), so a sparse campaign has as few slices as a dense one, and runs of different members
 * (each day's newcomers) share no budget they do not use — and every
 * statement over one reads its runs' ranges of the primary key (campaign, slot, member), never the
 * whole campaign. The runs are found by a skip over the key (one probe per run), their member
 * ids' bounds by a probe at each end of each. No kept recipient: no slice.
 */
export async function* recipientSlices(
  db: Kysely<Database>,
  campaignId: number,
  rows = COUNT_SLICE_ROWS,
): AsyncGenerator<RecipientSlice> {
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
  if (runs.length === 0) return
  const slots = runs.map((r) => r.slot)
  const first = Math.min(...runs.map((r) => Number(r.lo))) - 1
  const last = Math.max(...runs.map((r) => Number(r.hi)))
  if (!Number.isFinite(rows)) {
    yield { slots, after: first, upTo: last, whole: true }
    return
  }
  const spans = runs.map((r) => ({ lo: Number(r.lo), hi: Number(r.hi) }))
  /** Runs with members in (after, upTo]: their ids' spans meet it. */
  const meeting = (after: number, upTo: number) =>
    spans.filter((r) => r.hi > after && r.lo <= upTo).length
  /** Where a slice from `after` ends: each run's perRun-th member after it (or its last), the nearest. */
  const end = async (after: number, perRun: number) => {
    const { rows: bound } = await sql<{ up_to: string | null }>`
      select min(coalesce(
        (select member_id from campaign_recipients
          where campaign_id = ${campaignId} and slot = s.slot and member_id > ${after}
          order by member_id offset ${perRun - 1} limit 1),
        (select member_id from campaign_recipients
          where campaign_id = ${campaignId} and slot = s.slot and member_id > ${after}
          order by member_id desc limit 1)
      ))::text as up_to
      from unnest(${slots}::timestamptz[]) s(slot)`.execute(db)
    const upTo = bound[0]?.up_to
    return upTo === null || upTo === undefined ? undefined : Number(upTo)
  }
  const perRun = (k: number) => Math.max(1, Math.floor(rows / Math.max(1, k)))
  for (let after = first; after < last; ) {
    // shared by the runs not ended yet; then, if fewer of them meet the slice (runs of other
    // members: a cron campaign to each day's newcomers), by those — kept when no more meet the
    // wider slice, so that a slice holds at most `rows` (perRun × the runs meeting it)
    const open = spans.filter((r) => r.hi > after).length
    let upTo = await end(after, perRun(open))
    if (upTo === undefined) return
    const met = meeting(after, upTo)
    if (met < open && perRun(met) > perRun(open)) {
      const wider = await end(after, perRun(met))
      if (wider !== undefined && meeting(after, wider) <= met) upTo = wider
    }
    yield { slots, after, upTo, whole: false }
    after = upTo
  }
}

/** Sums rows of counts (their numbers) by their `key`, in the order of the keys (capital letters). */
function sumByKey<T extends object>(rows: T[], key: keyof T): T[] {
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
function recipientsWithKeys(campaignId: number, slice: RecipientSlice) {
  return sql`select r.*, c.appid, m.openid from campaign_recipients r
      join campaigns c on c.id = r.campaign_id
      join members m on m.id = r.member_id
      where r.campaign_id = ${campaignId} and r.slot = any(${slice.slots}::timestamptz[])
        and r.member_id > ${slice.after} and r.member_id <= ${slice.upTo}
        -- the members' side too (an equality passes to the other side of a join, a range does
        -- not): hashed whole, the members table was read for every slice
        and m.id > ${slice.after} and m.id <= ${slice.upTo}
      offset 0`
}

/**
 * Recipients `r`'s outbox items as `o` (status, errmsg, delivery, wechat_msgid, appid) and those
 * items' receipts as `rc` (a receipt that raced the send's result write is only in push_receipts),
 * each found by its whole key (both unique). With `probe`, one probe per recipient (lateral) — for
 * a slice of a campaign: joined, with statistics the planner hashed the whole outbox for every
 * slice of a count, 180,000 items read for 10,000 recipients, 4.6 × the time of one statement
 * (bench/README.md, issue 20, session 34). Without, joined: for the whole campaign at once, where
 * hashing them is right.
 */
function outboxItems(r: string, o: { probe: boolean }) {
  const ref = (column: string) => sql.ref(`${r}.${column}`)
  const itemKey = sql`o.appid = ${ref('appid')} and o.source = ${ref('outbox_source')}
        and o.openid = ${ref('openid')}`
  const receiptKey = sql`rc.appid = o.appid and rc.msgid = o.wechat_msgid`
  if (!o.probe)
    return sql`left join push_outbox o on ${itemKey} left join push_receipts rc on ${receiptKey}`
  return sql`left join lateral (
      select o.status, o.errmsg, o.delivery, o.wechat_msgid, o.appid from push_outbox o
      where ${itemKey}
      limit 1
    ) o on true
    left join lateral (select rc.status from push_receipts rc where ${receiptKey} limit 1) rc on true`
}
