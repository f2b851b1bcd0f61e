/**
 * The inbound dedupe ledger. A push is *claimed* by inserting its dedupe key (primary key) before
 * anything else happens (with the member upsert, in one statement: `MemberStore.receive`); WeChat's retries and other processes find the row and get the stored
 * reply instead of running the handler again.
 *
 * Status moves one way, but for one case below:
 *   processing → replied      the handler finished within the deadline; `reply` was sent
 *   processing → failed       the handler threw; `reply` holds the apology that was sent
 *   processing → deferred     the deadline passed; `success` was sent, the handler still runs
 *   deferred   → follow_up    the late result is kept in `follow_up` and enqueued in the outbox as a
 *                             customer-service message (same transaction)
 *   deferred   → replied      the late handler had nothing to say
 * and, for another channel's event (the bridge, WeCom callbacks) whose handling threw with nothing answered:
 *   processing → failed       `reply` null: nothing was sent but an error
 *   processing → failed       `reply` set: refused for good (an errcode WeCom would answer again),
 *                             answered so the sender stops; never taken back
 *   failed     → processing   the sender's retry takes it back ({@link reclaimEvent})
 * and, for any push or event whose process died while handling it (its lease ran out, see
 * claim-lease.ts):
 *   processing → processing   the sender's retry takes it over ({@link reclaimEvent})
 * Every transition is one conditional UPDATE, so concurrent callers cannot both win. A claim keeps
 * when it was made, taken back or renewed in `claimed_at` (an official-account push's claim: null
 * until renewed or taken back, `received_at` being when it was made).
 */
import { type ExpressionBuilder, type Kysely, sql } from 'kysely'
import { type Clock, sleep } from '../clock.js'
import { type Local, scopedBatcher } from '../db/batcher.js'
import type { Database, InboundStatus } from '../db/schema.js'
import { replyToCustomMessage } from '../wechat/api/messages.js'
import type { ReplayStamp } from '../wechat/envelope.js'
import type { Reply } from '../wechat/reply.js'
import { INBOUND_CLAIM_LEASE_MS } from './claim-lease.js'
import { enqueue, LANE } from './outbox.js'
import { claimNonce, type NonceClaim } from './replay-claims.js'

/** Identifies a push. */
export interface InboundKey {
  appid: string
  dedupeKey: string
}

/** What a caller waiting on someone else's claim learns. */
export interface InboundOutcome {
  status: InboundStatus
  reply: string | null
}

/** Storage for claims and replies (database in production; memory only in tests and benches). */
export interface InboundStore {
  /**
   * processing → replied|failed with the reply sent; false if the deadline took it first — or if
   * the claim no longer holds `claimedAt` (claim-lease.ts; absent or null: a claim never renewed
   * nor taken back, `claimed_at` null): another attempt took it over, and this one stores nothing
   * over its claim.
   */
  complete(
    key: InboundKey,
    reply: string | null,
    now: Date,
    error?: string,
    claimedAt?: Date | null,
  ): Promise<boolean>
  /**
   * processing → deferred; false if the handler completed first — or, given `claimedAt` (as
   * {@link complete}'s), if another attempt took the claim over.
   */
  defer(key: InboundKey, now: Date, claimedAt?: Date | null): Promise<boolean>
  /**
   * deferred → follow_up (or replied when there is nothing to say); given `claimedAt` (as
   * {@link defer}'s), only over the claim this attempt deferred — nothing over another attempt's.
   */
  recordFollowUp(
    key: InboundKey,
    followUp: string | null,
    now: Date,
    error?: string,
    claimedAt?: Date | null,
  ): Promise<void>
  /** Current status and stored reply. */
  read(key: InboundKey): Promise<InboundOutcome | undefined>
}

/**
 * The database store. Replies are stored in batches (`scopedBatcher`, src/db/batcher.ts): the
 * replies made together, and those that arrive while one `complete` statement is in flight, go in
 * one conditional UPDATE over their keys, so a busy process stores many replies per round trip and
 * an idle one still stores each at once. Each reply still moves its own row only from `processing`.
 */
