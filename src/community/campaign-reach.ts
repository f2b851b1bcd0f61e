/**
 * A campaign's figures as its report shows them: the per-variant counts (pushes, its funnel) and
 * whom it reached (distinct members, however many of its runs they were in: a weekly campaign to
 * the same 1,000 members has an audience of 4,000 after four runs, a reach of 1,000), both counted
 * in one pass over the kept recipients ({@link campaignCounts}, campaign-counts.ts).
 *
 * Counting reads every kept recipient: seconds for 1,000,000 (bench/README.md), too slow for a
 * report operators reload on their phones while a campaign sends — and on PGlite the server's one
 * thread counts. So a report ({@link campaignReachShown}) counts on the spot only for a campaign
 * of at most {@link REACH_LIVE_MAX} kept recipients; a larger one (and one found larger before) is
 * shown as last counted, with the time it was counted ("as of"), from `campaign_reach` (migrations
 * 0087, 0089, 0090), and recounted in the background once those figures are older than
 * {@link recountAge} (a minute, or 20 times as long as their count took) — one recount at a time
 * per campaign over all instances (a conditional upsert of the campaign's row claims it, a lease
 * of {@link REACH_LEASE_MS}), the view never waiting for it, the recount on the database given
 * for background work (`recountDb`: on PGlite the instance that gives way to requests). Why a
 * cache and not per-member state kept up to date where recipients are written: `sent` is the
 * outbox's status (written by the outbox's send path, per push), and retention deleting a run
 * would have to tell whether each of its members is in another kept run — state in four write
 * paths, one of them the 1,000,000-row enqueue, against one read at most once a minute per
 * campaign watched (less often when it takes longer than 3 s).
 * The recount is the exact count, so the figures are always the exact ones of their time.
 */
import { type ExpressionBuilder, type Kysely, sql } from 'kysely'
import type { Database } from '../db/schema.js'
import type { Logger } from '../logger.js'
import type { Stopping } from '../stopping.js'
import {
  type CampaignCounts,
  type CampaignReach,
  COUNT_SLICE_ROWS,
  CountStopped,
  campaignCounts,
} from './campaign-counts.js'
import type { VariantCounts } from './campaign-report.js'

/** Kept recipients up to which a report counts on the spot (≈ 65 ms at 3.2 s per 1M, PostgreSQL). */
export const REACH_LIVE_MAX = 20_000
/** Age after which a report's cached reach is recounted (in the background), at the least. */
export const REACH_MAX_AGE_MS = 60_000
/**
 * …and in multiples of the time the last count took, when longer: a report left open recounts
 * for at most about 1/20 of the time (on PGlite at 1,000,000 recipients a count takes some 10 s
 * of the server's one thread: every 200 s, not every minute). As series.ts `LIVE_COST_FACTOR`.
 */
export const REACH_COST_FACTOR = 20

/** The age after which figures whose count took `countMs` are recounted ({@link REACH_COST_FACTOR}). */
export const recountAge = (maxAgeMs: number, countMs: number | null) =>
  Math.max(maxAgeMs, REACH_COST_FACTOR * (countMs ?? 0))
/** How often a recount looks whether its claim was taken over (then it stops). */
const CLAIM_CHECK_MS = 5_000
/** How long a recount's claim holds: a recount claimed longer ago is taken to have died. */
export const REACH_LEASE_MS = 300_000

/** How a report counts, by database: {@link ReachShownOptions}' `recountDb` and `sliceRows`. */
export type ReportCounts = Pick<ReachShownOptions, 'recountDb' | 'sliceRows' | 'stopping'>

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
  /** Their age when they are recounted ({@link recountAge}); null: counted for this answer. */
  recountAgeMs: number | null
  /** A recount is under way (its figures show on a later view). */
  refreshing: boolean
}

/**
 * How a report reads reach; the limits (but `sliceRows`, the database's) are for tests and the
 * bench.
 */
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
  /**
   * The server's stop: once it has begun no recount is claimed; one under way is kept for the
   * shutdown to wait for, and stops before its next slice, giving its claim up (another instance
   * may recount at once, not after the lease). On PostgreSQL a count is one statement: it ends
   * and writes its figures.
   */
  stopping?: Stopping
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
 * started in the background (handed to `waitUntil`, and to `stopping`) when those figures are
 * older than {@link recountAge} or missing, no other recount holds the campaign and the server is
 * not stopping.
 * @example const { reach, asOf } = await campaignReachShown(db, 7, { now: clock.now() })
 */
