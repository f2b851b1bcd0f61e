/**
 * Giving stock back: each unit an order took comes back once (a retry gives nothing), on both
 * databases; and under races, on PostgreSQL (PGlite has one connection) — closing a group buy's
 * unpaid orders while the group fails, or while others join it. Every step takes the group buy's
 * row before the product's, so none waits on another in a circle (no 40P01), and the stock ends
 * exact. A group buy failing while a 绑定 moves its leader's orders and the group: both take the
 * orders before the group (no 40P01).
 */
import type { Kysely } from 'kysely'
import { expect, it } from 'vitest'
import { databaseNames, forEachDatabase } from '../../test/databases.js'
import { waitingForLock } from '../../test/held-transaction.js'
import { SAFE_ACCOUNT } from '../../test/server.js'
import { issueBindingCode } from '../community/identities.js'
import type { Database } from '../db/schema.js'
import type { ShopSettings } from './catalog.js'
import { failGroupBuy } from './maintenance.js'
import { linkMiniProgramUser } from './mp-link.js'
import { closeOrder, type OrderRequest, releaseStock, reserveOrder } from './orders.js'

const settings = {
  appid: SAFE_ACCOUNT.appid,
  mpAppid: 'wx_stock_release_mp',
  orderMinutes: 15,
} as ShopSettings
const ROUNDS = 10
const STOCK = 100
let made = 0

/** A group-buy product, a group of `size` (its leader's order paid), `members` more buyers. */
async function groupOf(db: Kysely<Database>, size: number, members: number) {
  const sku = `race-${++made}-${Math.random().toString(36).slice(2, 8)}`
  const product = await db
    .insertInto('products')
    .values({
      appid: SAFE_ACCOUNT.appid,
      sku,
      kind: 'group_buy',
      name: '拼团竞态',
      price_fen: 100,
      stock: STOCK,
      per_member_limit: null,
      group_size: 20,
      group_max: 20,
      group_hours: 24,
      created_at: new Date(),
    })
    .returning('id')
    .executeTakeFirstOrThrow()
  const buyers = await db
    .insertInto('members')
    .values(
      Array.from({ length: size + members }, (_, i) => ({
        appid: settings.mpAppid,
        openid: `o_${sku}_${i}`,
        first_seen_at: new Date(),
      })),
    )
    .returning(['id', 'openid'])
    .execute()
  const request = (i: number, groupBuyId?: number): OrderRequest => ({
    memberId: buyers[i]!.id,
    mpOpenid: buyers[i]!.openid,
    sku,
    now: new Date(),
    groupBuyId,
  })
  const reserve = async (i: number, groupBuyId?: number) => {
    const r = await reserveOrder(db, settings, request(i, groupBuyId))
    if (!('order' in r)) throw new Error(`not reserved: ${r.status}`)
    return r.order
  }
  const lead = await reserve(0)
  const groupBuyId = lead.group_buy_id!
  await db.updateTable('orders').set({ status: 'paid' }).where('id', '=', lead.id).execute()
  const unpaid = []
  for (let i = 1; i < size; i++) unpaid.push((await reserve(i, groupBuyId)).id)
  const stock = async () =>
    (
      await db
        .selectFrom('products')
        .select('stock')
        .where('id', '=', product.id)
        .executeTakeFirstOrThrow()
    ).stock
  return { groupBuyId, unpaid, request, stock }
}

forEachDatabase('giving stock back', (get) => {
  it('gives a unit back once, whoever asks again: a close, a failed group, a release', async () => {
    const db = get().db
    const g = await groupOf(db, 3, 0)
    expect(await g.stock()).toBe(STOCK - 3)
    expect(await closeOrder(db, g.unpaid[0]!, new Date())).toBe(true)
    expect(await closeOrder(db, g.unpaid[0]!, new Date())).toBe(false)
    expect(
      await db.transaction().execute((trx) => releaseStock(trx, { orderId: g.unpaid[0]! })),
    ).toBe(0)
    expect(await g.stock()).toBe(STOCK - 2)
    await db
      .updateTable('group_buys')
      .set({ expires_at: new Date(Date.now() - 60_000) })
      .where('id', '=', g.groupBuyId)
      .execute()
    expect(await failGroupBuy(db, g.groupBuyId, new Date())).toBe(true) // the paid leader's back
    expect(await failGroupBuy(db, g.groupBuyId, new Date())).toBe(false)
    expect(await g.stock()).toBe(STOCK - 1)
    expect(await closeOrder(db, g.unpaid[1]!, new Date())).toBe(true)
    expect(await g.stock()).toBe(STOCK)
    const held = await db
      .selectFrom('orders')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('group_buy_id', '=', g.groupBuyId)
      .where('stock_taken', '=', true)
      .executeTakeFirstOrThrow()
    expect(Number(held.n)).toBe(0)
  })
})

