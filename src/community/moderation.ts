/**
 * Moderators and group announcements. A moderator is a channel identity (`oa` + openid, or
 * `wecom_aibot` + WeCom userid) with a scope: one group's chat id, or `*` for every group and the
 * OA chat. Configuration seeds them (MODERATORS), replacing what it seeded before. Announcements go
 * to internal groups through their group-robot webhooks — at most 20 a minute per robot, a bucket
 * shared in the database — and to the group's linked followers through the outbox.
 */
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.js'
import { notifyMember } from './notify.js'
import { takeTokens } from './outbox.js'
import { claimRobotPost, recordRobotPost, releaseRobotPost } from './robot-posts.js'

/** Who is speaking, on which channel and in which group. */
export interface ChannelIdentity {
  /** `oa`, `wecom_aibot`, `bridge:<id>`. */
  kind: string
  externalId: string
  chatId?: string
  /**
   * Whether the speaker holds a `*`-scope role on this channel, when the push's claim statement
   * already read it (official-account pushes): {@link isModerator} answers from it without a query
   * where no chat narrows the scope.
   */
  moderator?: boolean
}

export interface ModeratorConfig {
  channel: string
  id: string
  /** A chat id; absent = everywhere. */
  chat?: string
  role?: 'moderator' | 'admin'
}

/** Replaces the configured moderators with `list` (others — e.g. from WeCom — stay). */
export async function seedModerators(db: Kysely<Database>, list: ModeratorConfig[]) {
  await db.transaction().execute(async (trx) => {
    await trx.deleteFrom('moderators').where('source', '=', 'config').execute()
    if (list.length === 0) return
    await trx
      .insertInto('moderators')
      .values(
        list.map((m) => ({
          channel: m.channel,
          external_id: m.id,
          scope: m.chat ?? '*',
          role: m.role ?? 'moderator',
          source: 'config',
        })),
      )
      .onConflict((oc) => oc.columns(['channel', 'external_id', 'scope']).doNothing())
      .execute()
  })
}

/**
 * Makes a customer group's owner (admin) and admins (moderators) its moderators, as WeCom reports
 * them (groupchat/get), replacing what was recorded for that group before; none after `dismiss`.
 */
export async function syncGroupModerators(
  db: Kysely<Database>,
  chatId: string,
  staff: { owner?: string; admins: string[] },
) {
  await db.transaction().execute(async (trx) => {
    await trx
      .deleteFrom('moderators')
      .where('source', '=', 'wecom')
      .where('scope', '=', chatId)
      .execute()
    const rows = [
      ...(staff.owner ? [{ id: staff.owner, role: 'admin' as const }] : []),
      ...staff.admins
        .filter((a) => a !== staff.owner)
        .map((id) => ({ id, role: 'moderator' as const })),
    ]
    if (rows.length === 0) return
    await trx
      .insertInto('moderators')
      .values(
        rows.map((r) => ({
          channel: 'wecom_aibot',
          external_id: r.id,
          scope: chatId,
          role: r.role,
          source: 'wecom',
        })),
      )
      .onConflict((oc) => oc.columns(['channel', 'external_id', 'scope']).doNothing())
      .execute()
  })
}

/** Whether the speaker may moderate here (their group, or everywhere). */
export async function isModerator(db: Kysely<Database>, who: ChannelIdentity): Promise<boolean> {
  if (who.moderator !== undefined && who.chatId === undefined) return who.moderator
  const row = await db
    .selectFrom('moderators')
    .select('role')
    .where('channel', '=', who.kind)
    .where('external_id', '=', who.externalId)
    .where('scope', 'in', who.chatId ? ['*', who.chatId] : ['*'])
    .executeTakeFirst()
  return row !== undefined
}

/** Remembers that a linked member spoke in a group. */
export async function seenInGroup(
  db: Kysely<Database>,
  g: { channel: string; chatId: string; memberId: number; now: Date },
) {
  await db
    .insertInto('group_members')
    .values({ channel: g.channel, chat_id: g.chatId, member_id: g.memberId, last_seen_at: g.now })
    .onConflict((oc) =>
      oc.columns(['channel', 'chat_id', 'member_id']).doUpdateSet({ last_seen_at: g.now }),
    )
    .execute()
}

