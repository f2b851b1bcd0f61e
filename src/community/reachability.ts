/**
 * Reachability: what the API said about a member, remembered so the next send picks a channel or
 * skips instead of failing again.
 *
 *   43004 not following       → member marked unsubscribed (a new follow clears it); also
 *                              `subscribe: 0` from user/info (jobs/backfill-unionids.ts)
 *   45015 / 45047 window      → the customer-service window the send used is closed (its kind
 *                              as scope, its start as window_opened_at): until the member writes
 *                              again, or, for a message window, the minute of a follow, scan or
 *                              click still takes a reply (WeChat counts them apart: cs-window.ts)
 *   43101 subscription refused → that subscribe-message template closed until a new accept
 *                              (a send's refusal only if no accept came after it was enqueued)
 *   40003 invalid openid      → nothing is sent to that openid again
 *   failed:user block receipt  → no template messages until the member follows again
 *   43101 / 40003 from the mini program's subscribe/send
 *                              → the member's mini-program authorisation dropped (a new accept)
 */
import { type Kysely, sql } from 'kysely'
import type { Database } from '../db/schema.js'
import {
  type CsWindow,
  EVENT_WINDOW,
  openWindows,
  refused,
  WINDOW_EVENTS,
  type WindowKind,
  type WindowRefusal,
  type WindowUse,
} from './cs-window.js'

export type Channel = 'template' | 'custom' | 'subscribe'

const CLOSING: Record<number, Channel | 'any'> = {
  43004: 'template',
  45015: 'custom',
  45047: 'custom',
  43101: 'subscribe',
  40003: 'any',
}

/** True when this errcode says something about the member rather than the request. */
export function isReachabilityError(errcode: number): boolean {
  return errcode in CLOSING
}

/**
 * Records an errcode about a member (no-op for errcodes that are not about reachability). A 43101
 * closes the subscribe template (its row's `accepted_at` cleared); with `enqueuedAt` (the refused
 * item's `created_at`) it answers the authorisation the item was enqueued with, so an accept
 * recorded after that (a new authorisation while the item waited) keeps the template open. A
 * 45015 / 45047 closes `window`, the customer-service window the refused send was counted in (one
 * row per kind, keeping the newest refused); without one, the message windows opened until now.
 */
export async function recordUnreachable(
  db: Kysely<Database>,
  r: {
    appid: string
    openid: string
    errcode: number
    scope?: string
    enqueuedAt?: Date
    /** For 45015 / 45047: the window the send used (reserveCsSend, outbox.ts). */
    window?: WindowRefusal
    now: Date
  },
): Promise<void> {
  const channel = CLOSING[r.errcode]
  if (!channel) return
  const window = channel === 'custom' ? (r.window ?? { kind: 'message', openedAt: r.now }) : null
  await db
    .insertInto('member_reachability')
    .values({
      appid: r.appid,
      openid: r.openid,
      channel,
      scope: channel === 'subscribe' ? (r.scope ?? '') : (window?.kind ?? ''),
      errcode: r.errcode,
      recorded_at: r.now,
      accepted_at: null,
      window_opened_at: window?.openedAt ?? null,
    })
    .onConflict((oc) => {
      const update = oc.columns(['appid', 'openid', 'channel', 'scope']).doUpdateSet((eb) => ({
        errcode: r.errcode,
        recorded_at: r.now,
        accepted_at: null,
        // a late refusal of an older window does not reopen a newer one refused already
        window_opened_at: sql<Date | null>`greatest(${eb.ref(
          'member_reachability.window_opened_at',
        )}, ${eb.ref('excluded.window_opened_at')})`,
      }))
      const enqueuedAt = channel === 'subscribe' ? r.enqueuedAt : undefined
      if (!enqueuedAt) return update
      return update.where((eb) =>
        eb.or([
          eb('member_reachability.accepted_at', 'is', null),
          eb('member_reachability.accepted_at', '<=', enqueuedAt),
        ]),
      )
    })
    .execute()
  if (r.errcode === 43004)
    await recordNotFollowing(db, { appid: r.appid, openids: [r.openid], now: r.now })
}

/**
 * Records that WeChat says these members do not follow (a send's 43004, or `subscribe: 0` from
 * `user/info`): `subscribed` false, as an unsubscribe event leaves it, so sends, campaigns and
 * reminders skip them and segments count them churned; a new follow clears it. `unsubscribed_at`
 * becomes `now` for a member counted as following (the unfollow came at some moment before it,
 * never after; an earlier one is kept otherwise). No `follow_events` unfollow is written: that
 * fact is of a day, and the day of an unfollow learnt late is unknown. With `askedAt` (when
 * WeChat was asked), a member whose follow was recorded after it (a follow push racing the
 * answer) stays following: the statement's own condition, re-checked on a row a racing push
 * changed. One statement; returns how many members it recorded as not following.
 */
