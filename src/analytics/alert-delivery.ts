/**
 * Delivering an alert to the moderators: a customer-service text through the outbox to each
 * moderator who is a follower of the account — an `oa` moderator, or a WeCom moderator linked to a
 * follower with 绑定 — and wrote to it within the 48-hour window (the outbox still enforces the
 * window and its 5-message quota, and skips who cannot be reached); and a post through the group
 * robots of the moderators' chats. What it reached is stored on the alert (`delivery`).
 */
import type { Kysely } from 'kysely'
import { announceToRobots, type GroupRobots } from '../community/moderation.js'
import { notifyMember } from '../community/notify.js'
import type { Database } from '../db/schema.js'
import { CUSTOM_WINDOW_MS } from '../wechat/api/messages.js'

/** What one delivery reached. */
export interface AlertDelivery {
  /** Moderators a notice was queued for (their openids). */
  members: string[]
  robots: { chatId: string; status: 'sent' | 'rate_limited' | 'failed'; error?: string }[]
}

/**
 * The robot chats alerts go to: `robotChats` when the account set them (those with a configured
 * robot), else every configured robot whose chat has a moderator scoped to it.
 */
export async function alertRobotChats(
  db: Kysely<Database>,
  robots: GroupRobots,
  robotChats: string[] | null,
): Promise<string[]> {
  const configured = Object.keys(robots.keys)
  if (robotChats) return robotChats.filter((c) => configured.includes(c))
  if (configured.length === 0) return []
  const rows = await db
    .selectFrom('moderators')
    .select('scope')
    .distinct()
    .where('scope', 'in', configured)
    .execute()
  return configured.filter((c) => rows.some((r) => r.scope === c))
}

/** The account's moderators who can be reached with a customer-service message now. */
export async function reachableModerators(
  db: Kysely<Database>,
  appid: string,
  now: Date,
): Promise<string[]> {
  const rows = await db
    .selectFrom('members as m')
    .select('m.openid')
    .where('m.appid', '=', appid)
    .where('m.subscribed', '=', true)
    .where('m.last_inbound_at', '>', new Date(now.getTime() - CUSTOM_WINDOW_MS))
    .where((eb) =>
      eb.or([
        eb(
          'm.openid',
          'in',
          eb.selectFrom('moderators').select('external_id').where('channel', '=', 'oa'),
        ),
        eb(
          'm.id',
          'in',
          eb
            .selectFrom('member_identities as i')
            .innerJoin('moderators as mo', (j) =>
              j.onRef('mo.channel', '=', 'i.channel').onRef('mo.external_id', '=', 'i.external_id'),
            )
            .select('i.member_id'),
        ),
      ]),
    )
    .orderBy('m.openid')
    .execute()
  return rows.map((r) => r.openid)
}

/** Delivers one notification of an alert (the caller won it: a new episode or a due repeat). */
export async function deliverAlert(
  db: Kysely<Database>,
  d: {
    alert: { id: number; appid: string; notifications: number }
    text: string
    robots: GroupRobots
    robotChats: string[] | null
    /** False for an account that cannot send (no outbox worker): robots only. */
    members?: boolean
    now: Date
  },
): Promise<AlertDelivery> {
  const members: string[] = []
  const reachable = d.members === false ? [] : await reachableModerators(db, d.alert.appid, d.now)
  for (const openid of reachable) {
    const queued = await notifyMember(db, {
      appid: d.alert.appid,
      openid,
      // One notice per member and notification of the episode.
      source: `alert:${d.alert.id}:${d.alert.notifications}`,
      text: d.text,
      now: d.now,
    })
    if (queued) members.push(openid)
  }
  const robots: AlertDelivery['robots'] = []
  for (const chatId of await alertRobotChats(db, d.robots, d.robotChats))
    robots.push(...(await announceToRobots(db, d.robots, { chatId, text: d.text, now: d.now })))
  const delivery: AlertDelivery = { members, robots }
  await db
    .updateTable('alerts')
    .set({ delivery: JSON.stringify(delivery) })
    .where('id', '=', d.alert.id)
    .execute()
  return delivery
}
