/**
 * A follower's unionid, learned from `user/info` and stored on their member row. WeChat gives it
 * only when the account is bound to an Open Platform account; it is what links a follower to the
 * same person as a WeCom contact or a mini-program user, so "invited once, never a self-invite,
 * never a returning member" holds for the person, not only for one openid.
 */
import type { Kysely } from 'kysely'
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
