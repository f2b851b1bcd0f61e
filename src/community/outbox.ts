/**
 * The push outbox: every outbound message is a row, unique per (appid, source, openid), so a push is
 * never enqueued twice. Dispatchers in any number of processes claim due rows with
 * `FOR UPDATE SKIP LOCKED` and a lease (a crashed claim is picked up again when the lease runs out),
 * check reachability, take tokens from the account's shared bucket, send, and store one result per
 * item: sent (with WeChat's msgid), skipped (with the errcode that closed the channel) or failed.
 * Template messages carry `client_msg_id = qz<id>`, so WeChat also drops a repeat after a crash.
 */
import { type Kysely, sql } from 'kysely'
import type { Clock } from '../clock.js'
import type { Database, OutboxItem, OutboxKind, OutboxLane } from '../db/schema.js'
import type { Logger } from '../logger.js'
import type { ApiClient } from '../wechat/api/client.js'
import { isTransient, WechatApiError, WechatValidationError } from '../wechat/api/errors.js'
import {
  type CustomMessage,
  sendCustomMessage,
  sendSubscribeMessage,
  sendTemplateMessage,
} from '../wechat/api/messages.js'
import { nextLocalMidnight } from './community-time.js'
import { type RateLimit, takeFromBucket } from './rate-buckets.js'
import { isReachabilityError, loadReachability, recordUnreachable } from './reachability.js'

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
}

