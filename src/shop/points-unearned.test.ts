/**
 * Purchase points that were never earned stop counting as earned (migrations/0082): a refund after
 * the release takes them from lifetime, the level and the all-time board, and a 绑定 moves the
 * mini-program member's lifetime to the follower, so a purchase gives the same level whenever the
 * 绑定 happens. The weekly board counts what was earned in the week: neither moves it.
 */
import { type Kysely, sql } from 'kysely'
import { expect, it } from 'vitest'
import * as m0082 from '../../migrations/0082_points_taken_back_unearned.js'
import { product } from '../../test/analytics-fixtures.js'
import { forEachDatabase } from '../../test/databases.js'
import { expectLedgerInvariant } from '../../test/points-invariant.js'
import { leaderboard } from '../community/leaderboard.js'
import { applyDelta, changePoints, withMemberLocked } from '../community/points-ledger.js'
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
  /** `points` earned by `id` (a grant counts as earned). */
  const grant = (id: number, points: number, now: Date) =>
    withMemberLocked(get().db, id, (trx, m) =>
      applyDelta(
        trx,
        m,
        {
          appid: OA,
          memberId: id,
          rule: 'grant',
          idempotencyKey: `ue-g-${++seq}`,
          now,
          timeZone: TZ,
        },
        points,
      ),
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

  it('a full refund after the release takes the points back from lifetime, the level and the all-time board', async () => {
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
    const all = await leaderboard(db, { appid: OA, period: 'all', memberId: id, now, timeZone: TZ })
    expect(all.me).toBeNull()
    // the week of the release keeps what was released in it, as before migrations/0082
    const week = await leaderboard(db, {
      appid: OA,
      period: 'week',
      memberId: id,
      now,
      timeZone: TZ,
    })
    expect(week.me?.points).toBe(1600)
    await expectLedgerInvariant(db)
  })

  it('the weekly board counts what was earned in the week: a later refund takes nothing off it', async () => {
    const db = get().db
    let now = new Date('2026-11-02T02:00:00Z') // a Monday
    const a = await member(OA, now)
    const b = await member(OA, now)
    const order = await paid(OA, a, now)
    await releaseFrozenPoints(db, { now: new Date(now.getTime() + 2 * DAY) })
    now = new Date('2026-11-10T02:00:00Z') // the next week
    await grant(a, 500, now)
    await grant(b, 100, now)
    await refund(order, 150000, now)
    expect(await figures(a)).toMatchObject({ points_lifetime: 500, level: 'bronze' })
    const week = await leaderboard(db, {
      appid: OA,
      period: 'week',
      memberId: a,
      now,
      timeZone: TZ,
    })
    expect(week.me).toEqual({ rank: 1, points: 500 })
    expect(week.entries.map((e) => [e.memberId, e.points])).toEqual([
      [a, 500],
      [b, 100],
    ])
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
      // released weeks before the 绑定: its lifetime entries are not earnings of the 绑定's week
      if (releasedBeforeBind) now = new Date(now.getTime() + 21 * DAY)
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
      const week = await leaderboard(db, {
        appid: OA,
        period: 'week',
        memberId: follower,
        now: new Date(now.getTime() + DAY),
        timeZone: TZ,
      })
      // released after the 绑定, the follower's own release entry is this week's earning
      expect(week.me?.points ?? null).toBe(releasedBeforeBind ? null : 1600)
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
  it("moves, when migrating, the lifetime of a mini-program member linked before: a refund afterwards demotes no one who didn't earn it", async () => {
    const db = get().db
    const k = db as unknown as Kysely<unknown>
    await m0082.down(k)
    try {
      let now = new Date('2026-12-07T02:00:00Z')
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
      await grant(follower, 1200, now) // the follower's own: silver
      const order = await paid(MP, mp, now)
      now = new Date(now.getTime() + 2 * DAY)
      await releaseFrozenPoints(db, { now })
      // a 绑定 as mp-link.ts made it before migrations/0082: the balance and the grants, not lifetime
      await db
        .updateTable('mp_users')
        .set({ member_id: follower })
        .where('openid', '=', openid)
        .execute()
      const base = { now, timeZone: TZ, earned: false, reference: `member ${mp}` }
      const key = `mp-link:${mp}:${follower}`
      await changePoints(
        db,
        { ...base, appid: MP, memberId: mp, rule: 'mp_link_out', idempotencyKey: key },
        -1600,
      )
      await changePoints(
        db,
        { ...base, appid: OA, memberId: follower, rule: 'mp_link_in', idempotencyKey: key },
        1600,
      )
      await sql`select quanzi_purchase_grants_move(${mp}::bigint, ${follower}::bigint,
        ${`${key}:frozen`}::text, ${`member ${mp}`}::text, ${now}::timestamptz, '2026-12-09'::date)`.execute(
        db,
      )
      expect(await figures(mp)).toMatchObject({
        points_balance: 0,
        points_lifetime: 1600,
        level: 'silver',
      })
      await m0082.up(k)
      expect(await figures(follower)).toMatchObject({
        points_balance: 2800,
        points_lifetime: 2800,
        level: 'silver',
      })
      expect(await figures(mp)).toMatchObject({ points_lifetime: 0, level: 'bronze' })
      // migrating again moves nothing
      await m0082.down(k)
      await m0082.up(k)
      expect(await figures(follower)).toMatchObject({ points_lifetime: 2800 })
      await expectLedgerInvariant(db)
      await refund(order, 150000, new Date(now.getTime() + DAY))
      expect(await figures(follower)).toMatchObject({
        points_balance: 1200,
        points_lifetime: 1200,
        level: 'silver',
      })
      expect(await figures(mp)).toMatchObject({ points_lifetime: 0, level: 'bronze' })
      await expectLedgerInvariant(db)
    } finally {
      const { rows } = await sql<{
        n: number
      }>`select count(*)::int as n from information_schema.tables
        where table_schema = current_schema() and table_name = 'points_lot_uses'`.execute(db)
      if (rows[0]!.n === 0) await m0082.up(k)
    }
  })
})