export async function recordNotFollowing(
  db: Kysely<Database>,
  r: { appid: string; openids: readonly string[]; now: Date; askedAt?: Date },
): Promise<number> {
  if (r.openids.length === 0) return 0
  const askedAt = r.askedAt
  const result = await db
    .updateTable('members')
    .set({
      subscribed: false,
      unsubscribed_at: sql<Date>`case when subscribed then ${r.now}::timestamptz
        else coalesce(unsubscribed_at, ${r.now}::timestamptz) end`,
    })
    .where('appid', '=', r.appid)
    .where('openid', 'in', [...r.openids])
    .where((eb) => eb.or([eb('subscribed', '=', true), eb('unsubscribed_at', 'is', null)]))
    .$if(askedAt !== undefined, (q) =>
      q.where((eb) =>
        eb.or([eb('subscribed_at', 'is', null), eb('subscribed_at', '<=', askedAt!)]),
      ),
    )
    .executeTakeFirst()
  return Number(result.numUpdatedRows)
}

/**
 * Records that the mini program refused a subscribe message (43101: refused or no authorisation
 * left; 40003: not its openid): the one-time authorisations counted for that openid and template
 * are dropped, so nothing more is sent through them until the member accepts again. The refusal
 * answers the authorisation consumed when the item was enqueued (`enqueuedAt`, its `created_at`):
 * credits last granted after that (a new accept while the item waited) are kept.
 */
export async function recordMiniProgramRefusal(
  db: Kysely<Database>,
  r: { appid: string; mpOpenid: string; templateId?: string; enqueuedAt: Date; now: Date },
): Promise<void> {
  await db
    .updateTable('checkin_reminders')
    .set({ mp_credits: 0, updated_at: r.now })
    .where('appid', '=', r.appid)
    .where('mp_openid', '=', r.mpOpenid)
    .$if(r.templateId !== undefined, (q) => q.where('mp_template_id', '=', r.templateId!))
    .where('mp_credits', '>', 0)
    .where((eb) =>
      eb.or([eb('mp_granted_at', 'is', null), eb('mp_granted_at', '<=', r.enqueuedAt)]),
    )
    .execute()
}

/** The scope of a template channel closed by a `failed:user block` delivery receipt. */
const USER_BLOCK = 'user block'

/**
 * Records that a member blocks the account's template messages (a `failed:user block` receipt).
 * It holds until the member follows again (a later `subscribed_at`).
 */
export async function recordTemplateBlock(
  db: Kysely<Database>,
  r: { appid: string; openid: string; now: Date },
): Promise<void> {
  await db
    .insertInto('member_reachability')
    .values({
      appid: r.appid,
      openid: r.openid,
      channel: 'template',
      scope: USER_BLOCK,
      errcode: 0,
      recorded_at: r.now,
    })
    .onConflict((oc) =>
      oc.columns(['appid', 'openid', 'channel', 'scope']).doUpdateSet({ recorded_at: r.now }),
    )
    .execute()
}

/**
 * Records that the member accepted a subscribe-message template: it opens again (a refusal row
 * stays, with `accepted_at`), and a refusal of an item enqueued before now does not close it.
 * One row per member and template, so this and a concurrent refusal are serialised by its key.
 */
export async function recordSubscribeAccept(
  db: Kysely<Database>,
  r: { appid: string; openid: string; templateId: string; now: Date },
): Promise<void> {
  await db
    .insertInto('member_reachability')
    .values({
      appid: r.appid,
      openid: r.openid,
      channel: 'subscribe',
      scope: r.templateId,
      errcode: 0,
      recorded_at: r.now,
      accepted_at: r.now,
    })
    .onConflict((oc) =>
      oc.columns(['appid', 'openid', 'channel', 'scope']).doUpdateSet({ accepted_at: r.now }),
    )
    .execute()
}

/** Why a send is skipped: the errcode it would fail with. */
export interface Unreachable {
  errcode: number
  reason: string
}

/** Answers "is this channel open for this member now?" for the members it was loaded for. */
export type ReachabilityCheck = ((
  openid: string,
  channel: Channel,
  scope?: string,
  /** For `custom`: which windows count (default `message`: only the 48-hour one). */
  use?: WindowUse,
) => Unreachable | null) & {
  /**
   * The member's open customer-service windows, in the order a send tries them (cs-window.ts),
   * less those WeChat refused. Event windows only for the members it was loaded with in
   * `eventWindowsOf`.
   */
  windows(openid: string, use: WindowUse): CsWindow[]
  /**
   * Whether the member has opted out of marketing (退订) as of the load: read at send time, so an
   * opt-out after a campaign was enqueued still stops its push.
   */
  optedOut(openid: string): boolean
}

