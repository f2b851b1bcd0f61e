/**
 * Members: one row per (appid, openid), upserted on every inbound push so activity, the 48-hour
 * customer-service window and follow state are always current. Recording a member and claiming the
 * push's dedupe key are one statement, so a push costs one round trip before its handler runs.
 */
import { type Kysely, sql } from 'kysely'
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

/** True for ordinary messages: they open the 48-hour customer-service window. */
export function opensServiceWindow(m: InboundMessage): boolean {
  return m.type !== 'event' && m.type !== 'unknown'
}

/**
 * The database store: one statement per push (`quanzi_receive`, migrations/0007) claims the dedupe
 * key in `inbound_events`, upserts the member (`insert … on conflict do update`, so concurrent
 * pushes from one member never race) and, on the member's first action of the community day, awards
 * `daily_login` through the ledger (capped once a day, so racing pushes cannot pay twice). Follow
 * state changes only on subscribe, SCAN and unsubscribe; `last_active_at` moves on member actions only
 * (an unfollow or a system event is none: it must not count as a campaign conversion). With a replay claim, the overload of
 * migration 0019 claims (door, appid, timestamp, nonce) first, in the same statement, and for a
 * push claimed before returns that claim's status and stored reply (migration 0053): a retry is
 * answered from this one statement.
 */
export function databaseMemberStore(
  db: Kysely<Database>,
  options: { timeZone: string },
): MemberStore {
  return {
    async receive(claim, message, now) {
      const event = isEvent(message) ? message.event : null
      const follow =
        message.type === 'event' && (message.event === 'subscribe' || message.event === 'SCAN')
      const unfollow = event === 'unsubscribe'
      const subscribed =
        follow || (!unfollow && opensServiceWindow(message)) ? true : unfollow ? false : null
      const day = localDay(now, options.timeZone)
      const { rows } = await sql<{ r: RawReceive }>`select quanzi_receive(
        ${claim.appid}::text, ${claim.dedupeKey}::text, ${message.fromUserName}::text,
        ${claim.msgType}::text, ${claim.event}::text, ${now}::timestamptz,
        ${isMemberAction(message)}::boolean, ${opensServiceWindow(message)}::boolean,
        ${subscribed}::boolean, ${event === 'subscribe'}::boolean, ${unfollow}::boolean,
        ${follow}::boolean, ${follow ? message.scene : null}::text,
        ${follow ? message.eventKey : null}::text, ${isMemberAction(message)}::boolean,
        ${options.timeZone}::text, ${day}::date, ${weekStart(day)}::date, ${LEVELS_JSON}::jsonb${
          claim.replay
            ? sql`, ${claim.replay.door}::text, ${claim.replay.timestamp}::bigint,
        ${claim.replay.nonce}::text, ${claim.replay.digest}::text`
            : sql``
        }
      ) as r`.execute(db)
      const r = rows[0]!.r
      if (r.replayed) throw new ReplayRefusedError()
      if (!r.claimed)
        return {
          duplicate: true,
          outcome: r.status ? { status: r.status, reply: r.reply ?? null } : undefined,
        }
      return {
        ...memberFromJson(r.member),
        isNew: r.is_new,
        previous_active_at: r.previous_active_at ? new Date(r.previous_active_at) : null,
        dailyLogin: r.daily_login ? ledgerOutcome(r.daily_login) : null,
        moderator: r.moderator,
      }
    },
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

/** A members row from `to_jsonb(row)`: timestamps arrive as strings. */
export function memberFromJson(json: Record<string, unknown>): Member {
  const row: Record<string, unknown> = { ...json }
  for (const [key, value] of Object.entries(row))
    if (key.endsWith('_at') && typeof value === 'string') row[key] = new Date(value)
  return row as unknown as Member
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
