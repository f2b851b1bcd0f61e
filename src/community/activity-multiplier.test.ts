/**
 * An activity's points are multiplied by the member's level, as a check-in's are: the level perks
 * say 签到与活动积分 N 倍 (金牌 3 倍).
 */
import { type Kysely, sql } from 'kysely'
import { expect, it } from 'vitest'
import * as m0084 from '../../migrations/0084_activity_descriptions_base_points.js'
import { forEachDatabase } from '../../test/databases.js'
import { expectLedgerInvariant } from '../../test/points-invariant.js'
import { awardParticipants, DEFAULT_ACTIVITIES, ensureDefaultActivities } from './activities.js'
import { applyDelta, withMemberLocked } from './points-ledger.js'

const TZ = 'Asia/Shanghai'
const APPID = 'wxactmultiplier00001'

forEachDatabase('activity points × the level multiplier', (get) => {
  it('awards a gold member 3× and a bronze member 1× an activity’s points', async () => {
    const db = get().db
    const now = new Date('2026-11-05T02:00:00Z')
    const ids: number[] = []
    for (const openid of ['o_act_gold', 'o_act_bronze'])
      ids.push(
        Number(
          (
            await db
              .insertInto('members')
              .values({ appid: APPID, openid, subscribed: true, first_seen_at: now })
              .returning('id')
              .executeTakeFirstOrThrow()
          ).id,
        ),
      )
    const [gold, bronze] = ids as [number, number]
    await withMemberLocked(db, gold, (trx, m) =>
      applyDelta(
        trx,
        m,
        {
          appid: APPID,
          memberId: gold,
          rule: 'grant',
          idempotencyKey: 'act-gold',
          now,
          timeZone: TZ,
        },
        6000,
      ),
    )
    await ensureDefaultActivities(db, APPID, now)
    const activity = await db
      .selectFrom('activities')
      .select(['key', 'points'])
      .where('appid', '=', APPID)
      .where('points', '=', 10)
      .executeTakeFirstOrThrow()
    const results = await awardParticipants(db, {
      appid: APPID,
      key: activity.key,
      period: '2026-11-05',
      memberIds: [gold, bronze],
      now,
      timeZone: TZ,
    })
    expect(results).toEqual([
      { memberId: gold, status: 'applied', points: 30 },
      { memberId: bronze, status: 'applied', points: 10 },
    ])
    const balances = await db
      .selectFrom('members')
      .select(['id', 'points_balance', 'level'])
      .where('id', 'in', [gold, bronze])
      .orderBy('id')
      .execute()
    expect(balances).toEqual([
      { id: gold, points_balance: 6030, level: 'gold' },
      { id: bronze, points_balance: 10, level: 'bronze' },
    ])
    await expectLedgerInvariant(db)
  })
  it('rewrites a seeded description that promised a fixed figure; an edited one stays (0084)', async () => {
    const db = get().db
    const now = new Date('2026-11-05T02:00:00Z')
    const rows = [
      ['wxactseeded00000001', 'topic', '每周三晚 8 点开聊，参与讨论得 10 积分'],
      ['wxactseeded00000001', 'share', '每周五分享你买到的好物，得 15 积分（需有购买记录）'],
      ['wxactseeded00000001', 'contest', '每月 1 日开启评选，入选得 50 积分'],
      ['wxactseeded00000002', 'topic', '周三晚上聊天，来了就送 10 积分'],
      // seeded text, but the owner made it worth 20: "基础 10 分" would be wrong, so it stays
      ['wxactseeded00000003', 'topic', '每周三晚 8 点开聊，参与讨论得 10 积分'],
    ] as const
    await db
      .insertInto('activities')
      .values(
        rows.map(([appid, key, description]) => ({
          ...DEFAULT_ACTIVITIES.find((a) => a.key === key)!,
          ...(appid === 'wxactseeded00000003' && { points: 20 }),
          appid,
          description,
          status: 'open' as const,
          created_at: now,
        })),
      )
      .execute()
    const described = async () =>
      (
        await sql<{ appid: string; key: string; description: string }>`
          select appid, key, description from activities
          where appid like 'wxactseeded%' order by appid, key`.execute(db)
      ).rows.map((r) => [r.appid, r.key, r.description])
    await m0084.up(db as unknown as Kysely<unknown>)
    const seeded = (key: string) => DEFAULT_ACTIVITIES.find((a) => a.key === key)!.description
    expect(await described()).toEqual([
      ['wxactseeded00000001', 'contest', seeded('contest')],
      ['wxactseeded00000001', 'share', seeded('share')],
      ['wxactseeded00000001', 'topic', seeded('topic')],
      ['wxactseeded00000002', 'topic', '周三晚上聊天，来了就送 10 积分'],
      ['wxactseeded00000003', 'topic', '每周三晚 8 点开聊，参与讨论得 10 积分'],
    ])
    // what is seeded now names the base the multiplier applies to, never a figure alone
    for (const a of DEFAULT_ACTIVITIES.filter((x) => x.points > 0))
      expect(a.description).toContain(`基础 ${a.points} 分，乘你的等级倍数`)
    await m0084.down(db as unknown as Kysely<unknown>)
    expect((await described()).map((r) => r[2])).toEqual(
      [rows[2], rows[1], rows[0], rows[3], rows[4]].map((r) => r[2]),
    )
  })
})
