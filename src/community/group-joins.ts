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
import { memberByIdentity } from './identities.js'
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

/** An external contact (a WeCom customer, a bridged personal-WeChat contact) to find or record. */
export interface ContactInput {
  /** The namespace of the contact's id in `member_identities` (`wecom_customer`, `bridge:<id>`). */
  channel: string
  /** The `appid` of the contact's own member row, when it is recorded as one (`wecom:<corpid>`, …). */
  appid: string
  /** The contact's id on the channel. */
  externalId: string
  /** A unionid the caller vouches for (WeCom's, a trusted bridge's): the follower who has it. */
  unionid?: string
  /**
   * Whether a contact recorded as its own row is linked to it as an identity: yes for WeCom (its
   * external userid is stable, a later leave finds it so); no for a bridge, whose contacts act as a
   * member only once linked by a 绑定 code or a trusted unionid.
   */
  linkOwnRow: boolean
  now: Date
  /**
   * When the event naming the contact was first received (default `now`): contacts are recorded
   * as first seen then, and one recorded then — by an earlier attempt at this event that failed
   * after it, before the sender's retry — is still new.
   */
  receivedAt?: Date
}

/** The WeCom customer (external userid) `userid` of the corp `corpId`. */
export function customerContact(corpId: string, userid: string) {
  return {
    channel: CUSTOMER_CHANNEL,
    appid: `wecom:${corpId}`,
    externalId: userid,
    linkOwnRow: true,
  }
}

/**
 * The member behind an external contact — the one path every door takes (WeCom joins and adds,
 * bridge joins): the member with its unionid (the OA follower), else the member its id is already
 * linked to, else its own row (recorded now: new). A contact found by unionid is linked to that
 * member as an identity (its messages and leaves are theirs); its own row only when `linkOwnRow`.
 * `isNew` is false for anyone the community knew before this event.
 */
export async function memberForContact(
  db: Kysely<Database>,
  c: ContactInput,
): Promise<{ member: Member; isNew: boolean }> {
  const found = await findContactMember(db, c)
  if (found.member.appid !== c.appid || c.linkOwnRow)
    await db
      .insertInto('member_identities')
      .values({
        channel: c.channel,
        external_id: c.externalId,
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
  const firstSeen = c.receivedAt ?? c.now
  // Recorded as a contact by an earlier attempt at this event (which failed after it): still new.
  const recordedBefore = (m: Member) =>
    c.receivedAt !== undefined &&
    m.appid === c.appid &&
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
  const linked = await memberByIdentity(db, c.channel, c.externalId)
  if (linked) return { member: linked, isNew: recordedBefore(linked) }
  const inserted = await db
    .insertInto('members')
    .values({
      appid: c.appid,
      openid: c.externalId,
      unionid: c.unionid ?? null,
      first_seen_at: firstSeen,
    })
    .onConflict((oc) => oc.columns(['appid', 'openid']).doNothing())
    .returningAll()
    .executeTakeFirst()
  if (inserted) return { member: inserted, isNew: true }
  const member = await db
    .selectFrom('members')
    .selectAll()
    .where('appid', '=', c.appid)
    .where('openid', '=', c.externalId)
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
      ...customerContact(o.corpId, m.userid),
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
