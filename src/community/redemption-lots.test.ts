/**
 * A cancelled redemption gives its points back to the lots they were spent from, with their expiry
 * (migrations/0082): returning them as a new lot started their expiry over, so redeeming and
 * cancelling (or not confirming a cashback) renewed points about to expire.
 */
import { expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { expectLedgerInvariant } from '../../test/points-invariant.js'
import { translator } from '../bot/i18n.js'
import { runPointsExpiry } from './points-expiry.js'
import { applyDelta, withMemberLocked } from './points-ledger.js'
import { cancelRedemption, ensureDefaultRewards, redeem } from './rewards.js'

const TZ = 'Asia/Shanghai'
const APPID = 'wxredeemlots00000001'
const t = translator('zh-CN')
const campaigns = { timeZone: TZ, quietHours: null }
const settings = { policy: { mode: 'days' as const, days: 30 }, noticeDays: 0 }

forEachDatabase('a cancelled redemption keeps the points’ expiry', (get) => {
  it('gives the points back to the lots they came from, which expire when they would have', async () => {
    const db = get().db
    const at = (day: string) => new Date(`${day}T02:00:00Z`)
    const id = Number(
      (
        await db
          .insertInto('members')
          .values({
            appid: APPID,
            openid: 'o_lots',
            subscribed: true,
            first_seen_at: at('2026-01-01'),
          })
          .returning('id')
          .executeTakeFirstOrThrow()
      ).id,
    )
    const grant = async (day: string, points: number) => {
      await withMemberLocked(db, id, (trx, m) =>
        applyDelta(
          trx,
          m,
          {
            appid: APPID,
            memberId: id,
            rule: 'grant',
            idempotencyKey: `lots-${day}`,
            now: at(day),
            timeZone: TZ,
          },
          points,
        ),
      )
      await runPointsExpiry(db, { now: at(day), settings, campaigns, t })
    }
    const lots = () =>
      db
        .selectFrom('points_lots')
        .select(['remaining', 'expires_at'])
        .where('member_id', '=', id)
        .orderBy('ledger_id')
        .execute()
    const balance = async () =>
      (
        await db
          .selectFrom('members')
          .select('points_balance')
          .where('id', '=', id)
          .executeTakeFirstOrThrow()
      ).points_balance
    await grant('2026-01-01', 300)
    await grant('2026-01-10', 300)
    const before = await lots()
    expect(before.map((l) => l.remaining)).toEqual([300, 300])
    // 精美礼品 (500): 300 of the lot due first, 200 of the next
    await ensureDefaultRewards(db, APPID, at('2026-01-26'))
    const r = await redeem(db, {
      appid: APPID,
      memberId: id,
      code: 2,
      now: at('2026-01-26'),
      timeZone: TZ,
    })
    if (r.status !== 'redeemed') throw new Error(r.status)
    expect((await lots()).map((l) => l.remaining)).toEqual([0, 100])
    expect(
      await cancelRedemption(db, {
        appid: APPID,
        redemptionId: r.redemptionId,
        now: at('2026-01-27'),
        timeZone: TZ,
      }),
    ).toBe('cancelled')
    await runPointsExpiry(db, { now: at('2026-01-27'), settings, campaigns, t })
    expect(await balance()).toBe(600)
    const after = await lots()
    // the two lots hold their points again, with the expiry they had; the refund's lot holds none
    expect(after.slice(0, 2)).toEqual(before)
    expect(after.slice(2).map((l) => l.remaining)).toEqual([0])
    await expectLedgerInvariant(db)
    // the first lot's day passes: its 300 expire, as they would have without the redemption
    await runPointsExpiry(db, {
      now: new Date(before[0]!.expires_at!.getTime() + 3_600_000),
      settings,
      campaigns,
      t,
    })
    expect(await balance()).toBe(300)
    await expectLedgerInvariant(db)
  })
})