/** Group robots by chat id (their webhook keys), and where to post. */
export interface GroupRobots {
  keys: Record<string, string>
  baseUrl: string
  fetch?: typeof fetch
}

/** What an announcement reached. */
export interface AnnouncementResult {
  robots: { chatId: string; status: 'sent' | 'rate_limited' | 'failed'; error?: string }[]
  followers: number
}

/**
 * Posts `text` through group robots (all, or the one of `chatId`), 20 a minute per robot. With a
 * `source`, each group's post is claimed first (robot-posts.ts): a retry of the same announcement
 * gets what the first attempt got instead of posting again.
 */
export async function announceToRobots(
  db: Kysely<Database>,
  robots: GroupRobots,
  a: { chatId?: string; text: string; now: Date; source?: string },
): Promise<AnnouncementResult['robots']> {
  const chats = a.chatId ? [a.chatId] : Object.keys(robots.keys)
  const out: AnnouncementResult['robots'] = []
  for (const chatId of chats) {
    const key = robots.keys[chatId]
    if (!key) continue
    const post = a.source === undefined ? undefined : { source: a.source, chatId }
    const earlier = post && (await claimRobotPost(db, post, a.now))
    if (earlier) {
      out.push({ chatId, ...earlier })
      continue
    }
    const granted = await takeTokens(
      db,
      `robot:${key}`,
      1,
      { perSecond: 20 / 60, burst: 20 },
      a.now,
    )
    if (granted < 1) {
      if (post) await releaseRobotPost(db, post)
      out.push({ chatId, status: 'rate_limited' })
      continue
    }
    let result: AnnouncementResult['robots'][number]
    /** WeCom answered with an error: not posted, for certain. */
    let refused = false
    try {
      const res = await (robots.fetch ?? fetch)(
        `${robots.baseUrl}/cgi-bin/webhook/send?key=${encodeURIComponent(key)}`,
        {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ msgtype: 'text', text: { content: a.text } }),
          signal: AbortSignal.timeout(5000),
        },
      )
      const body = (await res.json()) as { errcode?: number; errmsg?: string }
      refused = typeof body.errcode === 'number' && body.errcode !== 0
      result =
        body.errcode === 0
          ? { chatId, status: 'sent' }
          : { chatId, status: 'failed', error: `${body.errcode} ${body.errmsg}` }
    } catch (error) {
      result = { chatId, status: 'failed', error: String(error) }
    }
    if (post && refused) await releaseRobotPost(db, post)
    else if (post)
      await recordRobotPost(db, post, {
        status: result.status === 'sent' ? 'sent' : 'failed',
        error: result.error,
      })
    out.push(result)
  }
  return out
}

/**
 * Announces `text` in one group (or every configured group when `chatId` is absent): to its robot
 * webhook, within 20 messages a minute per robot, and to its linked followers via the outbox. Once
 * per `source` (the message that announced): a retry of it posts and queues nothing again, and
 * reports what the first attempt reached.
 */
export async function announce(
  db: Kysely<Database>,
  robots: GroupRobots,
  a: { appid: string; chatId?: string; text: string; source: string; now: Date },
): Promise<AnnouncementResult> {
  const result: AnnouncementResult = {
    robots: await announceToRobots(db, robots, a),
    followers: 0,
  }
  let q = db
    .selectFrom('group_members')
    .innerJoin('members', 'members.id', 'group_members.member_id')
    .select('members.openid')
    .distinct()
    .where('members.appid', '=', a.appid)
  if (a.chatId) q = q.where('group_members.chat_id', '=', a.chatId)
  for (const f of await q.execute()) {
    // queued now, or by an earlier attempt at this announcement (its source): counted either way
    await notifyMember(db, {
      appid: a.appid,
      openid: f.openid,
      source: a.source,
      text: a.text,
      now: a.now,
    })
    result.followers++
  }
  return result
}
