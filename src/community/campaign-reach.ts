/**
 * Whom a campaign reached, counting each member once however many of its runs they were in: the
 * campaign report's per-variant counts ({@link campaignReport}) count pushes — a weekly campaign to
 * the same 1,000 members has an audience of 4,000 after four runs — which is not reach. Read from
 * the recipients still kept: the runs rolled up by retention (campaign-retention.ts) keep only
 * counts, so their members cannot be told apart and are left out (`prunedRuns` says how many).
 *
 * Counting reads every kept recipient: ≈ 2.5 s for 1,000,000 on PostgreSQL, too slow for a report
 * operators reload on their phones while a campaign sends. So a report ({@link campaignReachShown})
 * counts it on the spot only for a campaign of at most {@link REACH_LIVE_MAX} kept recipients
 * (≈ 50 ms); a larger one (and one found larger before) is shown as last counted, with the time
 * it was counted ("as of"), from `campaign_reach` (migration 0087), and recounted in the background
 * once those figures are older than {@link REACH_MAX_AGE_MS} — one recount at a time per campaign over all instances (a
 * conditional upsert of the campaign's row claims it, a lease of {@link REACH_LEASE_MS}), the view
 * never waiting for it. Why a cache and not per-member state kept up to date where recipients are
 * written: `sent` is the outbox's status (written by the outbox's send path, per push), and
 * retention deleting a run would have to tell whether each of its members is in another kept run —
 * state in four write paths, one of them the 1,000,000-row enqueue, against one read at most once a
 * minute per campaign watched. The recount is the exact count ({@link campaignReach}), so the
 * figures are always the exact ones of their time.
 *
 * The report's per-variant counts (its funnel, campaign-report.ts) read the same recipients joined
 * the same way — about 0.6 s for 100,000 on PGlite, 1.9–2.9 s for 1,000,000, with the server's
 * one thread held every time the report was viewed (bench/README.md, issue 20, session 32) — so
 * they are counted and kept with the reach (`counts`, migration 0089), just before it, and shown
 * as of the same time. Both are counted slice by slice of members ({@link recipientSlices}, at
 * most {@link COUNT_SLICE_ROWS} recipients a statement): on PGlite one statement over a
 * 1,000,000-member campaign held every push behind it for up to 7.2 s (session 33).
 */
import { type Kysely, sql } from 'kysely'
import type { Database } from '../db/schema.js'
import type { Logger } from '../logger.js'
import {
  COUNT_SLICE_ROWS,
  campaignCounts,
  type RecipientSlice,
  recipientSlices,
  recipientsWithKeys,
  sumByKey,
  type VariantCounts,
} from './campaign-report.js'

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
 * Counts campaign `campaignId`'s distinct members exactly (reading every kept recipient, slice by
 * slice of members — {@link recipientSlices}, `sliceRows` for tests — so distinct members add up
 * over the slices: see {@link campaignReachShown} for a report), per variant and in all (a member
 * whose variant changed with the weights counts once in each variant and once in the total).
 * @example const { total } = await campaignReach(db, 7) // total.audience: members, not pushes
 */
export async function campaignReach(
  db: Kysely<Database>,
  campaignId: number,
  sliceRows = COUNT_SLICE_ROWS,
): Promise<CampaignReach> {
  const slices = await recipientSlices(db, campaignId, sliceRows)
  const counted: ReachRow[] = []
  for (const slice of slices)
    counted.push(...(await campaignReachStatement(campaignId, slice).execute(db)).rows)
  const rows = sumByKey(counted, 'variant')
  const { rows: pruned } = await sql<{ n: number }>`
    select count(distinct slot)::int as n from campaign_rollups
    where campaign_id = ${campaignId}`.execute(db)
  const reach = (r: ReachRow | undefined, variant: string | null): MemberReach => ({
    variant,
    audience: r?.audience ?? 0,
    enqueued: r?.enqueued ?? 0,
    sent: r?.sent ?? 0,
    converted: r?.converted ?? 0,
    conversionRate: r?.enqueued ? round(r.converted / r.enqueued) : null,
  })
  return {
    variants: rows.filter((r) => !r.whole).map((r) => reach(r, r.variant)),
    total: reach(
      rows.find((r) => r.whole),
      null,
    ),
    // every slice holds every run (recipientSlices lists only runs with kept recipients)
    runs: slices[0]?.slots.length ?? 0,
    prunedRuns: pruned[0]?.n ?? 0,
  }
}