/** Enqueues messages; duplicates of (appid, source, openid) are ignored. Returns how many were new. */
export async function enqueue(
  db: Kysely<Database>,
  messages: OutboxMessage[],
  now: Date,
): Promise<number> {
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
          next_attempt_at: m.notBefore ?? now,
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
 * Holds the pending items whose source starts with `prefix` (a paused campaign:
 * `campaign:<id>:`): they are not sent until {@link releaseSource}. Items in a claim being sent
 * now finish (pausing takes effect within one batch). Returns how many were held.
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

/** Cancels pending and held items (a stopped or deleted campaign). Returns how many. */
export async function cancelSource(db: Kysely<Database>, appid: string, prefix: string, now: Date) {
  const rows = await db
    .updateTable('push_outbox')
    .set({ status: 'cancelled', errmsg: 'cancelled', next_attempt_at: now })
    .where('appid', '=', appid)
    .where('status', 'in', ['pending', 'held'])
    .where('source', 'like', `${likeEscape(prefix)}%`)
    .returning('id')
    .execute()
  return rows.length
}

const likeEscape = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`)

/** The `client_msg_id` of an item: stable across retries and crashes. */
export const clientMsgId = (item: { id: number }) => `qz${item.id}`

/** Rate limit per account: a token bucket shared through the database (rate-buckets.ts). */
export type { RateLimit } from './rate-buckets.js'

/**
 * Takes up to `want` tokens from the account's bucket; returns how many were granted (0 while the
 * account is paused by a quota error). One row lock per call.
 */
export async function takeTokens(
  db: Kysely<Database>,
  appid: string,
  want: number,
  rate: RateLimit,
  now: Date,
): Promise<number> {
  return (await takeFromBucket(db, appid, want, rate, now)).granted
}

/** Pauses an account's sends until `until` (a 45009 quota error pauses until the next local day). */
export async function pauseAccount(db: Kysely<Database>, appid: string, until: Date, now: Date) {
  await db
    .insertInto('rate_buckets')
    .values({ appid, tokens: 0, updated_at: now, paused_until: until })
    .onConflict((oc) => oc.column('appid').doUpdateSet({ paused_until: until }))
    .execute()
}

/** Claims up to `limit` due items (pending, or sending with an expired lease) for `leaseMs`. */
export async function claim(
  db: Kysely<Database>,
  appid: string,
  limit: number,
  lease: Date,
  now: Date,
): Promise<OutboxItem[]> {
  if (limit <= 0) return []
  return db
    .updateTable('push_outbox')
    .set((eb) => ({ status: 'sending', next_attempt_at: lease, attempts: eb('attempts', '+', 1) }))
    .where(
      'id',
      'in',
      dueIds(db, appid, now).orderBy('next_attempt_at').limit(limit).forUpdate().skipLocked(),
    )
    .returningAll()
    .execute()
}

/** Ids of due items: pending and due, or sending with an expired lease. */
function dueIds(db: Kysely<Database>, appid: string, now: Date) {
  return db
    .selectFrom('push_outbox')
    .select('id')
    .where('appid', '=', appid)
    .where('status', 'in', ['pending', 'sending'])
    .where('next_attempt_at', '<=', now)
}

/** Whether anything is due: a cheap index probe so idle workers take no locks. */
async function hasDue(db: Kysely<Database>, appid: string, now: Date): Promise<boolean> {
  return (await dueIds(db, appid, now).limit(1).executeTakeFirst()) !== undefined
}

/** What happened to one item. */
export type ItemResult =
  | { id: number; status: 'sent'; msgid: string | null }
  | { id: number; status: 'skipped'; errcode: number; errmsg: string }
  | { id: number; status: 'failed'; errcode: number | null; errmsg: string }
  | { id: number; status: 'retry'; errcode: number | null; errmsg: string; at: Date }
  | { id: number; status: 'released'; at: Date }

/** Counts of one drain. */
export interface DrainSummary {
  sent: number
  skipped: number
  failed: number
  retried: number
  /** True when a 45009 quota error paused the account. */
  paused: boolean
}

/** What a dispatcher needs. */
export interface DispatcherOptions {
  db: Kysely<Database>
  api: ApiClient
  appid: string
  clock: Clock
  logger: Logger
  timeZone: string
  rate: RateLimit
  batchSize?: number
  concurrency?: number
  leaseMs?: number
  maxAttempts?: number
  /** Stop after this many batches (default: until nothing is due). */
  maxBatches?: number
}

async function send(api: ApiClient, item: OutboxItem): Promise<string | null> {
  const payload = JSON.parse(item.payload)
  switch (item.kind) {
    case 'template':
      return sendTemplateMessage(api, {
        ...payload,
        touser: item.openid,
        client_msg_id: clientMsgId(item),
      })
    case 'custom':
      await sendCustomMessage(api, item.openid, payload as CustomMessage)
      return null
    case 'subscribe':
      await sendSubscribeMessage(api, { ...payload, touser: item.openid })
      return null
  }
}

/** Retry delay after `attempts` tries: 30 s, 1 min, 2 min … capped at 1 h. */
export const retryDelayMs = (attempts: number) =>
  Math.min(3600_000, 30_000 * 2 ** Math.max(0, attempts - 1))

/**
 * Sends due items until none is due (or `maxBatches`). Never throws for an item: every outcome is
 * stored on its row.
 */
export async function drainOutbox(o: DispatcherOptions): Promise<DrainSummary> {
  const batchSize = o.batchSize ?? 200
  const concurrency = o.concurrency ?? 16
  const leaseMs = o.leaseMs ?? 60_000
  const maxAttempts = o.maxAttempts ?? 8
  const summary: DrainSummary = { sent: 0, skipped: 0, failed: 0, retried: 0, paused: false }

  if (!(await hasDue(o.db, o.appid, o.clock.now()))) return summary
  for (let batch = 0; o.maxBatches === undefined || batch < o.maxBatches; batch++) {
    const now = o.clock.now()
    const granted = await takeTokens(o.db, o.appid, batchSize, o.rate, now)
    if (granted === 0) break
    const lease = new Date(now.getTime() + leaseMs)
    const items = await claim(o.db, o.appid, granted, lease, now)
    if (items.length === 0) break
    const reachable = await loadReachability(
      o.db,
      o.appid,
      items.map((i) => i.openid),
      now,
    )
    let pausedUntil: Date | undefined

    const results: ItemResult[] = []
    let next = 0
    const worker = async () => {
      while (next < items.length) {
        const item = items[next++]!
        if (pausedUntil) {
          results.push({ id: item.id, status: 'released', at: pausedUntil })
          continue
        }
        const scope = item.kind === 'subscribe' ? JSON.parse(item.payload).template_id : undefined
        const closed = reachable(item.openid, item.kind, scope)
        if (closed) {
          results.push({
            id: item.id,
            status: 'skipped',
            errcode: closed.errcode,
            errmsg: closed.reason,
          })
          continue
        }
        try {
          results.push({ id: item.id, status: 'sent', msgid: await send(o.api, item) })
        } catch (error) {
          results.push(
            await classify(o, item, error, scope, maxAttempts, (until) => (pausedUntil ??= until)),
          )
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker))
    await store(o.db, results, lease, o.clock.now())

    for (const r of results) {
      if (r.status === 'sent') summary.sent++
      else if (r.status === 'skipped') summary.skipped++
      else if (r.status === 'failed') summary.failed++
      else if (r.status === 'retry') summary.retried++
    }
    if (pausedUntil) {
      await pauseAccount(o.db, o.appid, pausedUntil, o.clock.now())
      o.logger.warn('outbox paused by quota', { appid: o.appid, until: pausedUntil.toISOString() })
      summary.paused = true
      break
    }
  }
  return summary
}

async function classify(
  o: DispatcherOptions,
  item: OutboxItem,
  error: unknown,
  scope: string | undefined,
  maxAttempts: number,
  pause: (until: Date) => Date,
): Promise<ItemResult> {
  const now = o.clock.now()
  if (error instanceof WechatApiError) {
    if (error.errcode === 45009) {
      return { id: item.id, status: 'released', at: pause(nextLocalMidnight(now, o.timeZone)) }
    }
    if (isReachabilityError(error.errcode)) {
      await recordUnreachable(o.db, {
        appid: o.appid,
        openid: item.openid,
        errcode: error.errcode,
        scope,
        now,
      })
      return { id: item.id, status: 'skipped', errcode: error.errcode, errmsg: error.errmsg }
    }
  }
  if (error instanceof WechatValidationError) {
    return { id: item.id, status: 'failed', errcode: null, errmsg: error.message }
  }
  const errcode = error instanceof WechatApiError ? error.errcode : null
  const errmsg = error instanceof Error ? error.message : String(error)
  if ((isTransient(error) || errcode === 45011) && item.attempts < maxAttempts) {
    return {
      id: item.id,
      status: 'retry',
      errcode,
      errmsg,
      at: new Date(now.getTime() + retryDelayMs(item.attempts)),
    }
  }
  o.logger.warn('outbox item failed', { appid: o.appid, id: item.id, errcode, reason: errmsg })
  return { id: item.id, status: 'failed', errcode, errmsg }
}

/** Writes a batch's results in one statement, only for rows this claim still holds. */
async function store(db: Kysely<Database>, results: ItemResult[], lease: Date, now: Date) {
  if (results.length === 0) return
  const rows = results.map((r) => {
    const status = r.status === 'retry' || r.status === 'released' ? 'pending' : r.status
    const errcode = 'errcode' in r ? r.errcode : null
    const errmsg = 'errmsg' in r ? r.errmsg.slice(0, 500) : null
    const msgid = r.status === 'sent' ? r.msgid : null
    const at = 'at' in r ? r.at : now
    const untried = r.status === 'released' ? 1 : 0
    return sql`(${r.id}::bigint, ${status}::text, ${errcode}::integer, ${errmsg}::text, ${msgid}::text, ${at}::timestamptz, ${untried}::integer)`
  })
  await sql`
    update push_outbox as o set
      status = v.status,
      errcode = v.errcode,
      errmsg = v.errmsg,
      wechat_msgid = coalesce(v.msgid, o.wechat_msgid),
      next_attempt_at = v.at,
      attempts = o.attempts - v.untried,
      sent_at = case when v.status = 'sent' then ${now}::timestamptz else o.sent_at end
    from (values ${sql.join(rows)}) as v(id, status, errcode, errmsg, msgid, at, untried)
    where o.id = v.id and o.status = 'sending' and o.next_attempt_at = ${lease}::timestamptz
  `.execute(db)
}

/** Records a TEMPLATESENDJOBFINISH receipt on the item that sent it. */
export async function recordDelivery(
  db: Kysely<Database>,
  appid: string,
  msgid: string,
  status: string,
  now: Date,
): Promise<boolean> {
  const row = await db
    .updateTable('push_outbox')
    .set({ delivery: status, delivered_at: now })
    .where('appid', '=', appid)
    .where('wechat_msgid', '=', msgid)
    .returning('id')
    .executeTakeFirst()
  return row !== undefined
}
