/**
 * Members: one row per (appid, openid), upserted on every inbound push so activity, the 48-hour
 * customer-service window and follow state are always current. Recording a member and claiming the
 * push's dedupe key are one statement, so a push costs at most one round trip before its handler
 * runs (concurrent pushes share one).
 */
import { type Kysely, type RawBuilder, sql } from 'kysely'
import { type Local, scopedBatcher } from '../db/batcher.js'
import type { Database, InboundStatus, Member } from '../db/schema.js'
import { type InboundMessage, isEvent } from '../wechat/message.js'
import { localDay, weekStart } from './community-time.js'
import { type InboundOutcome, type ReplayClaim, ReplayRefusedError } from './inbound-events.js'
import {
  LEVELS_JSON,
  type LedgerOutcome,
  ledgerOutcome,
  type RawLedgerOutcome,
} from './points-ledger.js'

/** Events WeChat sends about a member rather than from one: they are not member activity. */
const SYSTEM_EVENTS = new Set([
  'TEMPLATESENDJOBFINISH',
  'MASSSENDJOBFINISH',
  'subscribe_msg_sent_event',
])

/**
 * A member after recording a push: whether the push created them, when they were last active before
 * it (null if new) and the day's `daily_login` award when this push earned it.
 */
export type RecordedMember = Member & {
  /** True when this push created the member: they were never seen before. */
  isNew: boolean
  previous_active_at: Date | null
  dailyLogin: LedgerOutcome | null
  /**
   * Whether the sender is an official-account moderator (scope `*`), when the claim statement read
   * it (the database store, with a replay stamp); undefined otherwise.
   */
  moderator?: boolean
}

/**
 * A push claimed before: WeChat's retry, or the same push at another instance. `outcome` is that
 * claim's status and stored reply when the claim statement read them (the database store does);
 * undefined when the store does not know (read it then).
 */
export interface DuplicatePush {
  duplicate: true
  outcome?: InboundOutcome
}

/** True when {@link MemberStore.receive} found the push claimed before. */
export const isDuplicate = (r: RecordedMember | DuplicatePush): r is DuplicatePush =>
  'duplicate' in r

/** The push being claimed: its dedupe key and what the inbound ledger records of it. */
export interface PushClaim {
  appid: string
  dedupeKey: string
  msgType: string
  event: string | null
  /** The request's replay-cache claim, made in the same statement; a conflict throws. */
  replay?: ReplayClaim
}

/**
 * Receives a push: claims its dedupe key and, when this caller won the claim, records the member.
 * A {@link DuplicatePush} when the push was claimed before (a retry or another instance). Throws
 * {@link ReplayRefusedError}, having claimed nothing, when the claim's replay stamp was used before
 * with another body.
 */
export interface MemberStore {
  receive(
    claim: PushClaim,
    message: InboundMessage,
    now: Date,
  ): Promise<RecordedMember | DuplicatePush>
}

/** True for pushes that are the member doing something (not receipts, not leaving). */
export function isMemberAction(m: InboundMessage): boolean {
  const event = isEvent(m) ? m.event : null
  return !(event && (SYSTEM_EVENTS.has(event) || event === 'unsubscribe'))
}

/**
 * True for ordinary messages: they open the 48-hour customer-service window. No event does, typed
 * or not (a menu scan, a mass-send result): a follow, a scan or a click opens a 1-minute window,
 * read from the push's claim (cs-window.ts).
 */
export function opensServiceWindow(m: InboundMessage): boolean {
  return !isEvent(m) && m.type !== 'unknown'
}

/**
 * The fewest pushes a claim statement claims set-based (`quanzi_receive_batch`, migrations/0094);
 * a smaller batch calls `quanzi_receive` once per push. Below it the set-based statements cost
 * more to start than they save (callgrind, instructions a push set-based ÷ per push, new members
 * and returning ones: 4 pushes 1.01 and 1.12, 8: 0.91 and 0.97, 16: 0.87 and 0.89; on the same
 * tables once vacuumed, with the member keys of the final function, 8: 0.91 and 1.10, 16: 0.87 and
 * 1.01 — new members gain, returning ones do not: bench/README.md, session 48).
 */