/** A row of {@link campaignReachStatement}: one variant's distinct members, or all (`whole`). */
type ReachRow = {
  variant: string | null
  whole: boolean
  audience: number
  enqueued: number
  sent: number
  converted: number
}

/**
 * The distinct members {@link campaignReach} counts, of the kept recipients of `slice` (exported
 * for its plan test).
 */
export function campaignReachStatement(campaignId: number, slice: RecipientSlice) {
  return sql<ReachRow>`
    select r.variant, grouping(r.variant) = 1 as whole,
      count(distinct r.member_id)::int as audience,
      (count(distinct r.member_id) filter (where r.outcome = 'enqueued'))::int as enqueued,
      (count(distinct r.member_id) filter (where o.status = 'sent'))::int as sent,
      (count(distinct r.member_id) filter (where r.converted_at is not null))::int as converted
    from (${recipientsWithKeys(campaignId, slice)}) r
    left join push_outbox o
      on o.appid = r.appid and o.source = r.outbox_source and o.openid = r.openid
    group by grouping sets ((r.variant), ())`
}

/** Kept recipients up to which a report counts reach on the spot (≈ 50 ms at 2.5 s per 1M). */
export const REACH_LIVE_MAX = 20_000
/** Age after which a report's cached reach is recounted (in the background). */
export const REACH_MAX_AGE_MS = 60_000
/** How long a recount's claim holds: a recount claimed longer ago is taken to have died. */
export const REACH_LEASE_MS = 300_000

/** A campaign's reach, and its report's per-variant counts, as a report shows them. */
export interface ReachShown {
  /** The figures; null while a large campaign's are being counted for the first time. */
  reach: CampaignReach | null
  /**
   * The report's per-variant counts (campaign-report.ts) of the same count; null with `reach`
   * (the report then shows none: the first count counts them), and where the cache has none (a
   * row counted before migration 0089: the report counts them).
   */
  counts: VariantCounts[] | null
  /** When they were counted; null: counted for this answer. */
  asOf: Date | null
  /** A recount is under way (its figures show on a later view). */
  refreshing: boolean
}

/** How a report reads reach; the limits are for tests and the bench. */
export interface ReachShownOptions {
  now: Date
  /** Keeps the background recount alive after the response (Workers' `waitUntil`). */
  waitUntil?: (work: Promise<unknown>) => void
  /**
   * The database the background recount runs on (default the view's): on PGlite the instance
   * whose statements give way to requests' (src/db/pglite-driver.ts), so that a recount's slices
   * do not take turns with pushes.
   */
  recountDb?: Kysely<Database>
  logger?: Logger
  liveMax?: number
  maxAgeMs?: number
  leaseMs?: number
  /** Recipients per counting statement ({@link COUNT_SLICE_ROWS}). */
  sliceRows?: number
}

/**
 * Campaign `campaignId`'s reach for a report, never waiting for a large campaign's count: counted
 * now when it has at most `liveMax` kept recipients; else as last counted (`asOf`), a recount
 * started in the background (handed to `waitUntil`) when those figures are older than `maxAgeMs`
 * or missing and no other recount holds the campaign.
 * @example const { reach, asOf } = await campaignReachShown(db, 7, { now: clock.now() })
 */
