/**
 * The push outbox: every outbound message is a row, unique per (appid, source, openid), so a push is
 * never enqueued twice. Dispatchers in any number of processes claim due rows with
 * `FOR UPDATE SKIP LOCKED` and a lease that they renew while sending (a crashed claim is taken over
 * when the lease runs out), lane by lane — replies, then notices, then campaigns — check
 * reachability and the customer-service window's quota, take tokens from the account's shared
 * bucket, send, and store each item's result as soon as it is known: sent (with WeChat's msgid),
 * skipped (with the errcode that closed the channel), failed, unknown, or cancelled (a campaign-lane
 * item whose member has opted out since it was enqueued: opt-out is read again at send time).
 * A member's items of a lane go one at a time, in queued order, across every dispatcher
 * ({@link claim}); other members' go in parallel.
 *
 * Sent at most once: a template carries `client_msg_id = qz<id>`, which WeChat de-duplicates for
 * about 10 minutes, so a template whose attempt had no answer (a timeout, a crash) is sent again
 * only inside that window. Customer-service and subscribe messages have no such key: each is marked
 * before it is sent, and one whose attempt had no answer is stored `unknown`, never sent again.
 *
 * Holds: a 45009 pauses one API (`outbox_pauses`) until the quota resets; quiet hours hold the
 * campaign lane until they end; a paused campaign's items are `held` until it resumes.
 */
import { type Kysely, type RawBuilder, sql } from 'kysely'
import type { Clock } from '../clock.js'
import { deleteInBatches } from '../db/delete-in-batches.js'
import type {
  Database,
  OutboxItem,
  OutboxKind,
  OutboxLane,
  OutboxPausesTable,
} from '../db/schema.js'
import type { Logger } from '../logger.js'
import { type ApiClient, certainlyNotDelivered } from '../wechat/api/client.js'
import { isTransient, WechatApiError, WechatValidationError } from '../wechat/api/errors.js'
import {
  CUSTOM_WINDOW_MS,
  type CustomMessage,
  type SubscribeMessage,
  sendCustomMessage,
  sendSubscribeMessage,
  sendTemplateMessage,
  type TemplateMessage,
} from '../wechat/api/messages.js'
import {
  type MiniProgramSubscribeMessage,
  sendMiniProgramSubscribeMessage,
} from '../wechat/api/mini-program.js'
import { randomToken } from '../wechat/crypto.js'
import { nextLocalMidnight, type QuietHours, quietHoursEnd } from './community-time.js'
import {
  type CsWindow,
  MESSAGE_WINDOW,
  type WindowKind,
  type WindowRefusal,
  type WindowUse,
} from './cs-window.js'
import { nonAccountAppids } from './outbox-accounts.js'
import { EXPIRED, expireItems } from './outbox-expiry.js'
import { type RateLimit, returnToBucket, takeFromBucket } from './rate-buckets.js'
import {
  isReachabilityError,
  loadReachability,
  type ReachabilityCheck,
  recordMiniProgramRefusal,
  recordTemplateBlock,
  recordUnreachable,
} from './reachability.js'

export { EXPIRED } from './outbox-expiry.js'

/**
 * Priority lanes, claimed in this order: replies and deadline follow-ups first, then transactional
 * notices (payments, redemptions, level-ups, reminders a member asked for), then campaigns.
 */
export const LANE = { reply: 0, notice: 1, campaign: 2 } as const satisfies Record<
  string,
  OutboxLane
>

/** One message to enqueue. `payload` is the API body without `touser` (and `client_msg_id`). */
export interface OutboxMessage {
  appid: string
  source: string
  openid: string
  kind: OutboxKind
  payload: object
  /** Default: notice. */
  lane?: OutboxLane
  /** Not before (default now). */
  notBefore?: Date
  /**
   * Sent instead when a customer-service message cannot go (window closed or its quota used up),
   * e.g. a subscribe message the member accepted: `{kind, payload}`.
   */
  fallback?: { kind: OutboxKind; payload: object }
  /** Not sent when claimed at or after this: stored `skipped` ({@link EXPIRED}). */
  expiresAt?: Date
}

/**
 * Enqueues messages; duplicates of (appid, source, openid) are ignored, and so are messages to an
 * appid that is not an official account's — a mini-program-only member, a WeCom contact — which no
 * dispatcher would ever send (outbox-accounts.ts). Returns how many were new.
 */
export async function enqueue(
  db: Kysely<Database>,
  all: OutboxMessage[],
  now: Date,
): Promise<number> {
  if (all.length === 0) return 0
  const appids = all.map((m) => m.appid)
  const elsewhere = await nonAccountAppids(db, appids)
  const messages = elsewhere.size === 0 ? all : all.filter((m) => !elsewhere.has(m.appid))
  let added = 0
  for (let i = 0; i < messages.length; i += 1000) {
    const rows = await db
      .insertInto('push_outbox')
      .values(
        messages.slice(i, i + 1000).map((m) => ({
          appid: m.appid,
          source: m.source,
          openid: m.openid,
          kind: m.kind,
          payload: JSON.stringify(m.payload),
          lane: m.lane ?? LANE.notice,
          fallback: m.fallback ? JSON.stringify(m.fallback) : null,
          next_attempt_at: m.notBefore ?? now,
          expires_at: m.expiresAt ?? null,
          created_at: now,
        })),
      )
      .onConflict((oc) => oc.columns(['appid', 'source', 'openid']).doNothing())
      .returning('id')
      .execute()
    added += rows.length
  }
  return added
}

/**
 * Holds the pending items whose source starts with `prefix` (a paused campaign, `campaign:<id>:`,
 * or journey, `journey:<id>:`): they are not sent until {@link releaseSource}. Items in a claim
 * being sent now finish (pausing takes effect within one batch). Returns how many were held.
 */
export async function holdSource(db: Kysely<Database>, appid: string, prefix: string) {
  const rows = await db
    .updateTable('push_outbox')
    .set({ status: 'held' })
    .where('appid', '=', appid)
    .where('status', '=', 'pending')
    .where('source', 'like', `${likeEscape(prefix)}%`)
    .returning('id')
    .execute()
  return rows.length
}

/** Releases held items (a resumed campaign); they are due at once (quiet hours still apply). */
export async function releaseSource(db: Kysely<Database>, appid: string, prefix: string) {
  const rows = await db
    .updateTable('push_outbox')
    .set({ status: 'pending' })
    .where('appid', '=', appid)
    .where('status', '=', 'held')
    .where('source', 'like', `${likeEscape(prefix)}%`)
    .returning('id')
    .execute()
  return rows.length
}

/**
 * Cancels pending and held items (a stopped campaign), and those of a dead claim — `unknown` for
 * one its claim had started to send (marked before the send: it may have been delivered), not
 * "cancelled unsent". Items being sent at that moment finish (one that then needs a retry is not
 * cancelled: a finished campaign cannot be told from one whose run simply completed). Returns how
 * many.
 */
