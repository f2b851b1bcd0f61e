/**
 * An activity's points are multiplied by the member's level, as a check-in's are: the level perks
 * say 签到与活动积分 N 倍 (金牌 3 倍).
 */
import { expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { expectLedgerInvariant } from '../../test/points-invariant.js'
import { awardParticipants, ensureDefaultActivities } from './activities.js'
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
})
