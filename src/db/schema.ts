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
  /** The member's last action (messages and events they caused; not receipts). Null until one. */
  last_active_at: Timestamp | null
  /** The last message the member sent; opens the 48-hour customer-service window. */
  last_inbound_at: Timestamp | null
  /**
   * Cached Σ of the `available` ledger deltas; never negative. Changes only with a ledger entry, in
   * its transaction.
   */
  points_balance: Generated<number>
  /** Σ positive (earned) deltas, never reduced by spending: levels are computed from it. */
  points_lifetime: Generated<number>
  /**
   * Cached Σ of the `frozen` ledger entries: points a purchase earned that wait for its refund window
   * (待到账); not spendable and not counted for levels until released. Never negative.
   */
  points_frozen: Generated<number>
  level: Generated<string>
  /** Paid shop orders, and the last one (segments). */
  purchase_count: Generated<number>
  last_purchased_at: Timestamp | null
  /** 退订 / TD: no campaign pushes; 订阅 undoes it. */
  marketing_opt_out: Generated<boolean>
  /**
   * When the member last opted out (migrations/0067; kept on opt-in), not earlier than their
   * activity then: activity up to it — the 退订 itself — is no campaign or journey conversion.
   */
  marketing_opted_out_at: Timestamp | null
  /** The last campaign push enqueued for the member (the frequency cap). */
  last_campaign_at: Timestamp | null
  /** The name the member chose (`昵称`): 1–16 characters, one line; null = shown by a tag. */
  display_name: string | null
  /** Profile (资料, migrations/0046): birthday month 1–12 and city, for `complete_profile`. */
  birth_month: number | null
  city: string | null
}

export type Segment = 'new' | 'active' | 'loyal' | 'at_risk' | 'dormant' | 'churned'

/**
 * A member's lifecycle segment (recomputed nightly) and since when the member is in it; no row until
 * the first recompute. Kept out of `members` so that moving members rewrites narrow rows only.
 */
export interface MemberSegmentsTable {
  member_id: number
  appid: string
  segment: Segment
  since: Timestamp
}

/** One lifecycle segment change, written by the recompute that made it (append-only). */
export interface SegmentTransitionsTable {
  id: Generated<number>
  appid: string
  member_id: number
  /** Null on the member's first segment. */
  from_segment: Segment | null
  to_segment: Segment
  at: Timestamp
}

/** A points rule; appid '*' holds the defaults, an account row overrides one. */
export interface PointRulesTable {
  appid: string
  rule: string
  points: number
  cap_count: number | null
  cap_period: 'day' | 'week' | 'ever' | null
  enabled: Generated<boolean>
}

/** One append-only ledger entry. */
export interface PointsLedgerTable {
  id: Generated<number>
  appid: string
  member_id: number
  delta: number
  rule: string
  reference: string | null
  idempotency_key: string
  balance_after: number
  /** What the entry added to lifetime earnings: the delta for awards and grants, 0 for spends and refunds. */
  earned: Generated<number>
  /** The community day of the entry (for caps and reports), `YYYY-MM-DD`. Compare it with text; read it
   * as `day::text` (pg is set to return text, PGlite returns a Date). */
  day: ColumnType<string, string, string>
  created_at: Timestamp
  expires_at: Timestamp | null
  /**
   * `available` entries sum to `members.points_balance`, `frozen` ones to `members.points_frozen`
   * (their `balance_after` is the frozen balance). A release is a frozen − and an available +.
   */
  state: Generated<LedgerState>
}

export type LedgerState = 'available' | 'frozen'

/**
 * One available credit as a lot (migrations/0043): spends take from the oldest lots first, the
 * `expire-points` job expires what is left. Per member, Σ `remaining` = `members.points_balance`.
 */
export interface PointsLotsTable {
  /** The positive ledger entry that credited the lot. */
  ledger_id: number
  appid: string
  member_id: number
  points: number
  remaining: number
  expired: Generated<number>
  earned_at: Timestamp
  /** Null until the job applies the policy; `infinity` (never) is not read into JavaScript. */
  expires_at: Timestamp | null
  /** Whether the member was told about the lot's expiry. */
  notified: Generated<boolean>
}

/** One check-in per member per community day. */
export interface CheckinsTable {
  member_id: number
  day: ColumnType<string, string, string>
  appid: string
  streak: number
  points: number
  created_at: Timestamp
  /** Set when a make-up (补签) filled the day; null for a check-in made on the day. */
  made_up_at: Timestamp | null
}

/** A member's check-in reminder (migration 0044): when, and the subscribe-message sends left. */
export interface CheckinRemindersTable {
  member_id: number
  appid: string
  enabled: Generated<boolean>
  /** Community minutes after midnight. */
  minute_of_day: number
  /** When the reminder is next due (moved on by the job as it decides each day). */
  next_at: Timestamp
  /** The community day of the last reminder enqueued. */
  reminded_on: ColumnType<string | null, string | null | undefined, string | null>
  oa_template_id: string | null
  oa_credits: Generated<number>
  mp_openid: string | null
  mp_template_id: string | null
  mp_credits: Generated<number>
  /** When the last mini-program credit was granted (migration 0055; null: before it). */
  mp_granted_at: Timestamp | null
  /**
   * The member turned reminders off themself (取消提醒; migration 0080): the community's 09:00
   * reminder skips them too. Never with `enabled`.
   */
  cancelled: Generated<boolean>
  created_at: Timestamp
  updated_at: Timestamp
}

