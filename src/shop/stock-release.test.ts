/**
 * Giving stock back: each unit an order took comes back once (a retry gives nothing), on both
 * databases; and under races, on PostgreSQL (PGlite has one connection) — closing a group buy's
 * unpaid orders while the group fails, or while others join it. Every step takes the group buy's
 * row before the product's, so none waits on another in a circle (no 40P01), and the stock ends
 * exact.
 */
import type { Kysely } from 'kysely'
import { expect, it } from 'vitest'
import { databaseNames, forEachDatabase } from '../../test/databases.js'
import { SAFE_ACCOUNT } from '../../test/server.js'
import type { Database } from '../db/schema.js'
import type { ShopSettings } from './catalog.js'
import { failGroupBuy } from './maintenance.js'
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
