/**
 * Telling a member something outside a reply (points from an operator, an invite reward, a
 * purchase): a customer-service text through the outbox, in the caller's transaction. The outbox
 * skips members outside the 48-hour window or otherwise unreachable, and `source` makes each
 * notice at most once per member. A member who follows no official account (under the mini
 * program's appid, or a WeCom contact's) has no OA chat: nothing is enqueued for them
 * (outbox-accounts.ts).
 */
import type { Kysely } from 'kysely'
import type { Translate } from '../bot/i18n.js'
import type { Database, OutboxLane } from '../db/schema.js'
import { enqueue } from './outbox.js'
import type { LedgerOutcome } from './points-ledger.js'

/**
 * Enqueues a customer-service text to one member; false if `source` was used for them before, or
 * their appid is not an official account's.
 */
export async function notifyMember(
  db: Kysely<Database>,
  n: {
    appid: string
    openid: string
    source: string
    text: string
    now: Date
    /** Default: notice. Marketing (an invitation nobody asked for) goes in the campaign lane. */
    lane?: OutboxLane
    /** Not sent from then on (a reminder of a time: stored expired instead). */
    expiresAt?: Date
  },
): Promise<boolean> {
  const added = await enqueue(
    db,
    [
      {
        appid: n.appid,
        source: n.source,
        openid: n.openid,
        kind: 'custom',
        lane: n.lane,
        expiresAt: n.expiresAt,
        payload: { msgtype: 'text', text: { content: n.text } },
      },
    ],
    n.now,
  )
  return added > 0
}

/** The level-up line for an applied ledger outcome, or null when the level did not change. */
export function levelUpLine(outcome: LedgerOutcome, t: Translate): string | null {
  if (outcome.status !== 'applied' || !outcome.levelUp) return null
  const to = outcome.levelUp.to
  return t('points.levelUp', { level: t(`level.${to.key}`), multiplier: to.multiplier })
}