/** A badge rule; appid '*' holds the defaults, an account row with the same key overrides one. */
export interface BadgeRulesTable {
  appid: string
  key: string
  name: string
  description: Generated<string>
  /** A predicate over counters (src/community/badges.ts `BadgePredicate`), validated on write. */
  predicate: ColumnType<unknown, string, string>
  enabled: Generated<boolean>
  /** Where the badge shows in lists (ascending). */
  position: Generated<number>
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>
}

/** A badge a member holds: the primary key (member_id, badge_key) awards it once. */
export interface MemberBadgesTable {
  member_id: number
  badge_key: string
  appid: string
  awarded_at: Timestamp
}

/** Status of an inbound push: see `src/community/inbound-events.ts`. */
export type InboundStatus = 'processing' | 'replied' | 'deferred' | 'follow_up' | 'failed'

/** One claimed inbound push; the primary key is the dedupe key. */
export interface InboundEventsTable {
  appid: string
  dedupe_key: string
  openid: string
  msg_type: string
  /**
   * A push's event (`subscribe`, `CLICK` …), null for a message; for an event its sender names with
   * an id (the bridge), `sha256:<hex>` of its content: another event under the id is refused
   * (`claimEventById`).
   */
  event: string | null
  status: InboundStatus
  /** The plaintext reply body sent (XML or JSON); null = `success`. Retries get it again. */
  reply: string | null
  /** A reply produced after the deadline, as JSON, for a customer-service follow-up. */
  follow_up: string | null
  error: string | null
  received_at: Timestamp
  /**
   * When the claim was last made, taken back or renewed: the lease clock of another channel's
   * event (src/community/claim-lease.ts); null (official-account pushes, rows from before it was
   * kept) counts by `received_at`.
   */
  claimed_at: Timestamp | null
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
  /**
   * The template id for subscribe messages; for `custom`, the kind of the window refused
   * (`message` / `event`, cs-window.ts); else ''.
   */
  scope: Generated<string>
  errcode: number
  recorded_at: Timestamp
  /**
   * Channel `subscribe`: when the member last accepted the template since its last refusal
   * (migration 0056); the row closes the template only while this is null.
   */
  accepted_at: Timestamp | null
  /**
   * Channel `custom`: the start of the window WeChat refused (migration 0077); the row closes
   * that window and older ones of its kind.
   */
  window_opened_at: Timestamp | null
}

/** `mp_subscribe`: the mini program's subscribe/send, with its token (`touser` in the payload). */
export type OutboxKind = 'template' | 'custom' | 'subscribe' | 'mp_subscribe'
export type OutboxStatus =
  | 'pending'
  | 'sending'
  | 'sent'
  | 'failed'
  | 'skipped'
  /** A paused campaign's item: released by resuming it. */
  | 'held'
  /** A stopped campaign's item. */
  | 'cancelled'
  /** The request was written and no answer came; not resent when that could deliver twice. */
  | 'unknown'
/** Claim order: 0 replies and follow-ups, 1 transactional notices, 2 campaigns. */
export type OutboxLane = 0 | 1 | 2

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
  lane: Generated<OutboxLane>
  /** When due; for a `sending` row, when its claim's lease ends. */
  next_attempt_at: Timestamp
  /** The claim holding a `sending` row. */
  claim_token: string | null
  /** An attempt is in flight since then (cleared with its result). */
  attempt_started_at: Timestamp | null
  first_attempt_at: Timestamp | null
  /** `{kind, payload}` sent instead when the customer-service window is closed or used up. */
  fallback: string | null
  errcode: number | null
  errmsg: string | null
  wechat_msgid: string | null
  /** TEMPLATESENDJOBFINISH Status: `success`, `failed:user block`, `failed: system failed` … */
  delivery: string | null
  created_at: Timestamp
  sent_at: Timestamp | null
  delivered_at: Timestamp | null
  /**
   * Not sent when claimed at or after this (stored `skipped`, errmsg `expired`), e.g. a check-in
   * reminder's last useful moment; null: no deadline (migration 0061).
   */
  expires_at: Timestamp | null
  /**
   * Back from a failed attempt, waiting for its retry: holds the member's later items of its lane
   * (cleared by any other result, when a paused API puts the item off and when quiet hours defer
   * its lane; migration 0086).
   */
  retrying: Generated<boolean>
}

/** A quota error (45009) pauses one API of an account until the quota resets. */
export interface OutboxPausesTable {
  appid: string
  api: 'template' | 'custom' | 'subscribe' | 'mp_subscribe' | 'mass'
  paused_until: Timestamp
  errcode: number
  recorded_at: Timestamp
}

/** A delivery receipt (TEMPLATESENDJOBFINISH), kept even if it arrives before the msgid is stored. */
export interface PushReceiptsTable {
  appid: string
  msgid: string
  status: string
  received_at: Timestamp
}

/** Customer-service messages sent in a member's current window (opened by their last message). */
export interface CsWindowSendsTable {
  appid: string
  openid: string
  window_opened_at: Timestamp
  sent: number
  /** The window's quota: 5 for a message's 48 h, 3 for a follow's, scan's or click's minute. */
  quota: Generated<number>
  /** What opened the window (cs-window.ts; migration 0077). */
  kind: Generated<'message' | 'event'>
}

