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

/** The shared access token of one account. */
export interface WechatTokensTable {
  appid: string
  access_token: string
  expires_at: Timestamp
  updated_at: Timestamp
}

/** A channel the API said is closed for a member; see `src/community/reachability.ts`. */
export interface MemberReachabilityTable {
  appid: string
  openid: string
  channel: 'template' | 'custom' | 'subscribe' | 'any'
  /** The template id for subscribe messages, else ''. */
  scope: Generated<string>
  errcode: number
  recorded_at: Timestamp
}

export type OutboxKind = 'template' | 'custom' | 'subscribe'
export type OutboxStatus = 'pending' | 'sending' | 'sent' | 'failed' | 'skipped'

/** One message to send, unique per (appid, source, openid). */
export interface PushOutboxTable {
  id: Generated<number>
  appid: string
  source: string
  openid: string
  kind: OutboxKind
  /** The API body as JSON, without `touser` (and without `client_msg_id`, derived from the id). */
  payload: string
  status: Generated<OutboxStatus>
  attempts: Generated<number>
  next_attempt_at: Timestamp
  lease_until: Timestamp | null
  errcode: number | null
  errmsg: string | null
  wechat_msgid: string | null
  /** TEMPLATESENDJOBFINISH Status: `success`, `failed:user block`, `failed: system failed` … */
  delivery: string | null
  created_at: Timestamp
  sent_at: Timestamp | null
  delivered_at: Timestamp | null
}

/** A token bucket shared by every process sending for one account. */
export interface RateBucketsTable {
  appid: string
  tokens: number
  updated_at: Timestamp
  /** Set by a 45009 quota error: no sends for this account until then. */
  paused_until: Timestamp | null
}

/** The database as Kysely sees it. */
export interface Database {
  members: MembersTable
  inbound_events: InboundEventsTable
  wechat_tokens: WechatTokensTable
  member_reachability: MemberReachabilityTable
  push_outbox: PushOutboxTable
  rate_buckets: RateBucketsTable
}

export type OutboxItem = Selectable<PushOutboxTable>

export type Member = Selectable<MembersTable>
export type NewMember = Insertable<MembersTable>
export type InboundEvent = Selectable<InboundEventsTable>
