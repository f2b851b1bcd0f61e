/** Table types for Kysely. Timestamps are `timestamptz`; ids are int8 parsed as numbers on both drivers. */
import type { ColumnType, Generated, Insertable, Selectable } from 'kysely'

type Timestamp = ColumnType<Date, Date | string, Date | string>

/** A follower of an account (one row per appid × openid). */
export interface MembersTable {
  id: Generated<number>
  appid: string
  openid: string
  unionid: string | null
  subscribed: Generated<boolean>
  subscribed_at: Timestamp | null
  unsubscribed_at: Timestamp | null
  /** Normalised QR scene of the last follow or scan (`qrscene_` stripped). */
  subscribe_scene: string | null
  /** The raw EventKey of the last subscribe/SCAN event. */
  subscribe_event_key: string | null
  first_seen_at: Timestamp
  /** Any inbound push from the member (messages and events). */
  last_active_at: Timestamp
  /** The last message the member sent; opens the 48-hour customer-service window. */
  last_inbound_at: Timestamp | null
}

/** Status of an inbound push: see `src/community/inbound-events.ts`. */
export type InboundStatus = 'processing' | 'replied' | 'deferred' | 'follow_up' | 'failed'

/** One claimed inbound push; the primary key is the dedupe key. */
export interface InboundEventsTable {
  appid: string
  dedupe_key: string
  openid: string
  msg_type: string
  event: string | null
  status: InboundStatus
  /** The plaintext reply body sent (XML or JSON); null = `success`. Retries get it again. */
  reply: string | null
  /** A reply produced after the deadline, as JSON, for a customer-service follow-up. */
  follow_up: string | null
  error: string | null
  received_at: Timestamp
  completed_at: Timestamp | null
}

/** The database as Kysely sees it. */
export interface Database {
  members: MembersTable
  inbound_events: InboundEventsTable
}

export type Member = Selectable<MembersTable>
export type NewMember = Insertable<MembersTable>
export type InboundEvent = Selectable<InboundEventsTable>