/** A token bucket shared by every process sending for one account. */
export interface RateBucketsTable {
  appid: string
  tokens: number
  updated_at: Timestamp
  /** Set by a 45009 quota error: no sends for this account until then. */
  paused_until: Timestamp | null
}

/** A reward in an account's catalog; `code` is the number members type (兑换 <编号>). */
export interface RewardsTable {
  id: Generated<number>
  appid: string
  code: number
  name: string
  cost: number
  /** Null = unlimited. */
  stock: number | null
  /** Null = no limit. */
  per_member_limit: number | null
  enabled: Generated<boolean>
  created_at: Timestamp
  /** `code`: a code to show; `cashback`: `cashback_fen` paid to the member's wallet (transfers). */
  kind: Generated<RewardKind>
  cashback_fen: number | null
}

export type RewardKind = 'code' | 'cashback'

/** One redemption; cancelling returns the points through the ledger. */
export interface RedemptionsTable {
  id: Generated<number>
  appid: string
  member_id: number
  reward_id: number
  cost: number
  /** The code the member shows to claim the reward. */
  code: string
  status: 'issued' | 'cancelled'
  created_at: Timestamp
  cancelled_at: Timestamp | null
  /**
   * The message it answers (`兑换 <编号>`): `<channel>:<via>:<dedupe key>`, unique per account, so
   * the same message handled again finds it instead of redeeming again. Null: made for no message.
   */
  request_key: string | null
  /**
   * Whether it took a unit of the reward's stock (migrations/0069): a cancellation gives one back
   * only then.
   */
  stock_taken: Generated<boolean>
}

/** One privileged action: who did what to what, with the request details as JSON. */
export interface AuditLogTable {
  id: Generated<number>
  appid: string
  actor: string
  action: string
  target: string
  details: string
  created_at: Timestamp
  /** The client's address (refused operator calls); null for entries that did not come over HTTP. */
  client_address: ColumnType<string | null, string | null | undefined, string | null>
}

/** One accepted signed request of a door (migration 0020): a retry matches its body digest. */
export interface ReplayClaimsTable {
  door: string
  key: string
  /** The request's timestamp, Unix seconds. */
  ts: ColumnType<string, number, number>
  nonce: string
  body_digest: string
  created_at: ColumnType<Date, Date | undefined, Date>
}

/**
 * An announcement posted through a group robot (migration 0059), claimed before the post: a retry
 * of the message that announced finds it and does not post again (src/community/robot-posts.ts).
 */
export interface RobotPostsTable {
  /** The announcement's source (`announce:<actor>:<dedupe key>`, as its outbox rows). */
  source: string
  chat_id: string
  /** `sending` until the webhook answered; `failed`: no answer (it may have been posted). */
  status: 'sending' | 'sent' | 'failed'
  error: string | null
  created_at: Timestamp
}

/** A member's stable invite code (the QR scene carries it). */
export interface InviteCodesTable {
  member_id: number
  appid: string
  code: string
  created_at: Timestamp
}

/** A member's cached invite QR per campaign ('' = none); `issuing_until` leases the issuing. */
export interface InviteQrTable {
  member_id: number
  campaign: Generated<string>
  /** The image is `<qrImageBase>/cgi-bin/showqrcode?ticket=…`, built when shown (the base may move). */
  ticket: string | null
  url: string | null
  expires_at: Timestamp
  issued_at: Timestamp | null
  issuing_until: Timestamp | null
}

/** A member asked for their invite QR on a community day (the report's sharers). */
export interface InviteSharesTable {
  member_id: number
  day: string
  campaign: Generated<string>
  appid: string
}

/** One attributed invite; `invitee_key` is unique, so a person is invited once, ever. */
export interface InvitesTable {
  id: Generated<number>
  appid: string
  invitee_key: string
  invitee_member_id: number
  inviter_member_id: number
  campaign: Generated<string>
  source: 'oa_qr' | 'group_join'
  scene: string | null
  /** `dropped`: never qualified, kept with why and when (migrations/0083). */
  status: 'pending' | 'qualified' | 'dropped'
  created_at: Timestamp
  qualified_at: Timestamp | null
  /** Why a dropped invite was dropped: `known_before` (the invitee was known under another row). */
  drop_reason: InviteDropReason | null
  dropped_at: Timestamp | null
}

/** Why an invite was dropped at qualification instead of qualifying. */
export type InviteDropReason = 'known_before'

/** A mini-program user, linked to a member (by unionid with an OA follower when known). */
export interface MpUsersTable {
  appid: string
  openid: string
  unionid: string | null
  member_id: number
  created_at: Timestamp
}

export type ProductKind = 'membership' | 'flash_sale' | 'group_buy'

/** A catalog item; prices only ever come from here. */
export interface ProductsTable {
  id: Generated<number>
  appid: string
  sku: string
  kind: ProductKind
  name: string
  price_fen: number
  stock: number | null
  per_member_limit: number | null
  starts_at: Timestamp | null
  ends_at: Timestamp | null
  membership_days: number | null
  tier: string | null
  discount_percent: number | null
  group_size: number | null
  group_max: number | null
  group_hours: number | null
  enabled: Generated<boolean>
  created_at: Timestamp
}