export function databaseInboundStore(
  db: Kysely<Database>,
  /** One batcher per request scope (Workers: `scopes.local`); without it, one for the store. */
  local?: Local,
): InboundStore {
  const row = (k: InboundKey) =>
    db
      .updateTable('inbound_events')
      .where('appid', '=', k.appid)
      .where('dedupe_key', '=', k.dedupeKey)
  const completion = scopedBatcher((batch: Completion[]) => completeAll(db, batch), local)
  return {
    async complete(key, reply, now, error, claimedAt) {
      // Batched: a claim not renewed nor taken back (most pushes), fenced on `claimed_at` null.
      if (!claimedAt) return completion({ key, reply, now, error })
      // A claim renewed or taken back, or another channel's (few, not batched), fenced on its holder.
      const done = await row(key)
        .set({
          status: error ? 'failed' : 'replied',
          reply,
          error: error ?? null,
          completed_at: now,
        })
        .where('status', '=', 'processing')
        .where('claimed_at', '=', claimedAt)
        .returning('dedupe_key')
        .executeTakeFirst()
      return done !== undefined
    },
    async defer(key, _now, claimedAt) {
      const done = await row(key)
        .set({ status: 'deferred' })
        .where('status', '=', 'processing')
        .$if(claimedAt !== undefined, (q) => q.where(heldAs(claimedAt)))
        .returning('dedupe_key')
        .executeTakeFirst()
      return done !== undefined
    },
    async recordFollowUp(key, followUp, now, error, claimedAt) {
      // The late reply and its customer-service message are recorded together or not at all.
      await db.transaction().execute(async (trx) => {
        const updated = await trx
          .updateTable('inbound_events')
          .where('appid', '=', key.appid)
          .where('dedupe_key', '=', key.dedupeKey)
          .where('status', '=', 'deferred')
          // a deferral keeps its claim's `claimed_at`: the fence of the attempt that deferred it
          .$if(claimedAt !== undefined, (q) => q.where(heldAs(claimedAt)))
          .set({
            status: followUp === null ? 'replied' : 'follow_up',
            follow_up: followUp,
            error: error ?? null,
            completed_at: now,
          })
          .returning('openid')
          .executeTakeFirst()
        const message = updated && followUp && replyToCustomMessage(JSON.parse(followUp) as Reply)
        if (!updated || !message) return
        await enqueue(
          trx,
          [
            {
              appid: key.appid,
              source: `reply:${key.dedupeKey}`,
              openid: updated.openid,
              kind: 'custom',
              lane: LANE.reply,
              payload: message,
            },
          ],
          now,
        )
      })
    },
    async read(key) {
      return db
        .selectFrom('inbound_events')
        .select(['status', 'reply'])
        .where('appid', '=', key.appid)
        .where('dedupe_key', '=', key.dedupeKey)
        .executeTakeFirst()
    },
  }
}

/** The claim as an attempt holds it: its `claimed_at` (null: never renewed nor taken back). */
const heldAs =
  (claimedAt: Date | null | undefined) => (eb: ExpressionBuilder<Database, 'inbound_events'>) =>
    claimedAt ? eb('claimed_at', '=', claimedAt) : eb('claimed_at', 'is', null)

/** One reply to store. */
interface Completion {
  key: InboundKey
  reply: string | null
  now: Date
  error?: string
}

/**
 * processing → replied|failed for a batch of claims never renewed nor taken back (`claimed_at`
 * null), in one statement: which ones moved.
 */
async function completeAll(db: Kysely<Database>, batch: Completion[]): Promise<boolean[]> {
  const { rows } = await sql<{ appid: string; dedupe_key: string }>`update inbound_events e
    set status = v.status, reply = v.reply, error = v.error, completed_at = v.completed_at
    from unnest(${batch.map((b) => b.key.appid)}::text[],
      ${batch.map((b) => b.key.dedupeKey)}::text[],
      ${batch.map((b) => (b.error ? 'failed' : 'replied'))}::text[],
      ${batch.map((b) => b.reply)}::text[], ${batch.map((b) => b.error ?? null)}::text[],
      ${batch.map((b) => b.now.toISOString())}::timestamptz[])
      as v(appid, dedupe_key, status, reply, error, completed_at)
    where e.appid = v.appid and e.dedupe_key = v.dedupe_key and e.status = 'processing'
      and e.claimed_at is null
    returning e.appid, e.dedupe_key`.execute(db)
  const moved = new Set(rows.map((r) => `${r.appid}\u0000${r.dedupe_key}`))
  return batch.map((b) => moved.has(`${b.key.appid}\u0000${b.key.dedupeKey}`))
}

/** Deletes claims older than `before` (WeChat retries within seconds; keep days for support). */
export async function pruneInboundEvents(db: Kysely<Database>, before: Date): Promise<number> {
  const result = await db
    .deleteFrom('inbound_events')
    .where('received_at', '<', before)
    .where('status', 'in', ['replied', 'failed'])
    .executeTakeFirst()
  return Number(result.numDeletedRows)
}

/**
 * Claims an event of another channel (WeCom, a bridge) in the same dedupe ledger as OA pushes:
 * true if this caller owns it, false if it was claimed before (a retry).
 */
