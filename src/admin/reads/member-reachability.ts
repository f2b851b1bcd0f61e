/**
 * Can this member be reached now, and if not, why: the checks the outbox makes before a send
 * (src/community/reachability.ts), plus the customer-service window a send would use with its
 * quota, and the member's opt-out from campaigns.
 */
import type { Kysely } from 'kysely'
import { type CsWindow, MESSAGE_WINDOW, type WindowKind } from '../../community/cs-window.js'
import { loadReachability, type Unreachable } from '../../community/reachability.js'
import type { Database, Member } from '../../db/schema.js'

/** The member's reachability now, channel by channel. */
export interface MemberReachability {
  /** Template messages (notices, campaigns): null when open. */
  template: Unreachable | null
  /**
   * Customer-service messages as notices, reminders and campaigns send them: null when the 48 h
   * window of the member's message is open and has quota left (a follow's, scan's or click's
   * minute takes replies only: `windowKind`).
   */
  custom: Unreachable | null
  /**
   * The customer-service window a reply would use now (cs-window.ts): `message` (48 h after the
   * member's last message, 5 messages) or `event` (a minute after a follow, QR scan or menu
   * click, 3 messages, for replies only); null when none is open.
   */
  windowKind: WindowKind | null
  /** When that window closes, if one is open. */
  windowClosesAt: Date | null
  /** Customer-service messages sent in that window, of `windowQuota`. */
  windowSent: number
  /** That window's quota (the message window's 5 when none is open). */
  windowQuota: number
  /** Campaigns skip the member (marketing opt-out). */
  optedOut: boolean
}

/** Where the member stands now (`now` from the injected clock). */
export async function memberReachability(
  db: Kysely<Database>,
  member: Member,
  now: Date,
): Promise<MemberReachability> {
  const reach = await loadReachability(db, member.appid, [member.openid], now, {
    eventWindowsOf: [member.openid],
  })
  // the windows a reply would try, in order, less those WeChat refused (cs-window.ts)
  const windows = reach.windows(member.openid, 'reply')
  const sends =
    windows.length > 0
      ? await db
          .selectFrom('cs_window_sends')
          .select(['sent', 'quota', 'window_opened_at'])
          .where('appid', '=', member.appid)
          .where('openid', '=', member.openid)
          .executeTakeFirst()
      : undefined
  // What reserveCsSend (outbox.ts) finds for `w` in the member's one count: none for an older
  // window; a newer window's count when its quota is as large, else `w` is used up.
  const sentIn = (w: CsWindow) => {
    const counted = sends?.window_opened_at.getTime() ?? 0
    if (!sends || counted < w.openedAt.getTime()) return 0
    return counted === w.openedAt.getTime() || sends.quota >= w.quota ? sends.sent : w.quota
  }
  // the first with quota left, as the outbox counts (else the last, used up)
  const window = windows.find((w) => sentIn(w) < w.quota) ?? windows[windows.length - 1]
  const message = windows.find((w) => w.kind === MESSAGE_WINDOW.kind)
  let custom = reach(member.openid, 'custom')
  if (!custom && message && sentIn(message) >= message.quota)
    custom = { errcode: 45047, reason: 'window quota used up' }
  return {
    template: reach(member.openid, 'template'),
    custom,
    windowKind: window?.kind ?? null,
    windowClosesAt: window ? new Date(window.openedAt.getTime() + window.ms) : null,
    windowSent: window ? sentIn(window) : 0,
    windowQuota: window?.quota ?? MESSAGE_WINDOW.quota,
    optedOut: member.marketing_opt_out,
  }
}