export interface GroupBuysTable {
  id: Generated<number>
  appid: string
  product_id: number
  leader_member_id: number
  status: 'open' | 'succeeded' | 'failed'
  size_required: number
  size_max: number
  joined: Generated<number>
  paid: Generated<number>
  expires_at: Timestamp
  created_at: Timestamp
  settled_at: Timestamp | null
}

export type OrderStatus = 'pending' | 'paid' | 'closed' | 'refunded' | 'flagged'

export interface OrdersTable {
  id: Generated<number>
  appid: string
  out_trade_no: string
  member_id: number
  mp_openid: string
  product_id: number
  kind: ProductKind
  description: string
  amount_fen: number
  status: OrderStatus
  client_key: string | null
  group_buy_id: number | null
  prepay_id: string | null
  transaction_id: string | null
  refunded_fen: Generated<number>
  flag_reason: string | null
  expires_at: Timestamp
  created_at: Timestamp
  paid_at: Timestamp | null
  closed_at: Timestamp | null
  /** What WeChat Pay reported as paid (`amount.total`, `amount.payer_total`), once notified. */
  paid_total_fen: number | null
  payer_total_fen: number | null
  /** When a poll of this pending order last asked WeChat Pay (throttle). */
  queried_at: Timestamp | null
  /**
   * Why shop maintenance last failed to expire this pending order (its query or close at WeChat
   * Pay, e.g. `UNVERIFIED_NOT_FOUND …`): the `orders_stuck` alert names it (migrations/0078).
   */
  expire_error: string | null
  /**
   * Whether the order holds a unit of its product's stock (migrations/0068): set when it takes one,
   * cleared by the statement that gives it back (src/shop/orders.ts `releaseStock`).
   */
  stock_taken: Generated<boolean>
}

export interface MembershipsTable {
  member_id: number
  tier: string
  discount_percent: number
  expires_at: Timestamp
  updated_at: Timestamp
}

/**
 * What one paid order granted (migrations/0035): its points, frozen until `releases_at` and then
 * released (or cancelled by a full refund first), what refunds took back (cancelled while frozen,
 * deducted after release) and what the balance could not cover; the membership days it bought.
 */
export interface PurchaseGrantsTable {
  order_id: number
  member_id: number
  /** The community's time zone at payment: the ledger day of later entries. */
  time_zone: string
  points: Generated<number>
  points_status: Generated<'frozen' | 'released' | 'cancelled'>
  points_taken_back: Generated<number>
  /** Of `points_taken_back`, what the balance could not cover after release (already spent). */
  points_shortfall: Generated<number>
  releases_at: Timestamp
  released_at: Timestamp | null
  membership_days: Generated<number>
  membership_days_taken_back: Generated<number>
  created_at: Timestamp
  updated_at: Timestamp
}

/** Every WeChat Pay notification applied or refused, by its id (duplicates change nothing). */
export interface PayEventsTable {
  id: string
  event_type: string
  reference: string | null
  outcome: string
  received_at: Timestamp
}

export interface RefundsTable {
  id: Generated<number>
  order_id: number
  out_refund_no: string
  amount_fen: number
  reason: string
  /** `failed`: WeChat Pay never accepted it (REFUND_MAX_ATTEMPTS tries, with backoff). */
  status: 'requested' | 'processing' | 'success' | 'closed' | 'abnormal' | 'failed'
  refund_id: string | null
  error: string | null
  /** Sends tried; the next one not before `next_attempt_at` (requested refunds). */
  attempts: Generated<number>
  next_attempt_at: Timestamp | null
  created_at: Timestamp
  updated_at: Timestamp
}

/** A member's activity on one community day; `kinds` = ACTIVITY bits (src/analytics/facts.ts). */
export interface MemberDaysTable {
  appid: string
  day: ColumnType<string, string, string>
  member_id: number
  kinds: number
}

/** A follow or unfollow, with the QR scene of the (last) follow and its acquisition source. */
export interface FollowEventsTable {
  id: Generated<number>
  appid: string
  member_id: number
  at: Timestamp
  day: ColumnType<string, string, string>
  kind: 'follow' | 'unfollow'
  scene: string | null
  source: 'invite' | 'qr' | 'organic'
}

/** A rolled-up figure: one value per (account, metric, community day, dimension). */
export interface AnalyticsDailyTable {
  appid: string
  metric: string
  day: ColumnType<string, string, string>
  dim: Generated<string>
  value: number
}

/** Who may sign in to the console (migration 0038). */
export interface OperatorsTable {
  id: Generated<number>
  name: string
  role: 'owner' | 'operator' | 'viewer'
  /** `pbkdf2-sha256$<iterations>$<salt b64>$<hash b64>` (src/console/password.ts). */
  password_hash: string
  disabled: Generated<boolean>
  /** Points an operator may grant a community day; null = no cap (owners are never capped). */
  daily_grant_limit: ColumnType<number | null, number | null | undefined, number | null>
  created_at: Timestamp
  updated_at: Timestamp
}

/** A signed-in browser (migration 0038): only the token's SHA-256 is stored. */
export interface ConsoleSessionsTable {
  id: Generated<number>
  token_hash: string
  operator_id: number
  csrf_token: string
  created_at: Timestamp
  last_seen_at: Timestamp
  revoked_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>
}

/** A failed console sign-in (migration 0038), counted to refuse guessing. */
export interface ConsoleLoginFailuresTable {
  id: Generated<number>
  name: string
  client_address: string
  failed_at: Timestamp
}