export const SET_BASED_CLAIMS = 8

/** Most pushes one claim statement takes (bounds the member locks it holds at once). */
export const CLAIMS_PER_STATEMENT = 32

/**
 * The database store: one statement claims the dedupe key in `inbound_events`, upserts the member
 * (`insert … on conflict do update`, so concurrent pushes from one member never race) and, on the
 * member's first action of the community day, awards `daily_login` through the ledger (capped once a
 * day, so racing pushes cannot pay twice): `quanzi_receive`, migrations/0007. Follow state changes
 * only on subscribe, SCAN and unsubscribe; `last_active_at` moves on member actions only (an unfollow
 * or a system event is none: it must not count as a campaign conversion). With a replay claim, the
 * overload of migration 0019 claims (door, appid, timestamp, nonce) first, in the same statement,
 * and for a push claimed before returns that claim's status and stored reply (migration 0053): a
 * retry is answered from this one statement.
 *
 * Pushes are claimed in batches, like replies (`scopedBatcher`): while one claim statement is in
 * flight, the pushes that arrive meanwhile go together in the next one: from
 * {@link SET_BASED_CLAIMS} pushes claimed set-based by `quanzi_receive_batch` (migrations/0094),
 * below one `quanzi_receive` call per push (see {@link receiveAll}). Each push keeps the single
 * call's guarantees: the unique dedupe key decides who claims it, also when it comes twice in one
 * batch (the second call sees the first's row, as a concurrent duplicate does once the first
 * commits); a replay refuses its own push only; a batch that fails runs each push again alone. `local` (Workers: `scopes.local`)
 * keeps the pushes of different requests out of one batch.
 *
 * A batch holds its members' row locks until its statement ends. So that one member locked
 * elsewhere (a job's transaction, a campaign's cap update) holds up only its own batch, up to
 * `lanes` claim statements run at once (PostgreSQL; PGlite has one connection: 1), and a batch
 * takes at most {@link CLAIMS_PER_STATEMENT} pushes. Batches lock members in one order, so two
 * batches of members that exist already do not deadlock each other. Some can, and PostgreSQL then
 * aborts one side after `deadlock_timeout` (1 s): a batch runs each push again alone, a job's run
 * fails and is tried again by the runner. They are: a job's transaction that locks several
 * members in another order; a push and its retry batched with other members' pushes (the dedupe
 * claim is taken before the member lock, by the set-based function for every push of its batch
 * first); and a set-based batch against a per-push one that creates one of its members (the
 * function locks the members its snapshot saw, then inserts the others). Two set-based batches
 * first take their members' keys in order (advisory locks), so they do not.
 */
export function databaseMemberStore(
  db: Kysely<Database>,
  options: { timeZone: string; local?: Local; lanes?: number },
): MemberStore {
  const claims = scopedBatcher(
    (batch: Receipt[]) => receiveAll(db, options.timeZone, batch),
    options.local,
    { lanes: options.lanes ?? 1, max: CLAIMS_PER_STATEMENT },
  )
  return {
    async receive(claim, message, now) {
      const r = await claims({ claim, message, now })
      if (r.replayed) throw new ReplayRefusedError()
      if (!r.claimed)
        return {
          duplicate: true,
          outcome: r.status ? { status: r.status, reply: r.reply ?? null } : undefined,
        }
      return Object.assign(memberFromJson(r.member), {
        isNew: r.is_new,
        previous_active_at: r.previous_active_at ? new Date(r.previous_active_at) : null,
        dailyLogin: r.daily_login ? ledgerOutcome(r.daily_login) : null,
        moderator: r.moderator,
      })
    },
  }
}

/** One push to receive. */
interface Receipt {
  claim: PushClaim
  message: InboundMessage
  now: Date
}

