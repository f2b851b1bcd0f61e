/**
 * Can this member be reached now, and if not, why: the checks the outbox makes before a send
 * (src/community/reachability.ts), plus the customer-service window's quota and the member's
 * opt-out from campaigns.
 */
import type { Kysely } from 'kysely'
import { CS_WINDOW_QUOTA } from '../../community/outbox.js'
import { loadReachability, type Unreachable } from '../../community/reachability.js'
import type { Database, Member } from '../../db/schema.js'

/** The member's reachability now, channel by channel. */
export interface MemberReachability {
  /** Template messages (notices, campaigns): null when open. */
  template: Unreachable | null
  /** Customer-service messages: null when the 48 h window is open and has quota left. */
  custom: Unreachable | null
  /** When the current window closes (48 h after the member's last message), if it is open. */
  windowClosesAt: Date | null
  /** Customer-service messages sent in the current window, of {@link CS_WINDOW_QUOTA}. */
  windowSent: number
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
  const reach = await loadReachability(db, member.appid, [member.openid], now)
  // the 48-hour window of the member's last message, if open (cs-window.ts)
  const window = reach.windows(member.openid, 'message')[0]
  const opened = window?.openedAt ?? null
  const sends = window
    ? await db
        .selectFrom('cs_window_sends')
        .select(['sent', 'window_opened_at'])
        .where('appid', '=', member.appid)
        .where('openid', '=', member.openid)
        .executeTakeFirst()
    : undefined
  // A count kept for an older window does not apply to the one the last message opened.
  const windowSent =
    sends && opened && sends.window_opened_at.getTime() >= opened.getTime() ? sends.sent : 0
  let custom = reach(member.openid, 'custom')
  if (!custom && windowSent >= CS_WINDOW_QUOTA)
    custom = { errcode: 45047, reason: 'window quota used up' }
  return {
    template: reach(member.openid, 'template'),
    custom,
    windowClosesAt: window ? new Date(window.openedAt.getTime() + window.ms) : null,
    windowSent,
    windowQuota: CS_WINDOW_QUOTA,
    optedOut: member.marketing_opt_out,
  }
}