/** When a community day's rollup was last built (a re-run replaces it). */
export interface AnalyticsDaysTable {
  appid: string
  day: ColumnType<string, string, string>
  built_at: Timestamp
}

/** A member's retention cohort: the community day of their first follow, and its source. */
export interface CohortMembersTable {
  member_id: number
  appid: string
  cohort_day: ColumnType<string, string, string>
  source: 'invite' | 'qr' | 'organic'
  /** The member's segment as of the last cohort build. */
  segment: Segment | null
  /** bit(189) as text: character k = '1' when active on cohort_day + k. */
  days: string
}

/** Per account: segment transitions up to this instant are copied into `cohort_members`. */
export interface CohortSyncsTable {
  appid: string
  transitions_through: Timestamp
}

/** A community day whose cohort is in `cohort_members`; `cells_built_at`: its cells are built. */
export interface CohortDaysTable {
  appid: string
  day: ColumnType<string, string, string>
  cells_built_at: Timestamp | null
}

/** A retention cell: of a cohort (by source), its size and how many were active at `age`. */
export interface CohortRetentionTable {
  appid: string
  grain: 'day' | 'week'
  /** '' = all sources. */
  source: '' | 'invite' | 'qr' | 'organic'
  cohort_start: ColumnType<string, string, string>
  /** Days (grain day) or weeks (grain week) since the cohort's follow. */
  age: number
  cohort_size: number
  retained: number
}

/** A retention cell of one current segment and source (kept equal to `cohort_members`). */
export interface CohortSegmentRetentionTable {
  appid: string
  grain: 'day' | 'week'
  segment: Segment
  cohort_start: ColumnType<string, string, string>
  source: 'invite' | 'qr' | 'organic'
  age: number
  cohort_size: number
  retained: number
}

/** An LTV cell: of a cohort (by source), its size and net revenue (fen) through `age`. */
export interface CohortLtvTable {
  appid: string
  grain: 'day' | 'week'
  /** '' = all sources. */
  source: '' | 'invite' | 'qr' | 'organic'
  cohort_start: ColumnType<string, string, string>
  age: number
  cohort_size: number
  /** bigint: read as a string by `pg`. */
  revenue_fen: ColumnType<string | number, number, number>
  payers: number
}

/** A transfer bill's state: `pending` (not accepted yet), then WeChat Pay's, lower case. */
export type TransferState =
  | 'pending'
  | 'accepted'
  | 'processing'
  | 'wait_user_confirm'
  | 'transfering'
  | 'canceling'
  | 'success'
  | 'fail'
  | 'cancelled'

/** A cashback paid through WeChat Pay's merchant transfer (商家转账), one per redemption. */
export interface TransfersTable {
  id: Generated<number>
  /** The account whose reward was redeemed. */
  appid: string
  member_id: number
  redemption_id: number
  /** Ours, never changed: every retry is the same bill. */
  out_bill_no: string
  /** The mini program the bill is for, and the payee's openid under it. */
  pay_appid: string
  openid: string
  amount_fen: number
  state: TransferState
  /** The create request exactly as first sent; every retry sends these bytes. */
  request_body: string | null
  /** For `wx.requestMerchantTransfer` while `wait_user_confirm`. */
  package_info: string | null
  transfer_bill_no: string | null
  fail_reason: string | null
  /** The last error of a send or poll. */
  error: string | null
  attempts: Generated<number>
  /** The next send (pending), or poll (accepted … canceling); a claim moves it forward. */
  next_attempt_at: Timestamp | null
  /** When a member's page last had us ask WeChat Pay (at most every few seconds). */
  queried_at: Timestamp | null
  /** When WeChat Pay first answered with the bill: the 24-hour confirmation window starts. */
  accepted_at: Timestamp | null
  settled_at: Timestamp | null
  created_at: Timestamp
  updated_at: Timestamp
}

/** A job's run for one slot; the primary key (job, slot) is the claim. */
export interface JobRunsTable {
  job: string
  slot: Timestamp
  trigger: 'schedule' | 'manual'
  /**
   * `paused`: the run used up its invocation's budget, or failed with a try left; a later tick
   * resumes it (0050).
   */
  status: 'running' | 'paused' | 'succeeded' | 'failed'
  worker: string
  result: string | null
  /** A chunked job's progress (JSON), saved with each chunk's writes; null until the first. */
  cursor: string | null
  error: string | null
  started_at: Timestamp
  finished_at: Timestamp | null
  /**
   * While running: the claim lasts until then unless renewed (a heartbeat); null before 0023.
   * While paused after a failure: not resumed before then (the retry's back-off).
   */
  lease_until: Timestamp | null
  /** Tries of this slot: 1, or 2 after a takeover of a run whose process died or after a failure. */
  attempts: Generated<number>
}

export type CampaignStatus = 'draft' | 'scheduled' | 'running' | 'paused' | 'finished'

export interface CampaignsTable {
  id: Generated<number>
  appid: string
  name: string
  status: CampaignStatus
  /** JSON: {segment?, tag?} — everyone when empty. */
  audience: string
  /** JSON: [{key, weight, template}]. */
  variants: string
  schedule_cron: string | null
  run_at: Timestamp | null
  conversion_days: Generated<number>
  created_at: Timestamp
  updated_at: Timestamp
}

