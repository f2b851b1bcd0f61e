/**
 * Customer-service windows (客服消息, protocol reference §6.3): WeChat accepts a customer-service
 * message only inside a window a member's action opened, and only so many in it (45015 outside,
 * 45047 over the quota). A window is its start, its length and its quota:
 *
 *   the member sends a message                       → 48 h, 5 messages
 *   a follow, a parametric-QR scan, a menu click      → 1 minute, 3 messages
 *     (click / scancode_push / scancode_waitmsg only)
 *
 * WeChat counts each window apart, so a refusal (45015 / 45047) closes the window it came in, not
 * the other kind's (reachability.ts). Every window is counted the same way (`cs_window_sends`,
 * outbox.ts). An event never shrinks an open message window that has quota left: the message
 * window is tried first.
 */
import { type RawBuilder, sql } from 'kysely'
import { CUSTOM_WINDOW_MS } from '../wechat/api/messages.js'

/** What opened a window: the member's message, or a follow, scan or click (an event). */
export type WindowKind = 'message' | 'event'

/** A customer-service window: opened at `openedAt`, open for `ms`, allowing `quota` messages. */
export interface CsWindow {
  kind: WindowKind
  openedAt: Date
  ms: number
  quota: number
}

/** The window a member's ordinary message opens. */
export const MESSAGE_WINDOW = { kind: 'message', ms: CUSTOM_WINDOW_MS, quota: 5 } as const

/** The window a follow, a QR scan or a menu click (of the kinds below) opens. */
export const EVENT_WINDOW = { kind: 'event', ms: 60_000, quota: 3 } as const

/** Each kind's length and quota. */
export const WINDOWS: Record<WindowKind, Omit<CsWindow, 'openedAt'>> = {
  message: MESSAGE_WINDOW,
  event: EVENT_WINDOW,
}

/**
 * The events that open an {@link EVENT_WINDOW} (a menu VIEW or a location report does not). The
 * partial index `inbound_events_window_idx` (migrations/0076) lists the same.
 */
export const WINDOW_EVENTS = ['subscribe', 'SCAN', 'CLICK', 'scancode_push', 'scancode_waitmsg']

/**
 * Which windows a customer-service message may use: `reply` — an answer to what the member just
 * did (a late reply, a follow-up), which may also use an event's 1-minute window; `message` — only
 * the 48-hour window of their message (anything else: notices, reminders, campaigns).
 */
export type WindowUse = 'reply' | 'message'

/**
 * A refusal WeChat answered in a window (45015 / 45047): it closes that window and any older one
 * of its kind, never a window of the other kind nor a newer one (a new action opens a new count).
 */
export interface WindowRefusal {
  kind: WindowKind
  openedAt: Date
}

/** True when `refusal` closed `w`. */
export const refused = (w: CsWindow, refusal: WindowRefusal) =>
  refusal.kind === w.kind && refusal.openedAt.getTime() >= w.openedAt.getTime()

/** True while `w` is open at `now`. */
export const isOpen = (w: CsWindow, now: Date) => now.getTime() - w.openedAt.getTime() < w.ms

/**
 * The windows open at `now`, in the order a send tries them: the message window, then (for a
 * reply) an event window opened after it — so an event never shrinks a message window with quota
 * left, and its 3 messages apply when there is none or its 5 are used. A window a refusal closed
 * is not open.
 */
export function openWindows(
  lastMessageAt: Date | null,
  lastEventAt: Date | null,
  use: WindowUse,
  now: Date,
  refusals: WindowRefusal[] = [],
): CsWindow[] {
  const windows: CsWindow[] = []
  if (lastMessageAt) windows.push({ openedAt: lastMessageAt, ...MESSAGE_WINDOW })
  if (use === 'reply' && lastEventAt && (!lastMessageAt || lastEventAt > lastMessageAt))
    windows.push({ openedAt: lastEventAt, ...EVENT_WINDOW })
  return windows.filter((w) => isOpen(w, now) && !refusals.some((r) => refused(w, r)))
}

/**
 * SQL over a member row aliased `m`: whether their 48-hour message window is open at `at` as the
 * outbox will see it — their last message after `at` − 48 h, no refusal of that window
 * (reachability.ts) and quota left in it (`cs_window_sends`, one row per member: an event's minute
 * counted after the message window's five leaves none). False, never null (a member who never
 * wrote). For choosing a customer-service message for a batch of members (check-in reminders,
 * journeys); the dispatcher checks again when it sends.
 */
export function messageWindowOpen(at: Date): RawBuilder<boolean> {
  const start = new Date(at.getTime() - MESSAGE_WINDOW.ms)
  const quota = MESSAGE_WINDOW.quota
  return sql<boolean>`coalesce(m.last_inbound_at > ${start}::timestamptz
    and not exists (select 1 from member_reachability b where b.appid = m.appid
      and b.openid = m.openid and b.channel = 'custom' and b.scope = ${MESSAGE_WINDOW.kind}
      and b.window_opened_at >= m.last_inbound_at)
    and coalesce((select case when w.quota < ${quota} then ${quota} else w.sent end
      from cs_window_sends w where w.appid = m.appid and w.openid = m.openid
      and w.window_opened_at >= m.last_inbound_at), 0) < ${quota}, false)`
}