/** The order claims take their locks in (see {@link receiveAll}). */
const lockOrder = (r: Receipt) =>
  `${r.claim.appid}\u0000${r.message.fromUserName}\u0000${r.claim.dedupeKey}`

/**
 * Receives a batch of pushes in one statement: from {@link SET_BASED_CLAIMS} pushes,
 * `quanzi_receive_batch` (migrations/0094), which does what `quanzi_receive` does for each push,
 * set-based; below, `quanzi_receive` once per push. The pushes are given in the order of
 * (appid, openid, dedupe key), which every process uses: the per-push calls take their locks in
 * that order, and so does each stage of the set-based function (replay stamps, dedupe claims,
 * members it saw, members it inserts), so two batches that share members mostly wait on each
 * other rather than deadlock; where they can still cross, see {@link databaseMemberStore}:
 * PostgreSQL then aborts one statement as a deadlock and the batcher runs its pushes again one by
 * one. A batch of one is the plain `quanzi_receive` call.
 */
async function receiveAll(
  db: Kysely<Database>,
  timeZone: string,
  batch: Receipt[],
): Promise<RawReceive[]> {
  if (batch.length === 1) {
    const a = receiveArgs(batch[0]!, timeZone)
    const value = (name: keyof ReceiveArgs) => sql`${a[name]}::${sql.raw(TYPES[name])}`
    const { rows } = await sql<{ r: RawReceive }>`select ${receiveCall(
      value,
      timeZone,
      a.door !== null,
    )} as r`.execute(db)
    return [rows[0]!.r]
  }
  const keys = batch.map(lockOrder)
  const order = batch
    .map((_, i) => i)
    .sort((a, b) => (keys[a]! < keys[b]! ? -1 : keys[a]! > keys[b]! ? 1 : 0))
  const args = order.map((i) => receiveArgs(batch[i]!, timeZone))
  const arrays = (names: readonly (keyof ReceiveArgs)[]) =>
    sql.join(names.map((n) => sql`${args.map((a) => a[n])}::${sql.raw(TYPES[n])}[]`))
  const names = Object.keys(TYPES) as (keyof ReceiveArgs)[]
  const column = (name: keyof ReceiveArgs) => sql.ref(`v.${name}`)
  const { rows } =
    batch.length < SET_BASED_CLAIMS
      ? await sql<{ n: string | number; outcome: RawReceive }>`select v.n, case
          when v.door is null then ${receiveCall(column, timeZone, false)}
          else ${receiveCall(column, timeZone, true)} end as outcome
          from unnest(${arrays(names)})
            with ordinality as v(${sql.join(names.map((n) => sql.id(n)))}, n)`.execute(db)
      : await sql<{ n: string | number; outcome: RawReceive }>`select n, outcome
          from quanzi_receive_batch(${arrays(BATCH_ARGS)}, ${timeZone}::text,
            ${LEVELS_JSON}::jsonb)`.execute(db)
  const results: RawReceive[] = []
  for (const row of rows) results[order[Number(row.n) - 1]!] = row.outcome
  return results
}

/**
 * A `quanzi_receive` call taking each push argument from `arg`; with `replay`, the overload of
 * migration 0019 (the replay claim first).
 */
const receiveCall = (
  arg: (name: keyof ReceiveArgs) => RawBuilder<unknown>,
  timeZone: string,
  replay: boolean,
) =>
  sql`quanzi_receive(${sql.join(PUSH_ARGS.map(arg))}, ${timeZone}::text, ${arg('day')},
    ${arg('week_start')}, ${LEVELS_JSON}::jsonb${replay ? sql`, ${sql.join(REPLAY_ARGS.map(arg))}` : sql``})`

