/**
 * Customer-group joins credited to inviters. Each inviter gets one WeCom join way (a QR into the
 * configured groups) whose `state` is their invite scene, reused for every share (join-ways.ts).
 * When WeCom says
 * members were added to a group, `groupchat/get` tells each new external member's `state`; the
 * member is found by unionid (an OA follower) or recorded as a WeCom contact, and the join goes
 * through the same attribution as an OA follow — once per person, never a self-invite, never a
 * returning member.
 */
import type { Kysely } from 'kysely'
import type { Database, Member } from '../db/schema.js'
import type { ApiClient } from '../wechat/api/client.js'
import { isTransient } from '../wechat/api/errors.js'
import { groupChatGet } from '../wecom/contact.js'
import { type Attribution, attributeInvite, type InviteContext } from './invites.js'
import { learnUnionid } from './member-unionid.js'
import { seenInGroup } from './moderation.js'

/** The channel name of WeCom customer groups in `group_members`. */
export const CUSTOMER_CHANNEL = 'wecom_customer'

/** Members who left a group are no longer its members (announcements, group rankings). */
export async function leaveGroup(
  db: Kysely<Database>,
  g: { channel: string; chatId: string; memberIds: number[] },
) {
  if (g.memberIds.length === 0) return 0
  const gone = await db
    .deleteFrom('group_members')
    .where('channel', '=', g.channel)
    .where('chat_id', '=', g.chatId)
    .where('member_id', 'in', g.memberIds)
    .executeTakeFirst()
  return Number(gone.numDeletedRows)
}

/** A WeCom external contact to find or record as a member. */
interface ContactInput {
  corpId: string
  userid: string
  unionid?: string
  now: Date
  /**
   * When the event naming the contact was first received (default `now`): contacts are recorded
   * as first seen then, and one recorded then — by an earlier attempt at this event that failed
   * after it, before WeCom's retry — is still new.
   */
  receivedAt?: Date
}

/**
 * The member behind a WeCom external contact: the follower with its unionid, else its own row; the
 * contact's id is remembered as an identity of that member (so a later leave finds them).
 */
export async function memberForContact(
  db: Kysely<Database>,
  c: ContactInput,
): Promise<{ member: Member; isNew: boolean }> {
  const found = await findContactMember(db, c)
  await db
    .insertInto('member_identities')
    .values({
      channel: CUSTOMER_CHANNEL,
      external_id: c.userid,
      member_id: found.member.id,
      linked_at: c.now,
    })
    .onConflict((oc) => oc.columns(['channel', 'external_id']).doNothing())
    .execute()
  return found
}

async function findContactMember(
  db: Kysely<Database>,
  c: ContactInput,
): Promise<{ member: Member; isNew: boolean }> {
  const appid = `wecom:${c.corpId}`
  const firstSeen = c.receivedAt ?? c.now
  // Recorded as a contact by an earlier attempt at this event (which failed after it): still new.
  const recordedBefore = (m: Member) =>
    c.receivedAt !== undefined &&
    m.appid === appid &&
    m.first_seen_at.getTime() === c.receivedAt.getTime()
  if (c.unionid) {
    const known = await db
      .selectFrom('members')
      .selectAll()
      .where('unionid', '=', c.unionid)
      .orderBy('id')
      .executeTakeFirst()
    if (known) return { member: known, isNew: recordedBefore(known) }
  }
  const inserted = await db
    .insertInto('members')
    .values({ appid, openid: c.userid, unionid: c.unionid ?? null, first_seen_at: firstSeen })
    .onConflict((oc) => oc.columns(['appid', 'openid']).doNothing())
    .returningAll()
    .executeTakeFirst()
  if (inserted) return { member: inserted, isNew: true }
  const member = await db
    .selectFrom('members')
    .selectAll()
    .where('appid', '=', appid)
    .where('openid', '=', c.userid)
    .executeTakeFirstOrThrow()
  return { member, isNew: recordedBefore(member) }
}

/**
 * Credits the external members who just joined a group: those named by the event (`userids`), or,
 * when it names none, those who joined since `since` (unix seconds).
 */
export async function creditGroupJoins(
  db: Kysely<Database>,
  api: ApiClient,
  o: {
    corpId: string
    codeAppid: string
    chatId: string
    userids: string[] | null
    since: number
    /** When the event was first received (default `now`; see {@link memberForContact}). */
    receivedAt?: Date
    /**
     * The OA API client of an inviter's account, to learn their unionid (user/info) when a joiner
     * comes with one and the inviter has none stored. Without a client it cannot be known.
     */
    oaApi?: (appid: string) => ApiClient | undefined
  } & InviteContext,
): Promise<{ userid: string; result: Attribution['status'] }[]> {
  const group = await groupChatGet(api, o.chatId)
  const joined = group.member_list.filter(
    (m) => m.type === 2 && (o.userids ? o.userids.includes(m.userid) : m.join_time >= o.since),
  )
  const results: { userid: string; result: Attribution['status'] }[] = []
  for (const m of joined) {
    // Every joiner is a member of the group (announcements reach them), invited or not.
    const { member, isNew } = await memberForContact(db, {
      corpId: o.corpId,
      userid: m.userid,
      unionid: m.unionid,
      now: o.now,
      receivedAt: o.receivedAt,
    })
    await seenInGroup(db, {
      channel: CUSTOMER_CHANNEL,
      chatId: o.chatId,
      memberId: member.id,
      now: o.now,
    })
    if (!m.state) {
      results.push({ userid: m.userid, result: 'not_invite' })
      continue
    }
    const r = await attributeInvite(db, {
      invitee: member,
      scene: m.state,
      isNew,
      source: 'group_join',
      codeAppid: o.codeAppid,
      inviterUnionid: (inviter) => inviterUnionid(db, o.oaApi?.(inviter.appid), inviter),
      now: o.now,
      timeZone: o.timeZone,
      settings: o.settings,
      t: o.t,
    })
    results.push({ userid: m.userid, result: r.status })
  }
  return results
}

/**
 * The inviter's unionid from user/info (stored), for the self check. WeChat's definite answer
 * without one, or an error it would repeat (no permission …), means it cannot be known: null. A
 * transient failure (timeout, busy) is thrown, so the event fails and WeCom's retry tries again:
 * a member joining through their own QR is never paid as their own invitee on a guess.
 */
async function inviterUnionid(
  db: Kysely<Database>,
  api: ApiClient | undefined,
  inviter: Member,
): Promise<string | null> {
  if (!api) return null
  try {
    return (await learnUnionid(db, api, inviter)).unionid
  } catch (error) {
    if (isTransient(error)) throw error
    return null
  }
}