export interface CampaignRunsTable {
  campaign_id: number
  slot: Timestamp
  /** `stopped`: the campaign was finished while the run was enqueuing. */
  status: 'enqueuing' | 'enqueued' | 'stopped'
  lease_until: Timestamp
  /** The last member id walked (keyset pagination); a process taking over continues after it. */
  cursor: Generated<number>
  created_at: Timestamp
  finished_at: Timestamp | null
  /** A one-shot run whose recipients were rolled up (a cron run's row is deleted instead). */
  pruned_at: Timestamp | null
}

export interface CampaignRecipientsTable {
  campaign_id: number
  slot: Timestamp
  member_id: number
  variant: string
  outcome: 'enqueued' | 'capped' | 'opted_out' | 'unreachable'
  outbox_source: string | null
  link_code: string | null
  target_url: string | null
  enqueued_at: Timestamp
  clicks: Generated<number>
  clicked_at: Timestamp | null
  converted_at: Timestamp | null
  /** The first reward redemption within the conversion window after the push (migration 0048). */
  redeemed_at: Timestamp | null
}

/** The counts of pruned recipients of one run and variant (campaignReport adds them). */
export interface CampaignRollupsTable {
  campaign_id: number
  slot: Timestamp
  variant: string
  audience: number
  enqueued: number
  capped: number
  opted_out: number
  unreachable: number
  sent: number
  failed: number
  delivered: number
  clicked: number
  converted: number
  redeemed: Generated<number>
  /** Pushes withdrawn unsent: the member opted out after they were enqueued (migration 0064). */
  withdrawn_opted_out: Generated<number>
  /** Pushes cancelled unsent: the campaign was finished first. */
  cancelled: Generated<number>
  /** Pushes whose outcome is unknown (and, in rollups from before 0064, those counted nowhere). */
  unknown: Generated<number>
}

/** A lifecycle journey (src/community/journeys.ts); appid '*' holds the seeded examples. */
export interface JourneysTable {
  id: Generated<number>
  appid: string
  key: string
  name: string
  /** The segment whose entry starts the journey. */
  segment: Segment
  status: 'active' | 'paused'
  /** JSON: JourneyStep[] (src/community/journey-steps.ts). */
  steps: string
  /** The last `segment_transitions.id` the journey has considered. */
  enrolled_through: Generated<number>
  created_at: Timestamp
  updated_at: Timestamp
}

/** One member on a journey, started once per (journey, member, transition). */
export interface JourneyEnrollmentsTable {
  id: Generated<number>
  journey_id: number
  appid: string
  member_id: number
  transition_id: number
  started_at: Timestamp
  status: Generated<'active' | 'converted' | 'left' | 'completed'>
  /** The index of the next step to send, and when it is due (meaningful while active). */
  next_step: Generated<number>
  next_at: Timestamp
  /**
   * The last step enqueued, and when; once converted, the step credited (the last whose push was
   * sent: conversions are attributed to it) and when its push was sent.
   */
  last_step: number | null
  last_sent_at: Timestamp | null
  converted_at: Timestamp | null
  ended_at: Timestamp | null
}

/** What one step did for one enrollment. */
export interface JourneySendsTable {
  enrollment_id: number
  step: number
  journey_id: number
  outcome: 'enqueued' | 'capped' | 'opted_out' | 'unreachable'
  outbox_source: string | null
  enqueued_at: Timestamp
}

/**
 * A campaign's reach as last counted (src/community/campaign-reach.ts, migration 0087): `reach` is
 * the `CampaignReach` as JSON, counted at `computed_at`; `refreshing_since` the recount under way.
 */
export interface CampaignReachTable {
  campaign_id: number
  reach: string | null
  /** The report's per-variant counts (JSON `VariantCounts[]`) of the same count (migration 0089). */
  counts: string | null
  computed_at: Timestamp | null
  refreshing_since: Timestamp | null
  /** How long the count of `computed_at` took, ms (migration 0090; null before it). */
  count_ms: number | null
}

/** How far a periodic campaign task got (`conversions`: members active since then are checked). */
export interface CampaignWatermarksTable {
  name: string
  marked_at: Timestamp
}

/** What recommendations count: a reward (rewards.id) or a shop product (products.id). */
export type ItemKind = 'reward' | 'product'

/** Item → similar item, the top N per item, rebuilt nightly (src/community/recommendations.ts). */
export interface ItemSimilaritiesTable {
  appid: string
  item_kind: ItemKind
  item_id: number
  similar_kind: ItemKind
  similar_id: number
  /** Cosine: members with both / √(members with one × members with the other). */
  score: number
  /** Members who have both. */
  together: number
  /** 1 = the most similar. */
  rank: number
  computed_at: Timestamp
}

/** Each item's distinct members (the popular fallback), rebuilt with the similarities. */
export interface ItemPopularityTable {
  appid: string
  item_kind: ItemKind
  item_id: number
  /** Distinct members who redeemed or bought it (all time). */
  members: number
  /** The same within the recent window (the popular fallback's first order). */
  recent_members: number
  computed_at: Timestamp
}

export interface ActivitiesTable {
  id: Generated<number>
  appid: string
  key: string
  name: string
  description: string
  cron: string
  cadence: 'daily' | 'weekly' | 'monthly'
  points: Generated<number>
  signup: Generated<boolean>
  capacity: number | null
  requires_purchase: Generated<boolean>
  status: 'open' | 'closed'
  created_at: Timestamp
}