export async function claimEvent(
  db: Kysely<Database>,
  e: {
    appid: string
    dedupeKey: string
    sender: string
    msgType: string
    event?: string
    now: Date
  },
): Promise<boolean> {
  const row = await db
    .insertInto('inbound_events')
    .values({
      appid: e.appid,
      dedupe_key: e.dedupeKey,
      openid: e.sender,
      msg_type: e.msgType,
      event: e.event ?? null,
      status: 'processing',
      received_at: e.now,
      claimed_at: e.now,
    })
    .onConflict((oc) => oc.columns(['appid', 'dedupe_key']).doNothing())
    .returning('dedupe_key')
    .executeTakeFirst()
  return row !== undefined
}

/** What claiming an event by its sender's id found: new, the same event again, or another one. */
export type IdClaim = 'claimed' | 'duplicate' | 'reused'

/**
 * {@link claimEvent} for a channel whose sender names each event with an id (the bridge): the claim
 * keeps `digest`, what identifies the event's content, in its `event` column (unused for these
 * channels), and a later claim of the id compares with it — `claimed` (new), `duplicate` (the same
 * event again: a retry) or `reused` (another event under the id: refuse it; nothing was changed),
 * whether the first is done, failed or still being handled. A claim stored without a digest (before
 * they were kept) takes any content as the same event.
 * @example if ((await claimEventById(db, { ...event, digest })) === 'reused') return conflict(409)
 */
export async function claimEventById(
  db: Kysely<Database>,
  e: Omit<Parameters<typeof claimEvent>[1], 'event'> & { digest: string },
): Promise<IdClaim> {
  if (await claimEvent(db, { ...e, event: e.digest })) return 'claimed'
  // The first claim is committed (the insert above waited for it) and its digest never changes.
  const first = await db
    .selectFrom('inbound_events')
    .select('event')
    .where('appid', '=', e.appid)
    .where('dedupe_key', '=', e.dedupeKey)
    .executeTakeFirst()
  return first?.event != null && first.event !== e.digest ? 'reused' : 'duplicate'
}

/** An event taken back for handling again: its first receipt, and the claim's new `claimed_at`. */
export interface Retaken {
  receivedAt: Date
  claimedAt: Date
}

/**
 * Takes back an event of another channel for its sender's retry to handle again: one whose
 * handling failed with nothing answered (`failed`, no reply), or one still `processing` whose
 * claim was not made, taken back or renewed for `leaseMs` — its process died (`claimed_at`, or
 * `received_at` for a claim made before it was kept). One conditional update, so one retry wins.
 * Returns when the event was first received (what the earlier attempt recorded is dated so) and the
 * claim's new `claimed_at` (`now`), or undefined when there is nothing to take back.
 */
export async function reclaimEvent(
  db: Kysely<Database>,
  key: InboundKey,
  o: { now: Date; leaseMs: number },
): Promise<Retaken | undefined> {
  const expired = new Date(o.now.getTime() - o.leaseMs)
  const row = await db
    .updateTable('inbound_events')
    .set({ status: 'processing', error: null, completed_at: null, claimed_at: o.now })
    .where('appid', '=', key.appid)
    .where('dedupe_key', '=', key.dedupeKey)
    .where((eb) =>
      eb.or([
        eb.and([eb('status', '=', 'failed'), eb('reply', 'is', null)]),
        eb.and([
          eb('status', '=', 'processing'),
          eb(eb.fn.coalesce('claimed_at', 'received_at'), '<', expired),
        ]),
      ]),
    )
    .returning('received_at')
    .executeTakeFirst()
  return row && { receivedAt: row.received_at, claimedAt: o.now }
}

/** How a claim's answer tells its sender that another attempt still holds the event (a 503). */
export const STILL_PROCESSING = {
  code: 'STILL_PROCESSING',
  message: 'this event is still being handled: send it again',
} as const

/**
 * For a sender's retry of an event it claimed before (another channel's: the bridge, WeCom
 * callbacks): the event to handle again as of its first receipt (its handling had failed, or its
 * process died — no renewal for `leaseMs` — and it is taken back: {@link reclaimEvent}), the answer
 * another attempt stored (`reply`), or undefined while another attempt still holds it after trying
 * for up to `waitMs` — never "done" for an event nobody answered, so the caller asks the sender to
 * send it again ({@link STILL_PROCESSING}). It polls with a growing interval, so a claim whose
 * lease runs out while it waits is taken back then.
 */