export async function cancelSource(db: Kysely<Database>, appid: string, prefix: string, now: Date) {
  const started = sql<boolean>`status = 'sending' and attempt_started_at is not null`
  const rows = await db
    .updateTable('push_outbox')
    .set({
      status: sql`case when ${started} then 'unknown' else 'cancelled' end`,
      errmsg: sql`case when ${started} then ${CANCELLED_STARTED} else 'cancelled' end`,
      next_attempt_at: now,
    })
    .where('appid', '=', appid)
    // also items of a claim that died (lease over): they would be taken over and sent
    .where((eb) =>
      eb.or([
        eb('status', 'in', ['pending', 'held']),
        eb.and([eb('status', '=', 'sending'), eb('next_attempt_at', '<', now)]),
      ]),
    )
    .where('source', 'like', `${likeEscape(prefix)}%`)
    .returning('id')
    .execute()
  return rows.length
}

const likeEscape = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`)

/** The `client_msg_id` of an item: stable across retries and crashes. */
export const clientMsgId = (item: { id: number }) => `qz${item.id}`

/**
 * How long after a template attempt whose outcome is unknown it may be sent again: WeChat honours
 * `client_msg_id` for about 10 minutes; a minute is kept as margin.
 */
export const CLIENT_MSG_ID_WINDOW_MS = 9 * 60_000

/**
 * Customer-service messages an account may send per member's message (within 48 h); a follow, a
 * scan or a menu click allows 3 within a minute (cs-window.ts).
 */
export const CS_WINDOW_QUOTA = MESSAGE_WINDOW.quota

/** Rate limit per account: a token bucket shared through the database (rate-buckets.ts). */
export type { RateLimit } from './rate-buckets.js'

/** Takes up to `want` tokens from the account's bucket; returns how many were granted. */
export async function takeTokens(
  db: Kysely<Database>,
  appid: string,
  want: number,
  rate: RateLimit,
  now: Date,
): Promise<number> {
  return (await takeFromBucket(db, appid, want, rate, now)).granted
}

/** The API a kind of message is sent through (what a 45009 pauses). */
export type OutboxApi = OutboxPausesTable['api']

/**
 * Pauses one API of an account until `until` (45009: the daily quota is used up; it resets at
 * midnight Beijing time) and moves that API's due items there, so they are not claimed meanwhile.
 */
export async function pauseApi(
  db: Kysely<Database>,
  p: { appid: string; api: OutboxApi; until: Date; errcode: number; now: Date },
) {
  await db
    .insertInto('outbox_pauses')
    .values({
      appid: p.appid,
      api: p.api,
      paused_until: p.until,
      errcode: p.errcode,
      recorded_at: p.now,
    })
    .onConflict((oc) =>
      oc
        .columns(['appid', 'api'])
        .doUpdateSet({ paused_until: p.until, errcode: p.errcode, recorded_at: p.now }),
    )
    .execute()
  if (p.api === 'mass') return
  await db
    .updateTable('push_outbox')
    // put off unsent: it holds the member's later items no more, though it failed before (claim)
    .set({ next_attempt_at: p.until, retrying: false })
    .where('appid', '=', p.appid)
    .where('kind', '=', p.api)
    .where('status', '=', 'pending')
    .where('next_attempt_at', '<', p.until)
    .execute()
}

/** The account's APIs paused at `now`, with when they resume. */
export async function activePauses(
  db: Kysely<Database>,
  appid: string,
  now: Date,
): Promise<Map<OutboxApi, Date>> {
  const rows = await db
    .selectFrom('outbox_pauses')
    .select(['api', 'paused_until'])
    .where('appid', '=', appid)
    .where('paused_until', '>', now)
    .execute()
  return new Map(rows.map((r) => [r.api, r.paused_until]))
}

/** A claimed item, with the start of an earlier attempt that may have delivered it (if any). */
export type ClaimedItem = OutboxItem & { previous_attempt: Date | null }

/** The lanes with due items: one index probe each (cheap however large the backlog held back). */
export async function dueLanes(
  db: Kysely<Database>,
  appid: string,
  now: Date,
): Promise<OutboxLane[]> {
  const probe = (lane: OutboxLane) => sql<boolean>`exists (select 1 from push_outbox
    where appid = ${appid} and lane = ${lane} and status in ('pending', 'sending')
      and next_attempt_at <= ${now}::timestamptz)`
  const { rows } = await sql<{ l0: boolean; l1: boolean; l2: boolean }>`select
    ${probe(0)} as l0, ${probe(1)} as l1, ${probe(2)} as l2`.execute(db)
  const r = rows[0]!
  return ([0, 1, 2] as const).filter((lane) => r[`l${lane}`])
}

/** Due items the first statement of a claim looks through before it reads the members' heads. */
export const CLAIM_WINDOW = 1000

/** What a claim is asked for. */
export interface ClaimRequest {
  appid: string
  lane: OutboxLane
  limit: number
  token: string
  lease: Date
  now: Date
  /** Due items looked through first (default {@link CLAIM_WINDOW}; tests make it small). */
  window?: number
}

/**
 * Claims up to `limit` due items of one lane (pending, or sending with an expired lease) for this
 * claim: `next_attempt_at` becomes the lease's end. `previous_attempt` is the item's mark
 * (`attempt_started_at`, set just before a send): set on an item taken over from a dead claim, it
 * says the item may have been delivered.
 *
 * One member's items go one at a time, in queued order: an item is claimed only when none of its
 * member's (appid, openid) items is being sent under a live lease, in any lane, and no earlier item
 * of its lane (a smaller id) is waiting — due, or back from a failed attempt for its retry
 * (`retrying`; strict order: the later ones wait for it). An earlier item put off unsent — its
 * not-before time, quiet hours, a paused API (also one that failed before: a pause clears
 * `retrying`), a rate token — does not hold the later ones. Claims of one account run one at a
 * time (a transaction-scoped advisory lock), each reading what the one before committed, so no two
 * dispatchers take two items of one member at once; other members' items go in parallel.
 *
 * Two statements at most ({@link claimWithin}): the first looks through the `window` earliest due
 * items only, probing each one's member; when that window was full and gave fewer than `limit`
 * (due items held back behind their members' earlier ones), the second reads each member's head
 * at once — the due items and those that hold others without being due
 * (`push_outbox_blocking_idx`, migration 0086) grouped by member — instead of probing every held
 * item's member again.
 */
export async function claim(db: Kysely<Database>, c: ClaimRequest): Promise<ClaimedItem[]> {
  if (c.limit <= 0) return []
  return db.transaction().execute((trx) => claimWithin(trx, c))
}

/** {@link claim}'s work, in a transaction the caller holds (tests hold it open). */
export async function claimWithin(trx: Kysely<Database>, c: ClaimRequest): Promise<ClaimedItem[]> {
  if (c.limit <= 0) return []
  await sql`select pg_advisory_xact_lock(hashtext(${`quanzi:outbox-claim:${c.appid}`}))`.execute(
    trx,
  )
  const window = c.window ?? CLAIM_WINDOW
  const due = dueIn(c)
  const first = await take(trx, claimFirstStatement(c))
  if (first.length >= c.limit) return first
  // The window held every due item (none beyond it): nothing more to find.
  const { rows } = await sql<{ n: number }>`select count(*)::int as n from (
    select 1 from push_outbox w where ${due('w')} limit ${window}) x`.execute(trx)
  if (rows[0]!.n + first.length < window) return first
  return [...first, ...(await take(trx, claimHeadsStatement(c, c.limit - first.length)))]
}

/** The lane's due items, as `t` (the condition every candidate of a claim meets). */
const dueIn = (c: ClaimRequest) => (t: string) =>
  sql`${sql.ref(`${t}.appid`)} = ${c.appid}
    and ${sql.ref(`${t}.lane`)} = ${c.lane} and ${sql.ref(`${t}.status`)} in ('pending', 'sending')
    and ${sql.ref(`${t}.next_attempt_at`)} <= ${c.now}::timestamptz`

/**
 * A claim's first statement ({@link claimWithin} runs it unchanged): up to `limit` of the `window`
 * earliest due items whose member's head they are, claimed.
 */
export function claimFirstStatement(c: ClaimRequest): RawBuilder<ClaimedItem> {
  const window = c.window ?? CLAIM_WINDOW
  return takeStatement(
    c,
    c.limit,
    sql`(select w.id, w.next_attempt_at from push_outbox w where ${dueIn(c)('w')}
      order by w.next_attempt_at limit ${window})`,
  )
}

/**
 * A claim's second statement ({@link claimWithin} runs it unchanged when the first's window was full
 * and gave fewer than the claim's limit): up to `limit` members' heads, claimed.
 */
export function claimHeadsStatement(c: ClaimRequest, limit: number): RawBuilder<ClaimedItem> {
  const due = dueIn(c)
  // Each member's head: its first item (by id) among the lane's due ones and those holding others
  // without being due — retrying in this lane, or being sent in any (counted as 0: it holds all).
  // A member whose head is due can have it taken; the probe in take() checks it again.
  return takeStatement(
    c,
    limit,
    sql`(select o2.id, o2.next_attempt_at from (
        select f.first_due from (
          select q.openid, min(q.id) filter (where q.due) as first_due,
            min(q.id) filter (where not q.due) as first_held
          from (
            select d.id, d.openid, true as due from push_outbox d where ${due('d')}
            union all
            select case when r.status = 'sending' then 0 else r.id end, r.openid, false
            from push_outbox r
            where r.appid = ${c.appid}
              and (r.status = 'sending' or (r.status = 'pending' and r.retrying))
              and r.next_attempt_at > ${c.now}::timestamptz
              and (r.status = 'sending' or r.lane = ${c.lane})
          ) q
          group by q.openid
        ) f
        where f.first_due < coalesce(f.first_held, f.first_due + 1)
      ) h
      join push_outbox o2 on o2.id = h.first_due
      order by o2.next_attempt_at
      limit ${limit})`,
  )
}

/**
 * Takes up to `limit` of `candidates` (ids with their `next_attempt_at`, in that order) that are
 * still due and their member's head: none of the member's items is being sent under a live lease
 * (any lane), and no earlier item of the lane is due or retrying (push_outbox_member_queue_idx,
 * migration 0085).
 *
 * Rows in proportion to the candidates taken, whatever the planner's statistics: right after a run
 * is enqueued (a fresh table on PGlite, which has no autovacuum, or statistics taken when there
 * was no backlog) the planner believes the backlog empty and, planned as a plain join and
 * `not exists`, read the whole backlog through `push_outbox_due_idx` once per candidate — to find
 * it, and again to probe its member — N × batch rows per claim (a 3,400-item run: 182–287 ms a
 * claim on PGlite, the server stalled; bench/README.md, session 31). So each access has one
 * sensible path (src/community/outbox-plans.test.ts): the candidate is found by its key (its
 * recheck — under `for update`, of the row as locked — is written `is true` so that no partial
 * index of the backlog matches it), its member's items by `push_outbox_member_queue_idx` (a
 * subquery in the member's queued order, which that index alone gives), and the claimed rows by
 * their keys (`= any`, never a hash of the table).
 */
function takeStatement(
  c: ClaimRequest,
  limit: number,
  candidates: RawBuilder<unknown>,
): RawBuilder<ClaimedItem> {
  return sql<ClaimedItem>`
    with picked as (
      select o.id, w.next_attempt_at as due
      from ${candidates} w join push_outbox o on o.id = w.id
      -- (found by the primary key: the candidates are the account's lane's already)
      where (o.status in ('pending', 'sending')) is true
        and o.next_attempt_at <= ${c.now}::timestamptz
        -- none of the member's items holds it (as not exists: the first such item, if any)
        and (select e.id from push_outbox e
          where e.appid = o.appid and e.openid = o.openid and e.id <> o.id
            and e.status in ('pending', 'sending')
            and ((e.status = 'sending' and e.next_attempt_at > ${c.now}::timestamptz)
              or (e.lane = o.lane and e.id < o.id
                and (e.next_attempt_at <= ${c.now}::timestamptz
                  or (e.status = 'pending' and e.retrying))))
          order by e.id limit 1) is null
      order by w.next_attempt_at
      limit ${limit}
      for update of o skip locked
    ), claimed as (
      update push_outbox o set
        status = 'sending',
        claim_token = ${c.token},
        next_attempt_at = ${c.lease}::timestamptz,
        attempts = o.attempts + 1,
        first_attempt_at = coalesce(o.first_attempt_at, ${c.now}::timestamptz)
      where o.id = any(array(select id from picked))
      -- the mark as it was claimed (this update leaves it)
      returning o.*, o.attempt_started_at as previous_attempt
    )
    -- the longest due first: the order they are sent in
    select claimed.* from claimed join picked p on p.id = claimed.id order by p.due, claimed.id`
}

/** Runs a claim's statement. */
async function take(trx: Kysely<Database>, statement: RawBuilder<ClaimedItem>) {
  return (await statement.execute(trx)).rows
}

/** What happened to one item. */
export type ItemResult =
  | { id: number; status: 'sent'; msgid: string | null }
  /** Not sent: the channel is closed (errcode), or the item expired (null, {@link EXPIRED}). */
  | { id: number; status: 'skipped'; errcode: number | null; errmsg: string }
  | { id: number; status: 'failed'; errcode: number | null; errmsg: string }
  | { id: number; status: 'unknown'; errcode: null; errmsg: string }
  /** Withdrawn before it was sent: a marketing item whose member opted out since it was queued. */
  | { id: number; status: 'cancelled'; errcode: null; errmsg: string }
  | {
      id: number
      status: 'retry'
      errcode: number | null
      errmsg: string
      at: Date
      /** The earliest attempt that may have delivered it (kept for the client_msg_id window). */
      attempt: Date | null
    }
  | { id: number; status: 'released'; at: Date; attempt: Date | null }

/** Counts of one drain. */
export interface DrainSummary {
  sent: number
  skipped: number
  failed: number
  retried: number
  /** Maybe delivered, not sent again (a timeout on a message WeChat cannot de-duplicate). */
  unknown: number
  /** Campaign-lane items not sent: the member opted out (退订) after they were enqueued. */
  cancelled: number
  /** True when a 45009 quota error paused an API. */
  paused: boolean
}

/** What a dispatcher needs. */
export interface DispatcherOptions {
  db: Kysely<Database>
  api: ApiClient
  /**
   * The mini program's client (its own access token), for `mp_subscribe` items; without it they
   * fail ("no mini program configured").
   */
  mpApi?: ApiClient
  appid: string
  clock: Clock
  logger: Logger
  /** The community's time zone (quiet hours). */
  timeZone: string
  rate: RateLimit
  /** Campaign items are not sent inside these hours (replies and notices are). */
  quietHours?: QuietHours | null
  /** Items claimed at a time (default 200). */
  batchSize?: number
  /** Sends in flight (default 16). */
  concurrency?: number
  /** A claim's lease, renewed while its items are being sent (default 60 s). */
  leaseMs?: number
  maxAttempts?: number
  /** Stop after this many claims (default: until nothing is due). */
  maxBatches?: number
}

/** Retry delay after `attempts` tries: 30 s, 1 min, 2 min … capped at 1 h. */
export const retryDelayMs = (attempts: number) =>
  Math.min(3600_000, 30_000 * 2 ** Math.max(0, attempts - 1))

/** The quota of the day resets at midnight Beijing time (whatever the community's zone). */
const QUOTA_TIME_ZONE = 'Asia/Shanghai'

interface Fallback {
  kind: OutboxKind
  payload: Record<string, unknown>
}

/** One item ready to send, with what the claim loaded for it. */
interface Work {
  item: ClaimedItem
  reach: ReachabilityCheck
  quietEnd: Date | null
}

/**
 * Sends due items until none is due (or `maxBatches`). Claims are pipelined: the next claim is
 * taken while the current one's last items are in flight. Every item's outcome is stored as soon as
 * it is known (writes of items finishing together are grouped into one statement), only while this
 * claim still holds it; a customer-service or subscribe message is marked as being attempted
 * before it is sent, so a process taking over after a crash does not send it again.
 */
export async function drainOutbox(o: DispatcherOptions): Promise<DrainSummary> {
  const batchSize = o.batchSize ?? 200
  const concurrency = o.concurrency ?? 16
  const leaseMs = o.leaseMs ?? 60_000
  const maxAttempts = o.maxAttempts ?? 8
  const summary: DrainSummary = {
    sent: 0,
    skipped: 0,
    failed: 0,
    retried: 0,
    unknown: 0,
    cancelled: 0,
    paused: false,
  }
  // The first claim reuses this probe (unless quiet hours move items first).
  let probed: OutboxLane[] | undefined = await dueLanes(o.db, o.appid, o.clock.now())
  if (probed.length === 0) return summary

  const token = randomToken(16)
  const writer = resultWriter(o.db, o.appid, token, o.clock)
  const throttled = o.rate.perSecond > 0
  const queue: Work[] = []
  const held = new Set<number>()
  let exhausted = false
  let claims = 0
  let unusedTokens = 0
  let refilling: Promise<void> | undefined
  /**
   * Set when a claim found due items but could take none (their members' earlier items are being
   * sent, some by this drain): resolved when one of this drain's items is done, to claim again.
   */
  let waiting: { promise: Promise<void>; resolve: () => void } | undefined
  /** Items being worked on, and how many this drain is done with. */
  let working = 0
  let finished = 0
  const progress = () => {
    working--
    finished++
    waiting?.resolve()
    waiting = undefined
  }
  let failure: { error: unknown } | undefined
  /** The APIs paused (45009), for every claim of this drain: one 45009 holds the rest at once. */
  const pauses = new Map<OutboxApi, Date>()

  const renew = setInterval(() => {
    if (held.size === 0) return
    const until = new Date(o.clock.now().getTime() + leaseMs)
    // Rows a result is being written to right now are skipped (no lock waits, no deadlock).
    o.db
      .updateTable('push_outbox')
      .set({ next_attempt_at: until })
      .where('id', 'in', (eb) =>
        eb
          .selectFrom('push_outbox')
          .select('id')
          .where('id', 'in', [...held])
          .where('claim_token', '=', token)
          .where('status', '=', 'sending')
          .forUpdate()
          .skipLocked(),
      )
      .execute()
      .catch((error) => o.logger.warn('outbox lease renewal failed', { appid: o.appid, error }))
  }, leaseMs / 3)

  const refill = async () => {
    if (o.maxBatches !== undefined && claims >= o.maxBatches) {
      exhausted = true
      return
    }
    claims++
    const before = finished
    const now = o.clock.now()
    const quietEnd = quietHoursEnd(now, o.quietHours ?? null, o.timeZone)
    if (quietEnd) await deferLane(o.db, o.appid, LANE.campaign, now, quietEnd)
    const lanes = (!quietEnd && probed) || (await dueLanes(o.db, o.appid, now))
    probed = undefined
    const granted =
      lanes.length === 0
        ? 0
        : throttled
          ? await takeTokens(o.db, o.appid, batchSize, o.rate, now)
          : batchSize
    const lease = new Date(now.getTime() + leaseMs)
    const items: ClaimedItem[] = []
    for (const lane of lanes) {
      if (items.length >= granted) break
      items.push(
        ...(await claim(o.db, {
          appid: o.appid,
          lane,
          limit: granted - items.length,
          token,
          lease,
          now,
        })),
      )
    }
    // Re-claimed from this drain itself (its lease ran out while renewals failed): the copy in
    // hand is still being worked on; a second would send it twice.
    const fresh = items.filter((item) => !held.has(item.id))
    // the tokens taken for no item to work on (fewer were due than granted, or re-claimed from
    // this drain itself) are not spent: given back with the drain's others
    if (throttled) unusedTokens += granted - fresh.length
    if (items.length === 0) {
      // Due items all held back behind their members' items in flight: while this drain has some,
      // the next claim waits for one of them to be done (a member's next item may follow it).
      if (lanes.length > 0 && granted > 0 && !exhausted) {
        // the tokens go back now, not at the drain's end: other dispatchers may send meanwhile
        if (throttled) {
          unusedTokens -= granted
          await returnToBucket(o.db, o.appid, granted, o.rate)
        }
        if (finished !== before) return // one was done meanwhile: claim again now
        if (working > 0 || queue.length > 0) {
          let resolve = () => {}
          const promise = new Promise<void>((r) => {
            resolve = r
          })
          waiting = { promise, resolve }
          return
        }
      }
      exhausted = true
      return
    }
    for (const item of fresh) held.add(item.id)
    const [reach, active] = await Promise.all([
      loadReachability(
        o.db,
        o.appid,
        items.map((i) => i.openid),
        now,
        // a reply may use an event's minute (cs-window.ts): only its member's pushes are read
        { eventWindowsOf: items.filter((i) => i.lane === LANE.reply).map((i) => i.openid) },
      ),
      activePauses(o.db, o.appid, now),
    ])
    for (const [api, until] of active) pauses.set(api, until)
    for (const item of fresh) queue.push({ item, reach, quietEnd })
  }

  // A worker waits for its item's result to be stored before the next item (writes of items
  // finishing together are grouped): measured faster than writing in the background, and nothing
  // known is left unwritten.
  const settle = async (
    work: Work,
    result: ItemResult,
    called: boolean,
    /** How the result is stored (default: with the claim's other results). */
    store: (result: ItemResult) => Promise<boolean> = writer.result,
  ) => {
    // the token its claim took for it, not spent on a call: given back with the drain's others
    if (!called && throttled) unusedTokens++
    if (result.status === 'retry') summary.retried++
    else if (result.status !== 'released') summary[result.status]++
    const stored = await store(result)
    held.delete(work.item.id)
    return stored
  }

  /**
   * A token for a call beyond the one an item's claim took a token for: from those this drain
   * took and did not spend, else from the account's bucket. None left: when one will be there.
   */
  const extraToken = async (now: Date): Promise<Date | undefined> => {
    if (!throttled) return undefined
    if (unusedTokens > 0) {
      unusedTokens--
      return undefined
    }
    const take = await takeFromBucket(o.db, o.appid, 1, o.rate, now)
    return take.granted > 0 ? undefined : new Date(now.getTime() + take.retryAfterMs)
  }

  const process = async (work: Work) => {
    const { item } = work
    const now = o.clock.now()
    // Taken over from a claim that died mid-send: it may have been delivered already.
    if (item.previous_attempt) {
      const window = item.previous_attempt.getTime() + CLIENT_MSG_ID_WINDOW_MS
      if (item.kind !== 'template' || now.getTime() >= window)
        return settle(work, unknown(item, 'an earlier attempt may have delivered it'), false)
    }
    // Opt-out is checked when a campaign is enqueued, but a large drain or a quiet-hours backlog
    // sends hours later: a marketing item of a member who has opted out (退订) since is withdrawn.
    // Replies and notices (lanes 0 and 1) still go.
    if (item.lane === LANE.campaign && work.reach.optedOut(item.openid))
      return settle(
        work,
        item.previous_attempt
          ? unknown(item, 'opted out; an earlier attempt may have delivered it')
          : { id: item.id, status: 'cancelled', errcode: null, errmsg: OPTED_OUT },
        false,
      )
    // Past its deadline (a check-in reminder held by a 45009 pause until midnight, or pushed late
    // by a retry's back-off): not sent, and the one-time authorisation it used is given back in
    // the statement storing it expired, only while this claim holds it (a crash or an error
    // leaves both undone: the item is claimed again when the lease runs out).
    if (item.expires_at && now >= item.expires_at) {
      const expired = { id: item.id, status: 'skipped', errcode: null, errmsg: EXPIRED } as const
      const ours = sql<boolean>`o.id = ${item.id} and o.status = 'sending'
        and o.claim_token = ${token}`
      return settle(
        work,
        expired,
        false,
        async () => (await expireItems(o.db, { where: ours, now })) > 0,
      )
    }
    if (item.lane === LANE.campaign && work.quietEnd)
      return settle(work, released(item, work.quietEnd), false)
    let kind = item.kind
    let payload = JSON.parse(item.payload) as Record<string, unknown>
    const scope = () =>
      kind === 'subscribe' || kind === 'mp_subscribe' ? String(payload.template_id) : undefined
    const pausedUntil = (k: OutboxKind) => {
      const until = pauses.get(k)
      return until && until > now ? until : undefined
    }
    // A mini-program subscribe message goes to the mini program's openid (in its payload), which
    // needs no follow of the account: what the account's API said about the member does not apply.
    // A reply (a late answer to a follow, scan or click) may use that event's 1-minute window;
    // a notice or a campaign only the 48-hour window of the member's message.
    const use: WindowUse = item.lane === LANE.reply ? 'reply' : 'message'
    const reach = (k: OutboxKind) =>
      k === 'mp_subscribe' ? null : work.reach(item.openid, k, scope(), use)
    let closed = reach(kind)
    if (!closed && kind === 'custom' && pausedUntil('custom'))
      return settle(work, released(item, pausedUntil('custom')!), false)
    // The window's quota is counted just before the send, and given back when it did not go.
    let reserved: WindowRefusal | undefined
    if (!closed && kind === 'custom') {
      reserved = await reserveCsSend(o.db, work.reach.windows(item.openid, use), item)
      if (!reserved)
        closed = { errcode: 45047, reason: 'this window’s customer-service quota is used up' }
    }
    /**
     * Switches the item to its fallback (a customer-service message cannot fall back to another):
     * what closes the fallback's channel, if anything — `errcode` when it is custom too.
     */
    const toFallback = (fallback: string, errcode: number) => {
      const f = JSON.parse(fallback) as Fallback
      kind = f.kind
      payload = f.payload
      return reach(kind) ?? (kind === 'custom' ? { errcode, reason: 'fallback is custom' } : null)
    }
    if (closed && item.fallback) closed = toFallback(item.fallback, 45047)
    if (closed)
      return settle(
        work,
        { id: item.id, status: 'skipped', errcode: closed.errcode, errmsg: closed.reason },
        false,
      )
    const refund = async (result: ItemResult) => {
      if (!reserved || result.status === 'sent' || result.status === 'unknown') return
      // WeChat refused the window itself: it is used up for the member's other items too (they
      // reroute without asking again), not given back; the member's next message opens a new one.
      if (result.status === 'skipped' && closesCsWindow(result.errcode))
        await useUpCsWindow(o.db, item, reserved)
      else await refundCsSend(o.db, item, reserved)
    }
    if (pausedUntil(kind)) {
      const result = released(item, pausedUntil(kind)!)
      await refund(result)
      return settle(work, result, false)
    }
    // Marked before it is sent: a worker taking over after a crash knows it may have gone.
    if (!(await writer.mark(item.id, now))) {
      await refund(released(item, now))
      // the lease was lost: another dispatcher has it now (and takes its own token to send it);
      // the token this claim took for it was not spent, given back with the drain's others
      if (throttled) unusedTokens++
      held.delete(item.id)
      return
    }
    // Every call to WeChat spends a token: the first the one its claim took, any other (the
    // fallback after a refusal) one more. None left: the item goes back to the queue, due when
    // the bucket has one (its mark cleared: nothing went), and its next claim pays for the call.
    let allotted = true
    const attempt = async (): Promise<ItemResult> => {
      const wait = allotted ? undefined : await extraToken(now)
      allotted = false
      if (wait) {
        const result = released(item, wait)
        await refund(result)
        return result
      }
      try {
        return { id: item.id, status: 'sent', msgid: await send(o, kind, payload, item) }
      } catch (error) {
        const result = await classify(o, item, kind, error, maxAttempts, scope(), now, payload, {
          window: reserved,
        })
        if (result.status === 'released') {
          pauses.set(kind, result.at)
          summary.paused = true
        }
        await refund(result)
        return result
      }
    }
    let result = await attempt()
    // WeChat refused the customer-service message for the window our count thought open (45015
    // expired, 45047 used up: staff replied from the MP console, another tool). classify recorded
    // the window closed; the fallback goes now, in the same attempt. The refusal says the message
    // did not go, and the mark stays: a crash from here leaves the item unknown, never sent twice.
    // The fallback is a second call: it takes a token of its own (attempt).
    if (
      result.status === 'skipped' &&
      kind === 'custom' &&
      item.fallback &&
      closesCsWindow(result.errcode)
    ) {
      reserved = undefined
      const shut = toFallback(item.fallback, result.errcode!)
      if (shut)
        result = { id: item.id, status: 'skipped', errcode: shut.errcode, errmsg: shut.reason }
      else if (pausedUntil(kind)) result = released(item, pausedUntil(kind)!)
      else result = await attempt()
    }
    return settle(work, result, true)
  }

  const worker = async () => {
    for (;;) {
      if (!exhausted && !refilling && !waiting && queue.length <= concurrency)
        // A failed claim ends the drain (after the items in hand); nobody may be awaiting it.
        refilling = refill()
          .catch((error) => {
            failure ??= { error }
            exhausted = true
          })
          .finally(() => {
            refilling = undefined
          })
      const next = queue.shift()
      if (next) {
        working++
        await process(next)
          .catch((error) => {
            failure ??= { error }
            exhausted = true // no new claims; the items in hand are still finished
          })
          .finally(progress)
      } else if (refilling) await refilling
      else if (waiting) await waiting.promise
      else return
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  clearInterval(renew)
  await writer.flush()
  if (unusedTokens > 0) await returnToBucket(o.db, o.appid, unusedTokens, o.rate)
  if (failure) throw failure.error
  return summary
}

const unknown = (item: OutboxItem, why: string): ItemResult => ({
  id: item.id,
  status: 'unknown',
  errcode: null,
  errmsg: `outcome unknown, not sent again: ${why}`,
})

const released = (item: ClaimedItem, at: Date): ItemResult => ({
  id: item.id,
  status: 'released',
  at,
  attempt: item.previous_attempt,
})

async function send(
  { api, mpApi }: DispatcherOptions,
  kind: OutboxKind,
  payload: Record<string, unknown>,
  item: OutboxItem,
): Promise<string | null> {
  switch (kind) {
    case 'template':
      return sendTemplateMessage(api, {
        ...(payload as Omit<TemplateMessage, 'touser'>),
        touser: item.openid,
        client_msg_id: clientMsgId(item),
      })
    case 'custom':
      await sendCustomMessage(api, item.openid, payload as unknown as CustomMessage)
      return null
    case 'subscribe':
      await sendSubscribeMessage(api, {
        ...(payload as Omit<SubscribeMessage, 'touser'>),
        touser: item.openid,
      })
      return null
    case 'mp_subscribe':
      if (!mpApi)
        throw new WechatValidationError('kind', 'mp_subscribe needs the mini program (MP_APPID)')
      await sendMiniProgramSubscribeMessage(
        mpApi,
        payload as unknown as MiniProgramSubscribeMessage,
      )
      return null
  }
}

/**
 * Counts a customer-service message against the member's window: the first of `windows` (open, in
 * the order cs-window.ts gives) with quota left; undefined when none has, else the window counted
 * (its kind and start: what a refusal closes). One conditional upsert per window tried, on the
 * member's one `cs_window_sends` row (its key serialises concurrent dispatchers): a newer window
 * starts a new count with its own quota. A row for a newer window than the one tried (the member
 * acted after this drain loaded them) takes the count only if its quota is as large: a reply may
 * go in a message window, a notice never in an event's minute.
 */
async function reserveCsSend(
  db: Kysely<Database>,
  windows: CsWindow[],
  item: OutboxItem,
): Promise<WindowRefusal | undefined> {
  for (const window of windows) {
    const { rows } = await sql<{ openedAt: Date; kind: WindowKind }>`
      insert into cs_window_sends as w (appid, openid, window_opened_at, sent, quota, kind)
      values (${item.appid}, ${item.openid}, ${window.openedAt}::timestamptz, 1, ${window.quota},
        ${window.kind})
      on conflict (appid, openid) do update set
        sent = case when w.window_opened_at < excluded.window_opened_at then 1 else w.sent + 1 end,
        quota = case when w.window_opened_at < excluded.window_opened_at then excluded.quota
          else w.quota end,
        kind = case when w.window_opened_at < excluded.window_opened_at then excluded.kind
          else w.kind end,
        window_opened_at = greatest(w.window_opened_at, excluded.window_opened_at)
      where w.window_opened_at < excluded.window_opened_at
        or (w.sent < w.quota and w.quota >= excluded.quota)
      returning w.window_opened_at as "openedAt", w.kind`.execute(db)
    if (rows[0]) return { kind: rows[0].kind, openedAt: new Date(rows[0].openedAt) }
  }
  return undefined
}

/** The errcodes by which WeChat refuses a customer-service message for the member's window. */
const closesCsWindow = (errcode: number | null) => errcode === 45015 || errcode === 45047

/** The errmsg of a dead claim's item cancelled after its send had started (`unknown`). */
export const CANCELLED_STARTED = 'cancelled; an earlier attempt may have delivered it'

/** The errmsg of an item withdrawn because its member opted out of marketing. */
export const OPTED_OUT = 'opted out'

/**
 * Counts the window WeChat refused as used up (same window only), so the member's other items,
 * in this claim or another dispatcher's, reroute to their fallback without asking WeChat again.
 */
async function useUpCsWindow(db: Kysely<Database>, item: OutboxItem, { openedAt }: WindowRefusal) {
  await db
    .updateTable('cs_window_sends')
    .set((eb) => ({ sent: eb.ref('quota') }))
    .where('appid', '=', item.appid)
    .where('openid', '=', item.openid)
    .where('window_opened_at', '=', openedAt)
    .where((eb) => eb('sent', '<', eb.ref('quota')))
    .execute()
}

/** Gives back a counted send that certainly did not go (same window only). */
async function refundCsSend(db: Kysely<Database>, item: OutboxItem, { openedAt }: WindowRefusal) {
  await db
    .updateTable('cs_window_sends')
    .set((eb) => ({ sent: eb('sent', '-', 1) }))
    .where('appid', '=', item.appid)
    .where('openid', '=', item.openid)
    .where('window_opened_at', '=', openedAt)
    .where('sent', '>', 0)
    .execute()
}

/**
 * Moves a lane's due items to `until` (quiet hours: campaigns wait for their end). A due `sending`
 * item is a dead claim's (its lease ran out): it goes back to `pending`, as a claim taking it over
 * would find it (its mark kept: `previous_attempt`) — left `sending` with a lease that looks live,
 * it would hold its member's items of every lane until the quiet hours end (claim).
 */
async function deferLane(
  db: Kysely<Database>,
  appid: string,
  lane: OutboxLane,
  now: Date,
  until: Date,
) {
  await db
    .updateTable('push_outbox')
    .set({ next_attempt_at: until, status: 'pending', claim_token: null, retrying: false })
    .where('appid', '=', appid)
    .where('lane', '=', lane)
    .where('status', 'in', ['pending', 'sending'])
    .where('next_attempt_at', '<=', now)
    .execute()
}

async function classify(
  o: DispatcherOptions,
  item: ClaimedItem,
  kind: OutboxKind,
  error: unknown,
  maxAttempts: number,
  scope: string | undefined,
  /** When this attempt began (its mark). */
  attemptAt: Date,
  /** What was sent (the fallback's payload when the fallback went). */
  payload: Record<string, unknown>,
  /** A customer-service message's: the window it was counted in (a refusal closes that one). */
  { window }: { window?: WindowRefusal } = {},
): Promise<ItemResult> {
  const now = o.clock.now()
  const errcode = error instanceof WechatApiError ? error.errcode : null
  const errmsg = error instanceof Error ? error.message : String(error)
  if (errcode === 45009) {
    const until = nextLocalMidnight(now, QUOTA_TIME_ZONE)
    await pauseApi(o.db, { appid: o.appid, api: kind, until, errcode, now })
    o.logger.warn('outbox API paused by its daily quota', {
      appid: o.appid,
      api: kind,
      until: until.toISOString(),
    })
    return released(item, until)
  }
  if (kind === 'mp_subscribe' && (errcode === 43101 || errcode === 40003)) {
    // Refused, or no authorisation left, or not the mini program's openid: the member's
    // mini-program authorisation is dropped (a new accept gives one again, and one given since
    // the item was enqueued is kept); never retried.
    const mpOpenid = String(payload.touser ?? '')
    await recordMiniProgramRefusal(o.db, {
      appid: o.appid,
      mpOpenid,
      templateId: scope,
      enqueuedAt: item.created_at,
      now,
    })
    return { id: item.id, status: 'skipped', errcode, errmsg: (error as WechatApiError).errmsg }
  }
  if (errcode !== null && isReachabilityError(errcode)) {
    // A subscribe message's 43101 answers the authorisation it was enqueued with: an accept
    // since then keeps the template open (recordUnreachable applies it to that channel only).
    await recordUnreachable(o.db, {
      appid: o.appid,
      openid: item.openid,
      errcode,
      scope,
      enqueuedAt: item.created_at,
      window: kind === 'custom' ? window : undefined,
      now,
    })
    return { id: item.id, status: 'skipped', errcode, errmsg: (error as WechatApiError).errmsg }
  }
  if (error instanceof WechatValidationError)
    return { id: item.id, status: 'failed', errcode: null, errmsg }
  const retryable = isTransient(error) || errcode === 45011
  const at = new Date(now.getTime() + retryDelayMs(item.attempts))
  if (retryable && certainlyNotDelivered(error) && item.attempts < maxAttempts)
    return { id: item.id, status: 'retry', errcode, errmsg, at, attempt: item.previous_attempt }
  if (retryable && !certainlyNotDelivered(error)) {
    // The request was written and no answer came. Only a template may go again, with the same
    // client_msg_id, while WeChat still de-duplicates it.
    const since = item.previous_attempt ?? attemptAt
    if (
      kind === 'template' &&
      item.kind === 'template' &&
      item.attempts < maxAttempts &&
      at.getTime() < since.getTime() + CLIENT_MSG_ID_WINDOW_MS
    )
      return { id: item.id, status: 'retry', errcode, errmsg, at, attempt: since }
    o.logger.warn('outbox item outcome unknown', { appid: o.appid, id: item.id, reason: errmsg })
    return unknown(item, errmsg)
  }
  o.logger.warn('outbox item failed', { appid: o.appid, id: item.id, errcode, reason: errmsg })
  return { id: item.id, status: 'failed', errcode, errmsg }
}

/**
 * The paused owners of campaign-lane items, as `(kind, id)`: an item whose source is
 * `<kind>:<id>:…` (`campaign:<id>:`, `journey:<id>:`) is held rather than queued again while its
 * owner is paused, as holdSource held its pending items when the pause was made.
 */
const PAUSED_SOURCES = sql`select 'campaign' as kind, id from campaigns where status = 'paused'
  union all select 'journey', id from journeys where status = 'paused'`

/** How long a write waits for others to join it (results of sends finishing together). */
const GROUP_WINDOW_MS = 2
/** At most this many writes per statement. */
const MAX_GROUP = 256

/**
 * Writes marks ("being sent now") and results for one claim, grouping those that arrive while a
 * write is in flight into the next statement. Each resolves to whether the claim still held the
 * row (a lost lease writes nothing).
 */
function resultWriter(db: Kysely<Database>, appid: string, token: string, clock: Clock) {
  type Request = { mark: true; id: number; at: Date } | { mark: false; result: ItemResult }
  type Op = Request & { done: (applied: boolean) => void; fail: (error: unknown) => void }
  const ops: Op[] = []
  let running: Promise<void> | undefined

  const flushOnce = async (batch: Op[]) => {
    const marks = batch.filter((op) => op.mark)
    const results = batch.filter((op) => !op.mark)
    const applied = new Set<number>()
    if (marks.length > 0) {
      const rows = await sql<{ id: number }>`
        update push_outbox o set attempt_started_at = coalesce(o.attempt_started_at, v.at)
        from (values ${sql.join(marks.map((m) => sql`(${m.id}::bigint, ${m.at}::timestamptz)`))}) as v(id, at)
        where o.id = v.id and o.status = 'sending' and o.claim_token = ${token}
        returning o.id`.execute(db)
      for (const r of rows.rows) applied.add(Number(r.id))
    }
    if (results.length > 0) {
      const now = clock.now()
      const values = results.map(({ result: r }) => {
        const status = r.status === 'retry' || r.status === 'released' ? 'pending' : r.status
        const errcode = 'errcode' in r ? r.errcode : null
        const errmsg = 'errmsg' in r ? r.errmsg.slice(0, 500) : null
        const msgid = r.status === 'sent' ? r.msgid : null
        const at = 'at' in r ? r.at : now
        const untried = r.status === 'released' ? 1 : 0
        const attempt = 'attempt' in r ? r.attempt : null
        const retrying = r.status === 'retry'
        return sql`(${r.id}::bigint, ${status}::text, ${errcode}::integer, ${errmsg}::text, ${msgid}::text, ${at}::timestamptz, ${untried}::integer, ${attempt}::timestamptz, ${retrying}::boolean)`
      })
      const rows = await sql<{ id: number }>`
        update push_outbox as o set
          -- an item going back to the queue while its source is paused is held instead (a pause
          -- during its send, retry or quota wait); resuming releases it
          status = case when v.status = 'pending' and o.lane = 2
            and exists (select 1 from (${PAUSED_SOURCES}) p
              where p.kind = split_part(o.source, ':', 1)
                and p.id = case when split_part(o.source, ':', 2) ~ '^[0-9]{1,18}$'
                  then split_part(o.source, ':', 2)::bigint end)
            then 'held' else v.status end,
          errcode = v.errcode,
          errmsg = v.errmsg,
          wechat_msgid = coalesce(v.msgid, o.wechat_msgid),
          next_attempt_at = v.at,
          attempts = o.attempts - v.untried,
          -- waiting for its retry (holds the member's later items); put off unsent, or done: not
          retrying = v.retrying,
          attempt_started_at = v.attempt,
          claim_token = null,
          sent_at = case when v.status = 'sent' then ${now}::timestamptz else o.sent_at end,
          delivery = coalesce(o.delivery, r.status),
          delivered_at = coalesce(o.delivered_at, r.received_at)
        from (values ${sql.join(values)}) as v(id, status, errcode, errmsg, msgid, at, untried, attempt, retrying)
        left join push_receipts r on r.appid = ${appid} and r.msgid = v.msgid
        where o.id = v.id and o.status = 'sending' and o.claim_token = ${token}
        returning o.id`.execute(db)
      for (const r of rows.rows) applied.add(Number(r.id))
    }
    for (const op of batch) op.done(applied.has(op.mark ? op.id : op.result.id))
  }

  const loop = async () => {
    while (ops.length > 0) {
      // A moment for the results finishing together to share the statement.
      await new Promise((resolve) => setTimeout(resolve, GROUP_WINDOW_MS))
      const batch = ops.splice(0, MAX_GROUP)
      await flushOnce(batch).catch((error) => {
        for (const op of batch) op.fail(error)
      })
    }
    running = undefined
  }
  const push = (op: Request) =>
    new Promise<boolean>((done, fail) => {
      ops.push({ ...op, done, fail })
      running ??= loop()
    })
  return {
    /** Marks an item as being sent now; false if this claim no longer holds it. */
    mark: (id: number, at: Date) => push({ mark: true, id, at }),
    /** Stores an item's result; false if this claim no longer holds it. */
    result: (result: ItemResult) => push({ mark: false, result }),
    /** Waits for the writes in flight. */
    flush: async () => {
      while (running) await running
    },
  }
}

/**
 * Records a TEMPLATESENDJOBFINISH receipt: kept in `push_receipts` (so a receipt that arrives
 * before the send's result is stored still reaches it) and set on the item that sent it. A
 * `failed:user block` receipt closes the template channel for the member.
 */
export async function recordDelivery(
  db: Kysely<Database>,
  r: { appid: string; msgid: string; status: string; openid?: string; now: Date },
): Promise<boolean> {
  await db
    .insertInto('push_receipts')
    .values({ appid: r.appid, msgid: r.msgid, status: r.status, received_at: r.now })
    .onConflict((oc) =>
      oc.columns(['appid', 'msgid']).doUpdateSet({ status: r.status, received_at: r.now }),
    )
    .execute()
  const row = await db
    .updateTable('push_outbox')
    .set({ delivery: r.status, delivered_at: r.now })
    .where('appid', '=', r.appid)
    .where('wechat_msgid', '=', r.msgid)
    .returning('openid')
    .executeTakeFirst()
  const openid = r.openid ?? row?.openid
  if (openid && /^failed:\s*user block/.test(r.status))
    await recordTemplateBlock(db, { appid: r.appid, openid, now: r.now })
  return row !== undefined
}

/** Retention of the outbox: what is deleted and when (ages in days). */
export interface OutboxRetention {
  /** Finished replies and notices (campaign items go with their campaign's recipients). */
  outboxDays: number
  /** Delivery receipts. */
  receiptDays: number
}

/**
 * Deletes finished reply and notice items older than `outboxDays`, receipts older than
 * `receiptDays`, and customer-service window counts whose window has closed, in bounded batches.
 * Campaign items are kept for the campaign report (pruned with its recipients, after the roll-up).
 */
export async function pruneOutbox(
  db: Kysely<Database>,
  r: OutboxRetention & { now: Date; batch?: number },
) {
  const batch = r.batch ?? 5000
  const ago = (days: number) => new Date(r.now.getTime() - days * 86_400_000)
  const outbox = await deleteInBatches(batch, () =>
    db
      .deleteFrom('push_outbox')
      .where(
        'id',
        'in',
        db
          .selectFrom('push_outbox')
          .select('id')
          .where('created_at', '<', ago(r.outboxDays))
          .where('lane', '<', LANE.campaign)
          .where('status', 'in', ['sent', 'failed', 'skipped', 'cancelled', 'unknown'])
          .limit(batch),
      )
      .executeTakeFirst(),
  )
  const receipts = await db
    .deleteFrom('push_receipts')
    .where('received_at', '<', ago(r.receiptDays))
    .executeTakeFirst()
  const windows = await db
    .deleteFrom('cs_window_sends')
    .where('window_opened_at', '<', new Date(r.now.getTime() - CUSTOM_WINDOW_MS))
    .executeTakeFirst()
  return {
    outbox,
    receipts: Number(receipts.numDeletedRows),
    csWindows: Number(windows.numDeletedRows),
  }
}