export async function campaignReachShown(
  db: Kysely<Database>,
  campaignId: number,
  o: ReachShownOptions,
): Promise<ReachShown> {
  const cached = await db
    .selectFrom('campaign_reach')
    .select(['reach', 'counts', 'computed_at', 'refreshing_since'])
    .where('campaign_id', '=', campaignId)
    .executeTakeFirst()
  // Without a row the campaign has never been found large: counted now if it is still small (at
  // most liveMax + 1 entries of the primary key (campaign_id, slot, member_id) read to tell).
  // With one it stays cached, even once retention has made it small again.
  if (!cached) {
    const liveMax = o.liveMax ?? REACH_LIVE_MAX
    const { rows: kept } = await sql<{ n: number }>`
      select count(*)::int as n from (
        select 1 from campaign_recipients where campaign_id = ${campaignId} limit ${liveMax + 1}
      ) k`.execute(db)
    if ((kept[0]?.n ?? 0) <= liveMax) {
      const counts = await campaignCounts(db, campaignId, o.sliceRows)
      const reach = await campaignReach(db, campaignId, o.sliceRows)
      return { reach, counts, asOf: null, refreshing: false }
    }
  }
  const shown = {
    reach: cached?.reach ? (JSON.parse(cached.reach) as CampaignReach) : null,
    counts: cached?.counts ? (JSON.parse(cached.counts) as VariantCounts[]) : null,
    asOf: cached?.computed_at ?? null,
  }
  const maxAgeMs = o.maxAgeMs ?? REACH_MAX_AGE_MS
  const leaseMs = o.leaseMs ?? REACH_LEASE_MS
  const stale = !shown.asOf || o.now.getTime() - shown.asOf.getTime() >= maxAgeMs
  const held =
    !!cached?.refreshing_since && o.now.getTime() - cached.refreshing_since.getTime() < leaseMs
  if (!stale || held) return { ...shown, refreshing: held }
  if (await claimReachRecount(db, campaignId, { now: o.now, maxAgeMs, leaseMs })) {
    const work = recountReach(o.recountDb ?? db, campaignId, o.now, o.sliceRows).catch(
      (error: unknown) =>
        // The claim stays until its lease runs out: a failing count is not retried on every view.
        o.logger?.error('campaign reach recount failed', {
          campaignId,
          message: error instanceof Error ? error.message : String(error),
        }),
    )
    o.waitUntil?.(work)
  }
  return { ...shown, refreshing: true }
}

/**
 * Claims campaign `campaignId`'s recount at `now`: true for one caller only, however many ask at
 * once (one statement on the campaign's row: the insert of a missing row, or the update of a stale
 * one not claimed within `leaseMs` — a concurrent claimer waits for the row and then finds it
 * claimed). False when the figures are fresh (another recount just finished) or one is under way.
 */
export async function claimReachRecount(
  db: Kysely<Database>,
  campaignId: number,
  o: { now: Date; maxAgeMs: number; leaseMs: number },
): Promise<boolean> {
  const staleBefore = new Date(o.now.getTime() - o.maxAgeMs)
  const leaseBefore = new Date(o.now.getTime() - o.leaseMs)
  const { rows } = await sql<{ campaign_id: number }>`
    insert into campaign_reach as t (campaign_id, refreshing_since)
    values (${campaignId}, ${o.now})
    on conflict (campaign_id) do update set refreshing_since = excluded.refreshing_since
    where (t.computed_at is null or t.computed_at <= ${staleBefore})
      and (t.refreshing_since is null or t.refreshing_since <= ${leaseBefore})
    returning t.campaign_id`.execute(db)
  return rows.length > 0
}

/**
 * Counts campaign `campaignId`'s report counts and reach exactly and keeps them as of `claimedAt`
 * (when the count began), releasing the claim — unless the claim was taken over meanwhile (this
 * count outlived its lease: the newer one writes). True when written.
 */
export async function recountReach(
  db: Kysely<Database>,
  campaignId: number,
  claimedAt: Date,
  sliceRows = COUNT_SLICE_ROWS,
): Promise<boolean> {
  const counts = await campaignCounts(db, campaignId, sliceRows)
  const reach = await campaignReach(db, campaignId, sliceRows)
  const written = await db
    .updateTable('campaign_reach')
    .set({
      reach: JSON.stringify(reach),
      counts: JSON.stringify(counts),
      computed_at: claimedAt,
      refreshing_since: null,
    })
    .where('campaign_id', '=', campaignId)
    .where('refreshing_since', '=', claimedAt)
    .returning('campaign_id')
    .executeTakeFirst()
  return written !== undefined
}