/** `quanzi_receive`'s arguments up to `p_daily_login` (a member action earns it), in order. */
const PUSH_ARGS = [
  'appid',
  'dedupe_key',
  'openid',
  'msg_type',
  'event',
  'now',
  'active',
  'inbound',
  'subscribed',
  'subscribe',
  'unsubscribe',
  'follow',
  'scene',
  'event_key',
  'active',
] as const satisfies readonly (keyof ReceiveArgs)[]
const REPLAY_ARGS = ['door', 'ts', 'nonce', 'digest'] as const
/** `quanzi_receive_batch`'s per-push arrays (migrations/0094), in order. */
const BATCH_ARGS = [...PUSH_ARGS, 'day', 'week_start', ...REPLAY_ARGS] as const

/** Each push argument's SQL type. */
const TYPES: Record<keyof ReceiveArgs, string> = {
  appid: 'text',
  dedupe_key: 'text',
  openid: 'text',
  msg_type: 'text',
  event: 'text',
  now: 'timestamptz',
  active: 'boolean',
  inbound: 'boolean',
  subscribed: 'boolean',
  subscribe: 'boolean',
  unsubscribe: 'boolean',
  follow: 'boolean',
  scene: 'text',
  event_key: 'text',
  day: 'date',
  week_start: 'date',
  door: 'text',
  ts: 'bigint',
  nonce: 'text',
  digest: 'text',
}

/** One push's arguments to `quanzi_receive` (the batch's time zone and levels aside). */
type ReceiveArgs = ReturnType<typeof receiveArgs>

function receiveArgs({ claim, message, now }: Receipt, timeZone: string) {
  const event = isEvent(message) ? message.event : null
  const follow =
    message.type === 'event' && (message.event === 'subscribe' || message.event === 'SCAN')
  const unfollow = event === 'unsubscribe'
  const inbound = opensServiceWindow(message)
  const day = localDay(now, timeZone)
  return {
    appid: claim.appid,
    dedupe_key: claim.dedupeKey,
    openid: message.fromUserName,
    msg_type: claim.msgType,
    event: claim.event,
    now: now.toISOString(),
    // A member action is active and earns the day's daily_login.
    active: isMemberAction(message),
    inbound,
    subscribed: follow || (!unfollow && inbound) ? true : unfollow ? false : null,
    subscribe: event === 'subscribe',
    unsubscribe: unfollow,
    follow,
    scene: follow ? message.scene : null,
    event_key: follow ? message.eventKey : null,
    day,
    week_start: weekStart(day),
    door: claim.replay?.door ?? null,
    ts: claim.replay?.timestamp ?? null,
    nonce: claim.replay?.nonce ?? null,
    digest: claim.replay?.digest ?? null,
  }
}

interface RawReceive {
  claimed: boolean
  replayed?: boolean
  /** A push claimed before, with a replay stamp (migration 0053): the claim's outcome. */
  status?: InboundStatus
  reply?: string | null
  member: Record<string, unknown>
  is_new: boolean
  previous_active_at: string | null
  daily_login: RawLedgerOutcome | null
  /** With a replay stamp (migration 0053): the sender is an OA moderator. */
  moderator?: boolean
}

/**
 * A members row from `to_jsonb(row)`, parsed: its timestamps arrive as strings and are turned into
 * Dates **in place** (the parsed object is the statement's own, used once). Not a copy: an object
 * filled key by key from `{}` holds its 24 properties in V8's dictionary mode (slow to make and to
 * read; `{ ...json }` then overwritten takes Node 20's slow path instead: bench/README.md, "Object
 * spread"), while the object JSON.parse made keeps a fast shape, also with the received member's
 * four fields added after it (session 39).
 */
export function memberFromJson(json: Record<string, unknown>): Member {
  for (const key of Object.keys(json)) {
    const value = json[key]
    if (typeof value === 'string' && key.endsWith('_at')) json[key] = new Date(value)
  }
  return json as unknown as Member
}

/** Finds a member by account and openid. */
export function findMember(db: Kysely<Database>, appid: string, openid: string) {
  return db
    .selectFrom('members')
    .selectAll()
    .where('appid', '=', appid)
    .where('openid', '=', openid)
    .executeTakeFirst()
}