/**
 * Loads what is known about `openids` (two queries, however many members; a third, of their last
 * minute's pushes, for the members in `eventWindowsOf`) and returns the check. A member never seen
 * is reachable by template and subscribe message (they may follow) but not by customer-service
 * message (no window). For a member not in `eventWindowsOf` a follow, scan or click opens no
 * window: only the outbox, sending replies, needs them; a campaign or a reminder choosing its
 * channel must not count on a 1-minute window.
 */
export async function loadReachability(
  db: Kysely<Database>,
  appid: string,
  openids: string[],
  now: Date,
  options: { eventWindowsOf?: string[] } = {},
): Promise<ReachabilityCheck> {
  const unique = [...new Set(openids)]
  if (unique.length === 0)
    return Object.assign(() => null, {
      windows: () => [],
      optedOut: () => false,
    })
  const eventOpenids = [...new Set(options.eventWindowsOf ?? [])]
  const [members, blocks, events] = await Promise.all([
    db
      .selectFrom('members')
      .select(['openid', 'subscribed', 'subscribed_at', 'last_inbound_at', 'marketing_opt_out'])
      .where('appid', '=', appid)
      .where('openid', 'in', unique)
      .execute(),
    db
      .selectFrom('member_reachability')
      .select([
        'openid',
        'channel',
        'scope',
        'errcode',
        'recorded_at',
        'accepted_at',
        'window_opened_at',
      ])
      .where('appid', '=', appid)
      .where('openid', 'in', unique)
      .execute(),
    // The pushes of the last minute that open an event window: the dedupe claims (inbound_events,
    // one per push, written before its handler runs; partial index of migrations/0076).
    eventOpenids.length > 0
      ? db
          .selectFrom('inbound_events')
          .select((eb) => ['openid', eb.fn.max('received_at').as('at')])
          .where('received_at', '>', new Date(now.getTime() - EVENT_WINDOW.ms))
          .where('appid', '=', appid)
          .where('openid', 'in', eventOpenids)
          // literals, so the planner matches the partial index's predicate
          .where(sql<boolean>`event in (${sql.join(WINDOW_EVENTS.map((e) => sql.lit(e)))})`)
          .groupBy('openid')
          .execute()
      : [],
  ])
  const byOpenid = new Map(members.map((m) => [m.openid, m]))
  const lastEvent = new Map(events.map((e) => [e.openid, new Date(e.at)]))
  // The windows WeChat refused (channel custom: the kind as scope, the window's start).
  const refusals = blocks.flatMap((b) =>
    b.channel === 'custom' && b.window_opened_at
      ? [
          {
            openid: b.openid,
            errcode: b.errcode,
            kind: b.scope as WindowKind,
            openedAt: b.window_opened_at,
          },
        ]
      : [],
  )
  const refusalsOf = (openid: string) => refusals.filter((r) => r.openid === openid)
  /** The windows open by time; with `refusals`, those no refusal closed. */
  const timely = (openid: string, use: WindowUse, closedBy: WindowRefusal[] = []) =>
    openWindows(
      byOpenid.get(openid)?.last_inbound_at ?? null,
      lastEvent.get(openid) ?? null,
      use,
      now,
      closedBy,
    )
  const windows = (openid: string, use: WindowUse) => timely(openid, use, refusalsOf(openid))
  const check = (
    openid: string,
    channel: Channel,
    scope = '',
    use: WindowUse = 'message',
  ): Unreachable | null => {
    const member = byOpenid.get(openid)
    const block = (c: Channel | 'any', s = '') =>
      blocks.find((b) => b.openid === openid && b.channel === c && b.scope === s)
    if (block('any')) return { errcode: 40003, reason: 'invalid openid for this account' }
    if (member && !member.subscribed) return { errcode: 43004, reason: 'not following' }
    if (channel === 'custom') {
      const open = member ? windows(openid, use) : []
      if (open.length === 0) {
        // WeChat refused a window open by time: closed until an action opens a new one.
        const closed = member
          ? refusalsOf(openid).find((r) => timely(openid, use).some((w) => refused(w, r)))
          : undefined
        if (closed) return { errcode: closed.errcode, reason: 'window closed or its quota used up' }
        return {
          errcode: 45015,
          reason:
            use === 'reply' ? 'no customer-service window open' : 'outside the 48-hour window',
        }
      }
    }
    if (channel === 'subscribe' && block('subscribe', scope)?.accepted_at === null) {
      return { errcode: 43101, reason: 'subscription refused for this template' }
    }
    if (channel === 'template') {
      const blocked = block('template', USER_BLOCK)
      if (blocked && !(member?.subscribed_at && member.subscribed_at > blocked.recorded_at))
        return { errcode: 0, reason: 'the member blocks template messages (failed:user block)' }
    }
    return null
  }
  return Object.assign(check, {
    windows,
    optedOut: (openid: string) => byOpenid.get(openid)?.marketing_opt_out === true,
  })
}
