/**
 * 排行榜: top members by points earned in the week of `now` (Monday through Sunday, community
 * time; asked with a past `now`, that week's board) or all time (lifetime earned), with the
 * asker's own rank. Earned points only — spending does not move anyone down, nor does a refund:
 * the week board counts what was earned in the week, so a purchase refunded later stays on the
 * board of the week its points were released (lifetime, the all-time board, drops).
 * Ties share a rank (1, 2, 2, 4). In a group, only the members seen in that group are ranked.
 */
import { type Kysely, sql } from 'kysely'
import type { Database } from '../db/schema.js'
import { addDays, localDay, weekStart } from './community-time.js'

export type LeaderboardPeriod = 'week' | 'all'

export interface LeaderboardEntry {
  rank: number
  memberId: number
  openid: string
  /** The member's chosen name (`昵称`), if any. */
  displayName: string | null
  points: number
}

/** The top `limit` and the asker's place (null when they have earned nothing in the period). */
export async function leaderboard(
  db: Kysely<Database>,
  q: {
    appid: string
    period: LeaderboardPeriod
    memberId: number
    now: Date
    timeZone: string
    limit?: number
    /** Only the linked members seen in this group (`group_members`). */
    group?: { channel: string; chatId: string }
  },
): Promise<{ entries: LeaderboardEntry[]; me: { rank: number; points: number } | null }> {
  // the week containing `now`, Monday through Sunday: a past week's board leaves out the days after
  const monday = weekStart(localDay(q.now, q.timeZone))
  const scores =
    q.period === 'all'
      ? db
          .selectFrom('members')
          .select(['id as member_id', 'points_lifetime as points'])
          .where('appid', '=', q.appid)
          .where('points_lifetime', '>', 0)
      : db
          .selectFrom('points_ledger')
          .select(['member_id', sql<number>`sum(earned)::int`.as('points')])
          .where('appid', '=', q.appid)
          .where('day', '>=', monday)
          .where('day', '<', addDays(monday, 7))
          // what was earned in the week: not a refund's taking back (negative `earned`) of points
          // earned in an earlier week, nor a 绑定's lifetime move (`delta` 0, migrations/0082)
          .where('earned', '>', 0)
          .where('delta', '<>', 0)
          .groupBy('member_id')
  const ranked = db
    .with('scores', () => scores)
    .selectFrom('scores')
    .innerJoin('members', 'members.id', 'scores.member_id')
    .$if(q.group !== undefined, (qb) =>
      qb.where(({ exists, selectFrom }) =>
        exists(
          selectFrom('group_members as g')
            .select('g.member_id')
            .whereRef('g.member_id', '=', 'scores.member_id')
            .where('g.channel', '=', q.group!.channel)
            .where('g.chat_id', '=', q.group!.chatId),
        ),
      ),
    )
    .select([
      'scores.member_id',
      'members.openid',
      'members.display_name',
      'scores.points',
      sql<number>`rank() over (order by scores.points desc)::int`.as('rank'),
    ])
  const top = await ranked
    .orderBy('rank')
    .orderBy('scores.member_id')
    .limit(q.limit ?? 10)
    .execute()
  const mine = await db
    .with('ranked', () => ranked)
    .selectFrom('ranked')
    .select(['rank', 'points'])
    .where('member_id', '=', q.memberId)
    .executeTakeFirst()
  return {
    entries: top.map((r) => ({
      rank: r.rank,
      memberId: r.member_id,
      openid: r.openid,
      displayName: r.display_name,
      points: r.points,
    })),
    me: mine ? { rank: mine.rank, points: mine.points } : null,
  }
}