export async function campaignReachShown(
  db: Kysely<Database>,
  campaignId: number,
  o: ReachShownOptions,
): Promise<ReachShown> {
  const cached = await db
    .selectFrom('campaign_reach')
    .select(['reach', 'counts', 'computed_at', 'refreshing_since', 'count_ms'])
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
      const { counts, reach } = await campaignCounts(db, campaignId, o.sliceRows)
      return { reach, counts, asOf: null, recountAgeMs: null, refreshing: false }
    }
  }
  const maxAgeMs = o.maxAgeMs ?? REACH_MAX_AGE_MS
  const shown = {
    reach: cached?.reach ? (JSON.parse(cached.reach) as CampaignReach) : null,
    counts: cached?.counts ? (JSON.parse(cached.counts) as VariantCounts[]) : null,
    asOf: cached?.computed_at ?? null,
    recountAgeMs: cached?.computed_at ? recountAge(maxAgeMs, cached.count_ms) : null,
  }
  const leaseMs = o.leaseMs ?? REACH_LEASE_MS
  const stale = !shown.asOf || o.now.getTime() - shown.asOf.getTime() >= shown.recountAgeMs!
  const held =
    !!cached?.refreshing_since && o.now.getTime() - cached.refreshing_since.getTime() < leaseMs
  if (!stale || held || o.stopping?.signal.aborted) return { ...shown, refreshing: held }
  if (await claimReachRecount(db, campaignId, { now: o.now, maxAgeMs, leaseMs })) {
    const work = recountReach(o.recountDb ?? db, campaignId, o.now, {
      sliceRows: o.sliceRows,
      stopping: o.stopping?.signal,
    }).catch((error: unknown) =>
      // The claim stays until its lease runs out: a failing count is not retried on every view.
      o.logger?.error('campaign reach recount failed', {
        campaignId,
        message: error instanceof Error ? error.message : String(error),
      }),
    )
    o.waitUntil?.(work)
    o.stopping?.keep(work)
  }
  return { ...shown, refreshing: true }
}

/**
 * Claims campaign `campaignId`'s recount at `now`: true for one caller only, however many ask at
 * once (one statement on the campaign's row: the insert of a missing row, or the update of a stale
 * one — older than {@link recountAge} — not claimed within `leaseMs`: a concurrent claimer waits
 * for the row and then finds it claimed). False when the figures are fresh (another recount just
 * finished) or one is under way.
 */
export async function claimReachRecount(
  db: Kysely<Database>,
  campaignId: number,
  o: { now: Date; maxAgeMs: number; leaseMs: number },
): Promise<boolean> {
  const leaseBefore = new Date(o.now.getTime() - o.leaseMs)
  const { rows } = await sql<{ campaign_id: number }>`
    insert into campaign_reach as t (campaign_id, refreshing_since)
    values (${campaignId}, ${o.now})
    on conflict (campaign_id) do update set refreshing_since = excluded.refreshing_since
    where (t.computed_at is null or t.computed_at <= ${o.now}::timestamptz
        - greatest(${o.maxAgeMs}::float8, ${REACH_COST_FACTOR}::float8 * coalesce(t.count_ms, 0))
          * interval '1 millisecond')
      and (t.refreshing_since is null or t.refreshing_since <= ${leaseBefore})
    returning t.campaign_id`.execute(db)
  return rows.length > 0
}

/**
 * Counts campaign `campaignId`'s report counts and reach exactly and keeps them as of `claimedAt`
 * (when the count began) with the time the count took, releasing the claim — unless the claim
 * was taken over meanwhile (this count outlived its lease: the newer one writes; found before
 * each slice, the count stops there), or `stopping` is aborted (the server stops: the count stops
 * before its next slice and releases the claim, writing no figures). True when written.
 */
export async function recountReach(
  db: Kysely<Database>,
  campaignId: number,
  claimedAt: Date,
  o: { sliceRows?: number; stopping?: AbortSignal } = {},
): Promise<boolean> {
  /** The campaign's row while this count holds its claim. */
  const ours = (eb: ExpressionBuilder<Database, 'campaign_reach'>) =>
    eb.and({ campaign_id: campaignId, refreshing_since: claimedAt })
  // Stopped once another recount has taken the claim over (this one outlived its lease): looked
  // at every CLAIM_CHECK_MS, not before every slice (on a saturated PGlite each background
  // statement may wait its turn for a second).
  let checked = Number.NEGATIVE_INFINITY
  const claimed = async () => {
    if (o.stopping?.aborted) return false
    if (performance.now() - checked < CLAIM_CHECK_MS) return true
    checked = performance.now()
    const row = await db
      .selectFrom('campaign_reach')
      .select('campaign_id')
      .where(ours)
      .executeTakeFirst()
    return row !== undefined
  }
  const started = performance.now()
  let figures: CampaignCounts
  try {
    figures = await campaignCounts(db, campaignId, o.sliceRows ?? COUNT_SLICE_ROWS, claimed)
  } catch (error) {
    if (!(error instanceof CountStopped)) throw error
    if (o.stopping?.aborted)
      await db.updateTable('campaign_reach').set({ refreshing_since: null }).where(ours).execute()
    return false
  }
  const { counts, reach } = figures
  const written = await db
    .updateTable('campaign_reach')
    .set({
      reach: JSON.stringify(reach),
      counts: JSON.stringify(counts),
      computed_at: claimedAt,
      refreshing_since: null,
      count_ms: Math.round(performance.now() - started),
    })
    .where(ours)
    .returning('campaign_id')
    .executeTakeFirst()
  return written !== undefined
}