export async function retakeEvent(
  db: Kysely<Database>,
  key: InboundKey,
  o: { clock: Clock; leaseMs?: number; waitMs?: number },
): Promise<Retaken | { reply: string } | undefined> {
  const found = await retakeOrWait(db, key, {
    clock: o.clock,
    leaseMs: o.leaseMs ?? INBOUND_CLAIM_LEASE_MS,
    until: Date.now() + (o.waitMs ?? 4000),
  })
  if (!found || 'claimedAt' in found) return found
  return found.reply ? { reply: found.reply } : undefined
}

/**
 * {@link retakeEvent}'s loop, for a caller that reads the outcome itself (an official-account
 * retry, dispatch.ts): the claim taken back, the outcome another attempt settled it with (not
 * `processing`, nor `failed` with nothing answered), or undefined when it is gone or still held by
 * another attempt at `until` (epoch ms, by `now`). Each poll is one read; the conditional UPDATE
 * ({@link reclaimEvent}: one retry wins) is tried only when the read finds the claim to take back —
 * `failed` with nothing answered, or `processing` with its lease run out — so a retry waiting on a
 * live claim (WeChat retries most when the server is slow) adds reads only.
 */
export async function retakeOrWait(
  db: Kysely<Database>,
  key: InboundKey,
  o: { clock: Clock; leaseMs: number; until: number; now?: () => number },
): Promise<Retaken | InboundOutcome | undefined> {
  const now = o.now ?? Date.now
  let interval = 20
  for (;;) {
    const at = o.clock.now()
    const claim = await db
      .selectFrom('inbound_events')
      .select((eb) => [
        'status',
        'reply',
        eb.fn.coalesce('claimed_at', 'received_at').as('held_since'),
      ])
      .where('appid', '=', key.appid)
      .where('dedupe_key', '=', key.dedupeKey)
      .executeTakeFirst()
    // Gone: nothing to take back.
    if (!claim) return undefined
    const unanswered = claim.status === 'failed' && !claim.reply
    if (claim.status !== 'processing' && !unanswered)
      return { status: claim.status, reply: claim.reply }
    // Held by another attempt: taken back only once its lease has run out (as reclaimEvent
    // decides, at the same instant) — or, lost to another retry meanwhile, read again.
    if (unanswered || new Date(claim.held_since).getTime() < at.getTime() - o.leaseMs) {
      const taken = await reclaimEvent(db, key, { now: at, leaseMs: o.leaseMs })
      if (taken) return taken
    }
    const left = o.until - now()
    if (left <= 0) return undefined
    await sleep(Math.min(interval, left))
    interval = Math.min(interval * 2, 250)
  }
}

/**
 * A request's claim in the replay cache (`replay_claims`, see replay-claims.ts): its door
 * (`wechat`, `wecom_aibot`, `wecom_contact`), timestamp, nonce and body digest. It is keyed by the
 * claim's appid and made in the same statement as the dedupe claim (migration 0019).
 */
export type ReplayClaim = ReplayStamp & { door: string }

/**
 * A signed request whose (timestamp, nonce) was accepted before with another body: a captured
 * signature replayed. Nothing was claimed or recorded; the door answers 401.
 */
export class ReplayRefusedError extends Error {
  override readonly name = 'ReplayRefusedError'
  constructor() {
    super('replayed request: this timestamp and nonce came before with another body')
  }
}

/** What claiming an event found: new, claimed before (a retry), or a replay (refuse it). */
export type ClaimResult = 'claimed' | 'duplicate' | 'replayed'

/**
 * {@link claimEvent} with the request's replay claim in the same statement
 * (`quanzi_claim_event`): one round trip, and on a replay nothing is claimed.
 * @example if ((await claimInbound(db, { ...event, replay })) === 'replayed') return refuse(401)
 */
export async function claimInbound(
  db: Kysely<Database>,
  e: Parameters<typeof claimEvent>[1] & { replay: ReplayClaim },
): Promise<ClaimResult> {
  const { rows } = await sql<{ r: ClaimResult }>`select quanzi_claim_event(
    ${e.appid}::text, ${e.dedupeKey}::text, ${e.sender}::text, ${e.msgType}::text,
    ${e.event ?? null}::text, ${e.now}::timestamptz, ${e.replay.door}::text,
    ${e.replay.timestamp}::bigint, ${e.replay.nonce}::text, ${e.replay.digest}::text
  ) as r`.execute(db)
  return rows[0]!.r
}

/**
 * The replay claim alone, for requests that claim nothing else (one statement): `new`, `retry`
 * (same body) or `conflict` (another body: refuse it).
 */
export function claimReplay(
  db: Kysely<Database>,
  key: string,
  replay: ReplayClaim,
  now: Date,
): Promise<NonceClaim> {
  const { door, timestamp, nonce, digest } = replay
  return claimNonce(db, { door, key, timestamp: Number(timestamp), nonce, bodyDigest: digest, now })
}
