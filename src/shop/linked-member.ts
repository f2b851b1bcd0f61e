/**
 * The member a signed-in mini-program user speaks for, read where a write decides on it.
 *
 * The session check reads the user's link (`mp_users.member_id`) without a lock, before the
 * handler runs. A 绑定 committing after that read moves the user — and their orders, points and
 * membership — to a follower's member (mp-link.ts, with the user's mp_users row held FOR UPDATE);
 * a write made with the session's member would land on the member just left. So every
 * member-scoped write of the mini-program API runs in {@link withLinkedMember}: one transaction
 * that first reads the link under the user's mp_users row (FOR SHARE, held until it ends). The
 * write then either commits before a 绑定 takes the row (as if made before it) or waits for the
 * 绑定 and lands on the follower.
 *
 * Lock order everywhere: the link (mp_users), the member, then what the write touches (orders,
 * products, group buys, …).
 */
import type { Kysely, Transaction } from 'kysely'
import type { Database } from '../db/schema.js'

/** A signed-in mini-program user, as the session check read them. */
export interface MpUser {
  mpAppid: string
  openid: string
  /** The member the session read: used only when the user has no link row (direct callers). */
  memberId: number
}

/**
 * The user a session speaks for, from its variables.
 * @example withLinkedMember(db, mpUser(shop.settings.mpAppid, c.var), write)
 */
export const mpUser = (mpAppid: string, v: { openid: string; memberId: number }): MpUser => ({
  mpAppid,
  openid: v.openid,
  memberId: v.memberId,
})

/**
 * The member `user` is linked to now, read under their mp_users row (FOR SHARE, held until `trx`
 * ends, so no 绑定 moves them meanwhile).
 */
export async function linkedMemberId(trx: Transaction<Database>, user: MpUser): Promise<number> {
  const link = await trx
    .selectFrom('mp_users')
    .select('member_id')
    .where('appid', '=', user.mpAppid)
    .where('openid', '=', user.openid)
    .forShare()
    .executeTakeFirst()
  return link?.member_id ?? user.memberId
}

/**
 * Runs `write` in one transaction with the member `user` is linked to now ({@link linkedMemberId}).
 * @example await withLinkedMember(db, user, (trx, memberId) => cancelReminder(trx, memberId, now))
 */
export async function withLinkedMember<T>(
  db: Kysely<Database>,
  user: MpUser,
  write: (trx: Transaction<Database>, memberId: number) => Promise<T>,
): Promise<T> {
  return db.transaction().execute(async (trx) => write(trx, await linkedMemberId(trx, user)))
}