export interface ActivitySignupsTable {
  activity_id: number
  period: string
  member_id: number
  status: 'confirmed' | 'waitlisted' | 'cancelled'
  created_at: Timestamp
  updated_at: Timestamp
}

export interface MemberTagsTable {
  member_id: number
  tagid: number
  tagged_at: Timestamp
}

/** A member's identity on another channel (e.g. `wecom_aibot` + a WeCom userid). */
export interface MemberIdentitiesTable {
  channel: string
  external_id: string
  member_id: number
  linked_at: Timestamp
}

export interface BindingCodesTable {
  code: string
  member_id: number
  expires_at: Timestamp
  used_at: Timestamp | null
  /** Who used it from a group: `<channel>:<external id>` (null: unused, or the mini program). */
  used_by: string | null
}

export interface ModeratorsTable {
  channel: string
  external_id: string
  /** A chat id, or '*' for every group and the OA chat. */
  scope: string
  role: 'moderator' | 'admin'
  source: string
}

export interface GroupMembersTable {
  channel: string
  chat_id: string
  member_id: number
  last_seen_at: Timestamp
}

export interface WecomJoinWaysTable {
  member_id: number
  config_id: string
  qr_code: string
  state: string
  created_at: Timestamp
  /** Its groups, a JSON array: as last sent (migrations/0072); null: not known yet (stored before). */
  chat_ids: string | null
  /** When moving it to the configured groups last failed (migrations/0072); null: no failure since. */
  sync_failed_at: Timestamp | null
}

/** An account's overrides of the alert rules' defaults (JSON; src/analytics/alert-rules.ts). */
export interface AlertSettingsTable {
  appid: string
  settings: string
  updated_at: Timestamp
}

/** One alert episode: open while its rule's figure is past the threshold (migration 0032). */
export interface AlertsTable {
  id: Generated<number>
  appid: string
  rule: string
  /** What the rule is about within the account: a lane, a job, a campaign id; '' for the whole. */
  dim: Generated<string>
  status: 'open' | 'closed'
  opened_at: Timestamp
  /** The last delivery to moderators; repeats wait at least the rule's interval after it. */
  last_notified_at: Timestamp | null
  notifications: Generated<number>
  closed_at: Timestamp | null
  /** The figure at the last evaluation, and the threshold it was compared with. */
  value: number
  threshold: number
  message: string
  evaluated_at: Timestamp
  /** JSON: what the last delivery reached (members queued, robots by chat). */
  delivery: string | null
}

/** A figure recorded by the alert evaluator to compare with later (kept 8 days). */
export interface AlertSamplesTable {
  appid: string
  metric: string
  at: Timestamp
  value: number
}

/** Per account and minute: refused pushes and outbox sends, added by every process. */
export interface TrafficCountsTable {
  appid: string
  minute: Timestamp
  name: 'push_refused' | 'send_sent' | 'send_failed'
  n: ColumnType<number, number, number>
}

/** The database as Kysely sees it. */
/** A day's bill reconciled (or being): one per merchant, bill date and kind (migration 0033). */
export interface ReconciliationRunsTable {
  id: Generated<number>
  /** The shop's account, and the merchant whose bill it is. */
  appid: string
  mchid: string
  /** `YYYY-MM-DD`, a day in Asia/Shanghai (WeChat Pay's bill day). */
  bill_date: string
  kind: 'trade' | 'fundflow'
  /** `pending`: STATEMENT_CREATING; `failed`: refused before anything was recorded. */
  status: 'pending' | 'failed' | 'reconciled'
  hash_value: string | null
  line_count: Generated<number>
  mismatch_count: Generated<number>
  /** JSON: the summary checks, and the bill's and our totals in fen. */
  totals: string | null
  error: string | null
  attempts: Generated<number>
  fetched_at: Timestamp | null
  reconciled_at: Timestamp | null
  created_at: Timestamp
  updated_at: Timestamp
}

/** One line of a reconciled bill: the matching keys as columns, every field as JSON. */
export interface ReconciliationLinesTable {
  run_id: number
  line_no: number
  entry: 'payment' | 'refund' | 'other' | 'income' | 'expense'
  /** As the bill writes it (Beijing time). */
  occurred_at: string
  transaction_id: string | null
  out_trade_no: string | null
  refund_id: string | null
  out_refund_no: string | null
  amount_fen: number | null
  state: string | null
  fields: string
}

export type MismatchKind =
  | 'missing_here'
  | 'amount_differs'
  | 'refund_missing_here'
  | 'refund_amount_differs'
  | 'missing_there'
  | 'refund_missing_there'
  | 'summary_differs'

/** A difference between a bill and our orders and refunds; operators resolve it with a note. */
export interface ReconciliationMismatchesTable {
  id: Generated<number>
  run_id: number
  kind: MismatchKind
  /** out_trade_no, out_refund_no or the summary column. */
  key: string
  out_trade_no: string | null
  transaction_id: string | null
  out_refund_no: string | null
  refund_id: string | null
  their_fen: number | null
  our_fen: number | null
  our_status: string | null
  detail: string
  status: Generated<'open' | 'resolved'>
  note: string | null
  resolved_at: Timestamp | null
  created_at: Timestamp
  updated_at: Timestamp
}

