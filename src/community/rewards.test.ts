import { expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { applyDelta, withMemberLocked } from './points-ledger.js'
import { cancelRedemption, ensureDefaultRewards, listRewards, redeem } from './rewards.js'

const TZ = 'Asia/Shanghai'
const now = new Date('2026-11-24T04:00:00Z')

forEachDatabase('rewards and redemptions', (get, dbName) => {
  let n = 0
  async function member(appid: string, points: number) {
    const { id } = await get()
      .db.insertInto('members')
      .values({ appid, openid: `o_rw_${++n}`, first_seen_at: now, last_active_at: now })
      .returning('id')
      .executeTakeFirstOrThrow()
    if (points > 0) {
      await withMemberLocked(get().db, id, (trx, m) =>
        applyDelta(
          trx,
          m,
          { appid, memberId: id, rule: 'grant', idempotencyKey: `seed:${id}`, now, timeZone: TZ },
          points,
        ),
      )
    }
    return id
  }
  const state = async (id: number) =>
    get()
      .db.selectFrom('members')
      .select(['points_balance', 'points_lifetime'])
      .where('id', '=', id)
      .executeTakeFirstOrThrow()

  it('seeds the default catalog once, even when asked concurrently', async () => {
    const appid = 'wxrewards000000001'
    await Promise.all([1, 2, 3].map(() => ensureDefaultRewards(get().db, appid, now)))
    const list = await listRewards(get().db, appid)
    expect(list.map((r) => [r.code, r.name, r.cost])).toEqual([
      [1, '10元优惠券', 100],
      [2, '精美礼品', 500],
      [3, 'VIP 会员 1 个月', 1000],
      [4, '50元返现', 5000],
    ])
  })

  it('redeems within balance, stock and per-member limit, and cancelling returns the points', async () => {
    const appid = 'wxrewards000000002'
    await ensureDefaultRewards(get().db, appid, now)
    const id = await member(appid, 700)
    const r = (code: number) => redeem(get().db, { appid, memberId: id, code, now, timeZone: TZ })
    expect(await r(9)).toEqual({ status: 'not_found' })
    expect(await r(3)).toMatchObject({ status: 'insufficient', cost: 1000, balance: 700 })
    const gift = await r(2)
    expect(gift).toMatchObject({ status: 'redeemed', name: '精美礼品', cost: 500, balance: 200 })
    expect(gift.status === 'redeemed' && gift.code).toMatch(/^[A-Z0-9]{10}$/)
    expect(await r(2)).toMatchObject({ status: 'limit_reached', limit: 1 })
    expect(await state(id)).toEqual({ points_balance: 200, points_lifetime: 700 })
    if (gift.status !== 'redeemed') throw new Error('unreachable')
    expect(
      await cancelRedemption(get().db, {
        appid,
        redemptionId: gift.redemptionId,
        now,
        timeZone: TZ,
      }),
    ).toBe('cancelled')
    expect(
      await cancelRedemption(get().db, {
        appid,
        redemptionId: gift.redemptionId,
        now,
        timeZone: TZ,
      }),
    ).toBe('already_cancelled')
    // points back, not counted as earnings; stock restored; the limit counts only issued redemptions
    expect(await state(id)).toEqual({ points_balance: 700, points_lifetime: 700 })
    expect((await listRewards(get().db, appid)).find((x) => x.code === 2)!.stock).toBe(100)
    expect(await r(2)).toMatchObject({ status: 'redeemed' })
  })

  it('gives back on cancel only a unit the redemption took (redeemed unlimited, then limited to 1)', async () => {
    const appid = 'wxrewards000000009'
    await get()
      .db.insertInto('rewards')
      .values({
        appid,
        code: 8,
        name: '不限量贴纸',
        cost: 10,
        stock: null,
        per_member_limit: null,
        created_at: now,
      })
      .execute()
    const id = await member(appid, 50)
    const done = await redeem(get().db, { appid, memberId: id, code: 8, now, timeZone: TZ })
    if (done.status !== 'redeemed') throw new Error(`not redeemed: ${done.status}`)
    // the operator limits the reward to one unit left
    await get().db.updateTable('rewards').set({ stock: 1 }).where('appid', '=', appid).execute()
    const cancel = () =>
      cancelRedemption(get().db, { appid, redemptionId: done.redemptionId, now, timeZone: TZ })
    expect(await cancel()).toBe('cancelled')
    expect(await cancel()).toBe('already_cancelled')
    // no unit was taken, so none comes back: still one, not two
    expect((await listRewards(get().db, appid))[0]!.stock).toBe(1)
    expect(await state(id)).toMatchObject({ points_balance: 50 })
  })

  it('never oversells stock under concurrent redemptions', async () => {
    const appid = 'wxrewards000000003'
    await get()
      .db.insertInto('rewards')
      .values({
        appid,
        code: 7,
        name: '限量徽章',
        cost: 10,
        stock: 3,
        per_member_limit: null,
        created_at: now,
      })
      .execute()
    const ids = await Promise.all(Array.from({ length: 12 }, () => member(appid, 50)))
    const pools = dbName === 'postgres' ? [get().db, get().open()] : [get().db]
    const results = await Promise.all(
      ids.flatMap((id, i) =>
        [0, 1].map((k) =>
          redeem(pools[(i + k) % pools.length]!, {
            appid,
            memberId: id,
            code: 7,
            now,
            timeZone: TZ,
          }),
        ),
      ),
    )
    expect(results.filter((x) => x.status === 'redeemed')).toHaveLength(3)
    expect(results.filter((x) => x.status === 'out_of_stock')).toHaveLength(21)
    expect((await listRewards(get().db, appid))[0]!.stock).toBe(0)
    const spent = await get()
      .db.selectFrom('points_ledger')
      .select('delta')
      .where('appid', '=', appid)
      .where('rule', '=', 'redeem')
      .execute()
    expect(spent.map((s) => s.delta)).toEqual([-10, -10, -10])
  })

  it('records a cashback transfer with the spend, only for a member the mini program can pay', async () => {
    const appid = 'wxrewards000000004'
    const mpAppid = 'wxminiprogram00004'
    await ensureDefaultRewards(get().db, appid, now)
    expect((await listRewards(get().db, appid)).find((x) => x.code === 4)).toMatchObject({
      kind: 'cashback',
      cashback_fen: 5000,
    })
    const id = await member(appid, 6000)
    const r = (miniProgram?: { appid: string }) =>
      redeem(get().db, { appid, memberId: id, code: 4, now, timeZone: TZ, miniProgram })
    expect(await r()).toEqual({ status: 'unavailable', name: '50元返现' })
    expect(await r({ appid: mpAppid })).toEqual({ status: 'needs_mini_program', name: '50元返现' })
    expect(await state(id)).toMatchObject({ points_balance: 6000 })
    await get()
      .db.insertInto('mp_users')
      .values({ appid: mpAppid, openid: 'o_mp_rw_4', member_id: id, created_at: now })
      .execute()
    const done = await r({ appid: mpAppid })
    expect(done).toMatchObject({ status: 'redeemed', cost: 5000, balance: 1000 })
    if (done.status !== 'redeemed' || !done.cashback) throw new Error('no cashback recorded')
    expect(done.cashback.amountFen).toBe(5000)
    const transfer = await get()
      .db.selectFrom('transfers')
      .selectAll()
      .where('out_bill_no', '=', done.cashback.outBillNo)
      .executeTakeFirstOrThrow()
    expect(transfer).toMatchObject({
      appid,
      member_id: id,
      redemption_id: done.redemptionId,
      pay_appid: mpAppid,
      openid: 'o_mp_rw_4',
      amount_fen: 5000,
      state: 'pending',
    })
    // While the transfer may still pay out, an operator's cancel does not return the points.
    const cancel = () =>
      cancelRedemption(get().db, { appid, redemptionId: done.redemptionId, now, timeZone: TZ })
    expect(await cancel()).toBe('transfer_in_progress')
    expect(await state(id)).toMatchObject({ points_balance: 1000 })
    await get()
      .db.updateTable('transfers')
      .set({ state: 'success' })
      .where('id', '=', transfer.id)
      .execute()
    expect(await cancel()).toBe('paid_out')
    expect(await state(id)).toMatchObject({ points_balance: 1000 })
  })

  it('answers the redemption a message made when the message is handled again: spent once, taken once', async () => {
    const appid = 'wxrewards000000005'
    const mpAppid = 'wxminiprogram00005'
    await ensureDefaultRewards(get().db, appid, now)
    const id = await member(appid, 5300)
    await get()
      .db.insertInto('mp_users')
      .values({ appid: mpAppid, openid: 'o_mp_rw_5', member_id: id, created_at: now })
      .execute()
    const pools = dbName === 'postgres' ? [get().db, get().open()] : [get().db]
    const r = (code: number, requestKey?: string, pool = 0) =>
      redeem(pools[pool % pools.length]!, {
        appid,
        memberId: id,
        code,
        now,
        timeZone: TZ,
        miniProgram: { appid: mpAppid },
        requestKey,
      })
    const first = await r(1, 'msg:oa:gh_test:m:1')
    expect(first).toMatchObject({ status: 'redeemed', cost: 100, balance: 5200 })
    // a cashback's message handled twice at once: one redemption, one transfer, the same link
    const [a, b] = await Promise.all([r(4, 'msg:oa:gh_test:m:2', 0), r(4, 'msg:oa:gh_test:m:2', 1)])
    expect(a).toMatchObject({ status: 'redeemed', balance: 200, cashback: { amountFen: 5000 } })
    expect(b).toEqual(a)
    // the first message again, after the balance moved: its own answer, nothing spent
    expect(await r(1, 'msg:oa:gh_test:m:1')).toEqual(first)
    // another message, and a redemption made for no message, are redemptions of their own
    const third = await r(1, 'msg:oa:gh_test:m:3')
    expect(third).toMatchObject({ status: 'redeemed', balance: 100 })
    expect(third.status === 'redeemed' && first.status === 'redeemed' && third.code).not.toBe(
      first.status === 'redeemed' && first.code,
    )
    expect(await r(1)).toMatchObject({ status: 'redeemed', balance: 0 })
    const spent = await get()
      .db.selectFrom('points_ledger')
      .select('delta')
      .where('appid', '=', appid)
      .where('rule', '=', 'redeem')
      .orderBy('id')
      .execute()
    expect(spent.map((s) => s.delta)).toEqual([-100, -5000, -100, -100])
    expect(
      (await listRewards(get().db, appid)).filter((x) => x.code === 1 || x.code === 4),
    ).toMatchObject([{ stock: 997 }, { stock: 49 }])
    const transfers = await get()
      .db.selectFrom('transfers')
      .select('out_bill_no')
      .where('appid', '=', appid)
      .execute()
    expect(transfers).toEqual([{ out_bill_no: a.status === 'redeemed' && a.cashback?.outBillNo }])
    expect(await state(id)).toEqual({ points_balance: 0, points_lifetime: 5300 })
    // the third message's redemption cancelled since (points back): its retry is told so, and
    // neither redeems again nor spends
    const cancelled = await cancelRedemption(get().db, {
      appid,
      redemptionId: third.status === 'redeemed' ? third.redemptionId : 0,
      now,
      timeZone: TZ,
    })
    expect(cancelled).toBe('cancelled')
    expect(await r(1, 'msg:oa:gh_test:m:3')).toEqual({
      status: 'cancelled',
      name: '10元优惠券',
      cost: 100,
    })
    expect(await state(id)).toMatchObject({ points_balance: 100 })
  })
})
