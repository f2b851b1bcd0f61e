/**
 * Members: one row per (appid, openid), upserted on every inbound push so activity, the 48-hour
 * customer-service window and follow state are always current.
 */
import { type Kysely, sql } from 'kysely'
import type { Database, Member } from '../db/schema.js'
import { type InboundMessage, isEvent } from '../wechat/message.js'
import { localDay } from './community-time.js'
import { awardRule, withMemberLocked } from './points-ledger.js'

/** Events WeChat sends about a member rather than from one: they are not member activity. */
const SYSTEM_EVENTS = new Set([
  'TEMPLATESENDJOBFINISH',
  'MASSSENDJOBFINISH',
  'subscribe_msg_sent_event',
])

/** A member after recording a push, with when they were last active before it (null if new). */
export type RecordedMember = Member & { previous_active_at: Date | null }

/** Records a push from a member; returns the member as it is afterwards. */
export interface MemberStore {
  recordInbound(appid: string, message: InboundMessage, now: Date): Promise<RecordedMember>
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
 * The database member store: a single `insert … on conflict do update`, so concurrent pushes from
 * one member never race. Follow state changes only on subscribe, SCAN and unsubscribe. The first
 * member action of a community day also earns the `daily_login` rule (capped once a day in the
 * ledger, so racing pushes cannot pay twice).
 */
export function databaseMemberStore(
  db: Kysely<Database>,
  options: { timeZone: string },
): MemberStore {
  return {
    async recordInbound(appid, message, now) {
      const member = await upsert(appid, message, now)
      const day = localDay(now, options.timeZone)
      const firstToday =
        !member.previous_active_at || localDay(member.previous_active_at, options.timeZone) !== day
      if (!isMemberAction(message) || !firstToday) return member
      const outcome = await withMemberLocked(db, member.id, (trx, locked) =>
        awardRule(trx, locked, {
          appid,
          memberId: member.id,
          rule: 'daily_login',
          idempotencyKey: `daily_login:${member.id}:${day}`,
          now,
          timeZone: options.timeZone,
        }),
      )
      if (outcome.status !== 'applied') return member
      return {
        ...member,
        points_balance: outcome.balance,
        points_lifetime: outcome.lifetime,
        level: outcome.level.key,
      }
    },
  }

  async function upsert(
    appid: string,
    message: InboundMessage,
    now: Date,
  ): Promise<RecordedMember> {
    const event = isEvent(message) ? message.event : null
    const active = !(event && SYSTEM_EVENTS.has(event))
    const follow =
      message.type === 'event' && (message.event === 'subscribe' || message.event === 'SCAN')
    const unfollow = event === 'unsubscribe'
    const scene = follow ? message.scene : null
    const eventKey = follow ? message.eventKey : null
    const inbound = opensServiceWindow(message) ? now : null
    const subscribed =
      follow || (!unfollow && opensServiceWindow(message)) ? true : unfollow ? false : null

    // `prev` reads the row as it was before this statement (same snapshot), in the same round trip.
    return db
      .with('prev', (qb) =>
        qb
          .selectFrom('members')
          .select('last_active_at')
          .where('appid', '=', appid)
          .where('openid', '=', message.fromUserName),
      )
      .insertInto('members')
      .values({
        appid,
        openid: message.fromUserName,
        subscribed: subscribed ?? false,
        subscribed_at: follow ? now : null,
        unsubscribed_at: unfollow ? now : null,
        subscribe_scene: scene,
        subscribe_event_key: eventKey,
        first_seen_at: now,
        last_active_at: active ? now : null,
        last_inbound_at: inbound,
      })
      .onConflict((oc) =>
        oc.columns(['appid', 'openid']).doUpdateSet((eb) => ({
          last_active_at: active ? now : eb.ref('members.last_active_at'),
          last_inbound_at: inbound ?? eb.ref('members.last_inbound_at'),
          subscribed: subscribed ?? eb.ref('members.subscribed'),
          subscribed_at: event === 'subscribe' ? now : eb.ref('members.subscribed_at'),
          unsubscribed_at: unfollow ? now : eb.ref('members.unsubscribed_at'),
          subscribe_scene: follow ? scene : eb.ref('members.subscribe_scene'),
          subscribe_event_key: follow ? eventKey : eb.ref('members.subscribe_event_key'),
        })),
      )
      .returningAll()
      .returning(sql<Date | null>`(select last_active_at from prev)`.as('previous_active_at'))
      .executeTakeFirstOrThrow()
  }
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