/** A member's review of a paid order (one per order; migrations/0046). */
export interface ProductReviewsTable {
  id: Generated<number>
  appid: string
  member_id: number
  order_id: number
  product_id: number
  rating: number
  body: string
  status: Generated<'visible' | 'hidden'>
  /** What `product_review` awarded (0 when capped), and what hiding took back. */
  points: Generated<number>
  reversed_points: Generated<number>
  created_at: Timestamp
  hidden_at: Timestamp | null
  /** How often it was hidden (each hide and unhide has its own ledger key). */
  hides: Generated<number>
}

/** A member's tracked share link for an article, activity or product (`/r/s/<code>`). */
export interface ShareLinksTable {
  id: Generated<number>
  appid: string
  code: string
  member_id: number
  kind: 'article' | 'activity' | 'product'
  ref: string
  /** Where an open is redirected; null = the landing page of the activity or product. */
  target_url: string | null
  /** Hash of the sharer's network address when they asked for the link (self-click guard). */
  sharer_address: string | null
  /**
   * The member whose id salted `sharer_address` when it is not `member_id`: a link a 绑定 moved to
   * a follower keeps the hash made for the mini-program member who asked for it (migration 0065).
   */
  address_salt: number | null
  /** Every open, counted or not. */
  clicks: Generated<number>
  created_at: Timestamp
}

/**
 * A share link's code that now opens another link: a 绑定 merged the mini-program member's link into
 * the follower's own link for the same target (migration 0065).
 */
export interface ShareLinkAliasesTable {
  code: string
  link_id: number
  created_at: Timestamp
}

/** A distinct opener of a share link (once per link and opener). */
export interface ShareOpensTable {
  link_id: number
  opener: string
  outcome: 'awarded' | 'capped'
  created_at: Timestamp
}

export interface Database {
  product_reviews: ProductReviewsTable
  share_links: ShareLinksTable
  share_link_aliases: ShareLinkAliasesTable
  share_opens: ShareOpensTable
  members: MembersTable
  member_segments: MemberSegmentsTable
  inbound_events: InboundEventsTable
  wechat_tokens: WechatTokensTable
  member_reachability: MemberReachabilityTable
  push_outbox: PushOutboxTable
  outbox_pauses: OutboxPausesTable
  push_receipts: PushReceiptsTable
  cs_window_sends: CsWindowSendsTable
  rate_buckets: RateBucketsTable
  point_rules: PointRulesTable
  points_ledger: PointsLedgerTable
  points_lots: PointsLotsTable
  checkins: CheckinsTable
  badge_rules: BadgeRulesTable
  member_badges: MemberBadgesTable
  checkin_reminders: CheckinRemindersTable
  rewards: RewardsTable
  redemptions: RedemptionsTable
  audit_log: AuditLogTable
  invite_codes: InviteCodesTable
  invite_qr: InviteQrTable
  invite_shares: InviteSharesTable
  invites: InvitesTable
  mp_users: MpUsersTable
  products: ProductsTable
  group_buys: GroupBuysTable
  orders: OrdersTable
  memberships: MembershipsTable
  pay_events: PayEventsTable
  refunds: RefundsTable
  purchase_grants: PurchaseGrantsTable
  member_days: MemberDaysTable
  follow_events: FollowEventsTable
  analytics_daily: AnalyticsDailyTable
  analytics_days: AnalyticsDaysTable
  transfers: TransfersTable
  cohort_members: CohortMembersTable
  cohort_days: CohortDaysTable
  cohort_syncs: CohortSyncsTable
  cohort_retention: CohortRetentionTable
  operators: OperatorsTable
  console_sessions: ConsoleSessionsTable
  console_login_failures: ConsoleLoginFailuresTable
  cohort_segment_retention: CohortSegmentRetentionTable
  cohort_ltv: CohortLtvTable
  job_runs: JobRunsTable
  campaigns: CampaignsTable
  campaign_runs: CampaignRunsTable
  campaign_recipients: CampaignRecipientsTable
  campaign_rollups: CampaignRollupsTable
  campaign_watermarks: CampaignWatermarksTable
  campaign_reach: CampaignReachTable
  item_similarities: ItemSimilaritiesTable
  item_popularity: ItemPopularityTable
  journeys: JourneysTable
  journey_enrollments: JourneyEnrollmentsTable
  journey_sends: JourneySendsTable
  activities: ActivitiesTable
  activity_signups: ActivitySignupsTable
  member_tags: MemberTagsTable
  member_identities: MemberIdentitiesTable
  binding_codes: BindingCodesTable
  moderators: ModeratorsTable
  group_members: GroupMembersTable
  wecom_join_ways: WecomJoinWaysTable
  replay_claims: ReplayClaimsTable
  robot_posts: RobotPostsTable
  segment_transitions: SegmentTransitionsTable
  reconciliation_runs: ReconciliationRunsTable
  reconciliation_lines: ReconciliationLinesTable
  reconciliation_mismatches: ReconciliationMismatchesTable
  alert_settings: AlertSettingsTable
  alerts: AlertsTable
  alert_samples: AlertSamplesTable
  traffic_counts: TrafficCountsTable
}

export type Product = Selectable<ProductsTable>
export type Order = Selectable<OrdersTable>
export type Transfer = Selectable<TransfersTable>

export type OutboxItem = Selectable<PushOutboxTable>

export type Member = Selectable<MembersTable>
export type NewMember = Insertable<MembersTable>
export type InboundEvent = Selectable<InboundEventsTable>