forEachDatabase(
  'giving stock back under races',
  (get) => {
    const failures = (results: PromiseSettledResult<unknown>[]) =>
      results.flatMap((r) =>
        r.status === 'rejected' ? [String((r.reason as { code?: string }).code ?? r.reason)] : [],
      )

    it('fails a group buy while its unpaid orders close: no deadlock, each unit back once', async () => {
      const pools = Array.from({ length: 6 }, () => get().open({ max: 1 }))
      try {
        for (let round = 0; round < ROUNDS; round++) {
          const g = await groupOf(get().db, 6, 0)
          expect(await g.stock()).toBe(STOCK - 6)
          // the group's deadline has passed; its unpaid orders close as they would at theirs
          await get()
            .db.updateTable('group_buys')
            .set({ expires_at: new Date(Date.now() - 60_000) })
            .where('id', '=', g.groupBuyId)
            .execute()
          const now = new Date()
          const results = await Promise.allSettled([
            failGroupBuy(pools[0]!, g.groupBuyId, now),
            ...g.unpaid.map((id, i) => closeOrder(pools[1 + i]!, id, now)),
          ])
          expect(failures(results)).toEqual([])
          expect(await g.stock()).toBe(STOCK)
        }
      } finally {
        for (const p of pools) await p.destroy()
      }
    })

    /** Until a statement like one of `queries` waits for a lock. */
    const waiting = (...queries: string[]) => waitingForLock(get().db, ...queries)

    it('fails a group buy while a 绑定 moves its leader: no deadlock, one refund, the leader moved', async () => {
      const db = get().db
      const g = await groupOf(db, 1, 0)
      const leader = g.request(0)
      const order = await db
        .selectFrom('orders')
        .select(['id', 'out_trade_no'])
        .where('group_buy_id', '=', g.groupBuyId)
        .executeTakeFirstOrThrow()
      await db
        .insertInto('mp_users')
        .values({
          appid: settings.mpAppid,
          openid: leader.mpOpenid,
          member_id: leader.memberId,
          created_at: new Date(),
        })
        .execute()
      const follower = await db
        .insertInto('members')
        .values({
          appid: SAFE_ACCOUNT.appid,
          openid: `o_oa_${leader.mpOpenid}`,
          first_seen_at: new Date(),
        })
        .returning('id')
        .executeTakeFirstOrThrow()
      const { code } = await issueBindingCode(db, follower.id, new Date())
      await db
        .updateTable('group_buys')
        .set({ expires_at: new Date(Date.now() - 60_000) })
        .where('id', '=', g.groupBuyId)
        .execute()
      const now = new Date()
      // A third connection holds the leader's order: the 绑定 waits at moving it (both members
      // locked), then the failing group waits for it too; then it is let go — the 绑定 first.
      let release = () => {}
      const released = new Promise<void>((resolve) => (release = resolve))
      let locked = () => {}
      const isLocked = new Promise<void>((resolve) => (locked = resolve))
      const held = get()
        .open({ max: 1 })
        .transaction()
        .execute(async (trx) => {
          await trx
            .selectFrom('orders')
            .select('id')
            .where('id', '=', order.id)
            .forUpdate()
            .execute()
          locked()
          await Promise.race([released, new Promise((resolve) => setTimeout(resolve, 10_000))])
        })
      await isLocked
      const settle = <T>(p: Promise<T>) =>
        p.catch((error: { code?: string }) => error.code ?? error)
      const bound = settle(
        linkMiniProgramUser(get().open({ max: 1 }), {
          mpAppid: settings.mpAppid,
          openid: leader.mpOpenid,
          code,
          now,
          timeZone: 'Asia/Shanghai',
        }),
      )
      await waiting('%update orders o set member_id%')
      const failed = settle(failGroupBuy(get().open({ max: 1 }), g.groupBuyId, now))
      await waiting('%from "orders" where "group_buy_id" = $1%for update')
      release()
      await held
      expect(await bound).toMatchObject({ status: 'linked', memberId: follower.id, movedOrders: 1 })
      expect(await failed).toBe(true)
      const group = await db
        .selectFrom('group_buys')
        .select(['status', 'leader_member_id'])
        .where('id', '=', g.groupBuyId)
        .executeTakeFirstOrThrow()
      expect(group).toEqual({ status: 'failed', leader_member_id: follower.id })
      const refunds = await db
        .selectFrom('refunds')
        .select(['out_refund_no', 'amount_fen'])
        .where('order_id', '=', order.id)
        .execute()
      expect(refunds).toEqual([{ out_refund_no: `R-${order.out_trade_no}-group`, amount_fen: 100 }])
      const moved = await db
        .selectFrom('orders')
        .select(['member_id', 'status'])
        .where('id', '=', order.id)
        .executeTakeFirstOrThrow()
      expect(moved).toEqual({ member_id: follower.id, status: 'paid' })
      expect(await g.stock()).toBe(STOCK)
    })

    it('closes unpaid orders of an open group while others join it: no deadlock, the stock exact', async () => {
      const pools = Array.from({ length: 8 }, () => get().open({ max: 1 }))
      try {
        for (let round = 0; round < ROUNDS; round++) {
          const g = await groupOf(get().db, 5, 4)
          const results = await Promise.allSettled([
            ...g.unpaid.map((id, i) => closeOrder(pools[i]!, id, new Date())),
            ...[5, 6, 7, 8].map((i, k) =>
              reserveOrder(pools[4 + k]!, settings, g.request(i, g.groupBuyId)).then((r) => {
                if (r.status !== 'created') throw new Error(`not reserved: ${r.status}`)
              }),
            ),
          ])
          expect(failures(results)).toEqual([])
          // the leader's unit and the four joiners' are taken; the four closed orders' are back
          expect(await g.stock()).toBe(STOCK - 5)
        }
      } finally {
        for (const p of pools) await p.destroy()
      }
    })
  },
  databaseNames.filter((n) => n === 'postgres'),
)
