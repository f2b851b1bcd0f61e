/**
 * Purchase points that were never earned stop counting as earned (migrations/0082): a refund after
 * the release takes them from lifetime, the level and the weekly board, and a 绑定 moves the
 * mini-program member's lifetime to the follower, so a purchase gives the same level whenever the
 * 绑定 happens.
 */
import { expect, it } from 'vitest'
import { product } from '../../test/analytics-fixtures.js'
import { forEachDatabase } from '../../test/databases.js'
import { expectLedgerInvariant } from '../../test/points-invariant.js'
import { leaderboard } from '../community/leaderboard.js'
import { applyDelta, withMemberLocked } from '../community/points-ledger.js'
import { linkMiniProgramUser } from './mp-link.js'
import { grantPurchase, releaseFrozenPoints, takeBackPurchase } from './purchase-grants.js'

const TZ = 'Asia/Shanghai'
const OA = 'wxunearned0000000001'
const MP = 'wxunearnedmp00000001'
const DAY = 86_400_000
let seq = 0

forEachDatabase('purchase points that were never earned', (get) => {
  const figures = (id: number) =>
    get()
      .db.selectFrom('members')
      .select(['points_balance', 'points_frozen', 'points_lifetime', 'level'])
      .where('id', '=', id)
      .executeTakeFirstOrThrow()

  /** A paid ¥1500 order of `memberId` (`appid`) with its grant: 100 first_purchase + 1500. */
  const paid = async (appid: string, memberId: number, now: Date) => {
    const db = get().db
    const n = ++seq
    const pid = await product(db, appid, { sku: `unearned-${n}`, fen: 150000, at: now })
    const { id } = await db
      .insertInto('orders')
      .values({
        appid,
        out_trade_no: `UE${n}`,
        member_id: memberId,
        mp_openid: `mp_ue_${n}`,
        product_id: pid,
        kind: 'flash_sale',
        description: 'x',
        amount_fen: 150000,
        status: 'paid',
        expires_at: now,
        created_at: now,
        paid_at: now,
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    await db.updateTable('members').set({ purchase_count: 1 }).where('id', '=', memberId).execute()
    await withMemberLocked(db, memberId, (trx) =>
      grantPurchase(trx, {
        memberId,
        orderId: id,
        outTradeNo: `UE${n}`,
        paidFen: 150000,
        membershipDays: 0,
        now,
        timeZone: TZ,
        freezeDays: 1,
      }),
    )
    return id
  }
  const refund = (orderId: number, refundedFen: number, now: Date) =>
    get()
      .db.transaction()
      .execute((trx) =>
        takeBackPurchase(trx, {
          orderId,
          refundId: ++seq,
          outRefundNo: `UR${seq}`,
          refundedFen,
          paidFen: 150000,
          now,
        }),
      )
  const member = async (appid: string, now: Date) =>
    Number(
      (
        await get()
          .db.insertInto('members')
          .values({ appid, openid: `o_ue_${++seq}`, subscribed: true, first_seen_at: now })
          .returning('id')
          .executeTakeFirstOrThrow()
      ).id,
    )

  it('a full refund after the release takes the points back from lifetime, the level and the weekly board', async () => {
    const db = get().db
    let now = new Date('2026-11-02T02:00:00Z') // a Monday
    const id = await member(OA, now)
    const order = await paid(OA, id, now)
    now = new Date(now.getTime() + 2 * DAY)
    await releaseFrozenPoints(db, { now })
    expect(await figures(id)).toEqual({
      points_balance: 1600,
      points_frozen: 0,
      points_lifetime: 1600,
      level: 'silver',
    })
    expect(await refund(order, 150000, now)).toMatchObject({ deducted: 1600, shortfall: 0 })
    expect(await figures(id)).toEqual({
      points_balance: 0,
      points_frozen: 0,
      points_lifetime: 0,
      level: 'bronze',
    })
    const board = await leaderboard(db, {
      appid: OA,
      period: 'week',
      memberId: id,
      now,
      timeZone: TZ,
    })
    expect(board.me).toBeNull()
    expect(board.entries.map((e) => e.memberId)).not.toContain(id)
    await expectLedgerInvariant(db)
  })

  it('takes back from lifetime what was spent too (the shortfall), across partial refunds', async () => {
    const db = get().db
    let now = new Date('2026-11-09T02:00:00Z')
    const id = await member(OA, now)
    const order = await paid(OA, id, now)
    now = new Date(now.getTime() + 2 * DAY)
    await releaseFrozenPoints(db, { now })
    // 1500 of the 1600 spent
    await withMemberLocked(db, id, (trx, m) =>
      applyDelta(
        trx,
        m,
        {
          appid: OA,
          memberId: id,
          rule: 'redeem',
          idempotencyKey: `ue-spend-${id}`,
          now,
          timeZone: TZ,
        },
        -1500,
      ),
    )
    // half refunded: 800 due back, 100 there
    expect(await refund(order, 75000, now)).toMatchObject({ deducted: 100, shortfall: 700 })
    expect(await figures(id)).toMatchObject({
      points_balance: 0,
      points_lifetime: 800,
      level: 'bronze',
    })
    // the rest: nothing left to deduct, lifetime still goes down by what the order earned
    expect(await refund(order, 150000, now)).toMatchObject({ deducted: 0, shortfall: 800 })
    expect(await figures(id)).toMatchObject({
      points_balance: 0,
      points_lifetime: 0,
      level: 'bronze',
    })
    const entries = await db
      .selectFrom('points_ledger')
      .select(['delta', 'earned'])
      .where('member_id', '=', id)
      .where('rule', '=', 'purchase_refund')
      .orderBy('id')
      .execute()
    expect(entries).toEqual([
      { delta: -100, earned: -800 },
      { delta: 0, earned: -800 },
    ])
    await expectLedgerInvariant(db)
  })

  for (const releasedBeforeBind of [true, false])
    it(`a 绑定 moves the mini-program member's lifetime: the same level whether released ${releasedBeforeBind ? 'before' : 'after'} it`, async () => {
      const db = get().db
      let now = new Date('2026-11-16T02:00:00Z')
      const follower = await member(OA, now)
      const mp = await member(MP, now)
      const openid = (
        await db
          .selectFrom('members')
          .select('openid')
          .where('id', '=', mp)
          .executeTakeFirstOrThrow()
      ).openid
      await db
        .insertInto('mp_users')
        .values({ appid: MP, openid, unionid: null, member_id: mp, created_at: now })
        .execute()
      const order = await paid(MP, mp, now)
      now = new Date(now.getTime() + 2 * DAY)
      if (releasedBeforeBind) await releaseFrozenPoints(db, { now })
      const code = String(100000 + seq)
      await db
        .insertInto('binding_codes')
        .values({
          code,
          member_id: follower,
          expires_at: new Date(now.getTime() + 600_000),
          used_at: null,
          used_by: null,
        })
        .execute()
      expect(
        await linkMiniProgramUser(db, { mpAppid: MP, openid, code, now, timeZone: TZ }),
      ).toMatchObject({
        status: 'linked',
        memberId: follower,
      })
      if (!releasedBeforeBind) await releaseFrozenPoints(db, { now: new Date(now.getTime() + DAY) })
      expect(await figures(follower)).toEqual({
        points_balance: 1600,
        points_frozen: 0,
        points_lifetime: 1600,
        level: 'silver',
      })
      expect(await figures(mp)).toEqual({
        points_balance: 0,
        points_frozen: 0,
        points_lifetime: 0,
        level: 'bronze',
      })
      await expectLedgerInvariant(db)
      // a refund afterwards takes them back from the follower, lifetime and level too
      await refund(order, 150000, new Date(now.getTime() + 2 * DAY))
      expect(await figures(follower)).toMatchObject({
        points_balance: 0,
        points_lifetime: 0,
        level: 'bronze',
      })
      await expectLedgerInvariant(db)
    })
})
