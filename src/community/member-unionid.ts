/**
 * A follower's unionid, learned from `user/info` and stored on their member row. WeChat gives it
 * only when the account is bound to an Open Platform account; it is what links a follower to the
 * same person as a WeCom contact or a mini-program user, so "invited once, never a self-invite,
 * never a returning member" holds for the person, not only for one openid.
 */
import type { Kysely, Transaction } from 'kysely'
import type { Database, Member } from '../db/schema.js'
import type { ApiClient } from '../wechat/api/client.js'
import { getUserInfo } from '../wechat/api/users.js'

/**
 * The member with their unionid: the stored one, else the one `user/info` reports (stored, once:
 * an existing unionid is never overwritten), else the member as it is (the account is not bound).
 * Throws what the API call throws; callers decide whether an unknown unionid may go on.
 * @example const inviter = await learnUnionid(db, api, inviter)
 */
export async function learnUnionid<M extends Pick<Member, 'id' | 'openid' | 'unionid'>>(
  db: Kysely<Database>,
  api: ApiClient,
  member: M,
): Promise<M> {
  if (member.unionid) return member
  const info = await getUserInfo(api, member.openid)
  if (!info.unionid) return member
  await db
    .updateTable('members')
    .set({ unionid: info.unionid })
    .where('id', '=', member.id)
    .where('unionid', 'is', null)
    .execute()
  return Object.assign({}, member, { unionid: info.unionid })
}

/**
 * Whether the person behind `member` was a member before it: another member row with its unionid
 * (a WeCom contact, a mini-program customer, a follower of another account) first seen before
 * `member` was. False while its unionid is unknown. What makes a follow through an invite code by
 * someone the community knew under another row "not new" (invites.ts), as a group join found by
 * unionid is (group-joins.ts).
 */
export async function knownBefore(
  db: Kysely<Database> | Transaction<Database>,
  member: Pick<Member, 'id' | 'unionid' | 'first_seen_at'>,
): Promise<boolean> {
  if (!member.unionid) return false
  const earlier = await db
    .selectFrom('members')
    .select('id')
    .where('unionid', '=', member.unionid)
    .where('id', '<>', member.id)
    .where('first_seen_at', '<', member.first_seen_at)
    .limit(1)
    .executeTakeFirst()
  return earlier !== undefined
}
