/**
 * 社群 as an operator reads it: the groups the engine has seen members in (`group_members`: WeCom
 * customer groups as joins are credited, internal groups as members speak) with their counts, the
 * moderators the bot checks (`moderators`, every source; the account's, see {@link listModerators}), and the inviters' WeCom join QRs
 * (`wecom_join_ways`). Each list is a page (`offset`, at most {@link COMMUNITY_PAGE} rows).
 */
import { type Kysely, sql } from 'kysely'
import type { Database } from '../../db/schema.js'

/** Rows on one page of a list. */
export const COMMUNITY_PAGE = 50

/** A page of rows, and whether there are more after it. */
export interface Paged<T> {
  rows: T[]
  more: boolean
}

const page = <T>(rows: T[], limit: number): Paged<T> => ({
  rows: rows.slice(0, limit),
  more: rows.length > limit,
})

/** A group and who the engine has seen in it. */
export interface GroupRow {
  channel: string
  chatId: string
  /** Members seen in the group (any account, WeCom contacts too). */
  members: number
  /** Of them, the account's own followers (announcements reach them through the OA). */
  followers: number
  /** Moderators scoped to this group (`*` ones not counted). */
  moderators: number
  lastSeenAt: Date
}

/** The groups, largest first. */
export async function listGroups(
  db: Kysely<Database>,
  appid: string,
  o: { offset?: number; limit?: number } = {},
): Promise<Paged<GroupRow>> {
  const limit = o.limit ?? COMMUNITY_PAGE
  const rows = await db
    .selectFrom('group_members as g')
    .innerJoin('members as m', 'm.id', 'g.member_id')
    .select((eb) => [
      'g.channel',
      'g.chat_id',
      eb.fn.countAll<string>().as('members'),
      sql<string>`count(*) filter (where ${eb.ref('m.appid')} = ${appid})`.as('followers'),
      eb.fn.max('g.last_seen_at').as('last_seen_at'),
      eb
        .selectFrom('moderators as mo')
        .select((s) => s.fn.countAll<string>().as('n'))
        .whereRef('mo.scope', '=', 'g.chat_id')
        .as('moderators'),
    ])
    .groupBy(['g.channel', 'g.chat_id'])
    .orderBy('members', 'desc')
    .orderBy('g.chat_id')
    .orderBy('g.channel')
    .offset(o.offset ?? 0)
    .limit(limit + 1)
    .execute()
  return page(
    rows.map((r) => ({
      channel: r.channel,
      chatId: r.chat_id,
      members: Number(r.members),
      followers: Number(r.followers),
      moderators: Number(r.moderators ?? 0),
      lastSeenAt: new Date(r.last_seen_at),
    })),
    limit,
  )
}

/** A moderator as the bot checks them (`isModerator`: channel, external id, scope). */
export interface ModeratorRow {
  /** `oa` (an openid), `wecom_aibot` (a WeCom userid), `bridge:<id>`. */
  channel: string
  externalId: string
  /** A chat id, or `*`: every group and the OA chat. */
  scope: string
  role: 'moderator' | 'admin'
  /** `config` (MODERATORS, replaced at start), `wecom` (a group's owner and admins), `console`. */
  source: string
}

/**
 * The account's moderators, by channel, id and scope: its followers' (`oa` rows whose openid is a
 * member of `appid`) and the deployment's (`wecom_aibot`, `bridge:<id>`: they moderate every
 * account). Another account's `oa` moderators are not listed.
 */
export async function listModerators(
  db: Kysely<Database>,
  appid: string,
  o: { offset?: number; limit?: number } = {},
): Promise<Paged<ModeratorRow>> {
  const limit = o.limit ?? COMMUNITY_PAGE
  const rows = await db
    .selectFrom('moderators as mo')
    .selectAll('mo')
    .where((eb) =>
      eb.or([
        eb('mo.channel', '<>', 'oa'),
        eb.exists(
          eb
            .selectFrom('members as m')
            .select('m.id')
            .where('m.appid', '=', appid)
            .whereRef('m.openid', '=', 'mo.external_id'),
        ),
      ]),
    )
    .orderBy('mo.channel')
    .orderBy('mo.external_id')
    .orderBy('mo.scope')
    .offset(o.offset ?? 0)
    .limit(limit + 1)
    .execute()
  return page(
    rows.map((r) => ({
      channel: r.channel,
      externalId: r.external_id,
      scope: r.scope,
      role: r.role,
      source: r.source,
    })),
    limit,
  )
}

/** An inviter's WeCom join QR: its `state` is their invite scene. */
export interface JoinWayRow {
  openid: string
  configId: string
  qrCode: string
  state: string
  createdAt: Date
}

/** The account's inviters' join QRs, newest first. */
export async function listJoinWays(
  db: Kysely<Database>,
  appid: string,
  o: { offset?: number; limit?: number } = {},
): Promise<Paged<JoinWayRow>> {
  const limit = o.limit ?? COMMUNITY_PAGE
  const rows = await db
    .selectFrom('wecom_join_ways as w')
    .innerJoin('members as m', 'm.id', 'w.member_id')
    .select(['m.openid', 'w.config_id', 'w.qr_code', 'w.state', 'w.created_at'])
    .where('m.appid', '=', appid)
    .orderBy('w.created_at', 'desc')
    .orderBy('w.member_id', 'desc')
    .offset(o.offset ?? 0)
    .limit(limit + 1)
    .execute()
  return page(
    rows.map((r) => ({
      openid: r.openid,
      configId: r.config_id,
      qrCode: r.qr_code,
      state: r.state,
      createdAt: new Date(r.created_at),
    })),
    limit,
  )
}
