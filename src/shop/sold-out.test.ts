/**
 * The sold-out fast path: one read, no transaction, the slow path's answer — and only when it is
 * proven. On PostgreSQL, a sold-out rush on a 2-connection pool whose buyers' rows are held.
 */
import type { Insertable, Kysely } from 'kysely'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { databaseNames, forEachDatabase } from '../../test/databases.js'
import { holdTransaction } from '../../test/held-transaction.js'
import { SAFE_ACCOUNT } from '../../test/server.js'
import { countStatements } from '../../test/statement-counter.js'
import type { Database, ProductsTable } from '../db/schema.js'
import { silentLogger } from '../logger.js'
import type { ShopRouteOptions } from '../routes/shop.js'
import type { SandboxPay } from '../sandbox/pay-server.js'
import { startSandboxShop } from '../sandbox/sandbox-shop.js'
import { nodeShop } from './node-shop.js'
import { closeOrder, createOrder, type OrderRequest, reserveOrder } from './orders.js'
import { provenSoldOut } from './sold-out.js'

let pay: SandboxPay
let shop: ShopRouteOptions['shop']
beforeAll(async () => {
  const sandbox = await startSandboxShop({ notifyUrl: 'http://127.0.0.1:9/pay/notify' })
  pay = sandbox.pay
  // code2Session is never called here
  shop = await nodeShop(sandbox.config, {
    appid: SAFE_ACCOUNT.appid,
    apiBase: 'http://127.0.0.1:9',
    logger: silentLogger,
  })
})
afterAll(() => pay.close())

const HOUR = 3_600_000
let made = 0
const tag = () => `${++made}-${Math.random().toString(36).slice(2, 8)}`

/** A flash sale: `stock` units, one per member, on sale now unless `p` says otherwise. */
async function flashSale(
  db: Kysely<Database>,
  stock: number,
  p: Partial<Insertable<ProductsTable>> = {},
) {
  const sku = `flash-${tag()}`
  await db
    .insertInto('products')
    .values({
      appid: SAFE_ACCOUNT.appid,
      sku,
      kind: 'flash_sale',
      name: '秒杀',
      price_fen: 100,
      stock,
      per_member_limit: 1,
      created_at: new Date(),
      ...p,
    })
    .execute()
  return sku
}

/** Mini-program members (no link row: the session's member buys). */
async function buyers(db: Kysely<Database>, n: number) {
  return db
    .insertInto('members')
    .values(
      Array.from({ length: n }, () => ({
        appid: shop.settings.mpAppid,
        openid: `o_so_${tag()}`,
        first_seen_at: new Date(),
      })),
    )
    .returning(['id', 'openid'])
    .execute()
}

const asking = (m: { id: number; openid: string }, sku: string, o: Partial<OrderRequest> = {}) => ({
  memberId: m.id,
  mpOpenid: m.openid,
  sku,
  now: new Date(),
  ...o,
})

forEachDatabase('the sold-out fast path', (get) => {
  it('answers a sold-out flash sale in one read, without a transaction, as the slow path does', async () => {
    const { db } = get()
    const sku = await flashSale(db, 1)
    const [first, late] = await buyers(db, 2)
    const got = await createOrder(db, shop.gateway, shop.settings, asking(first!, sku))
    expect(got.status).toBe('created')

    const counted = countStatements(db)
    counted.reset()
    const fast = await createOrder(counted.db, shop.gateway, shop.settings, asking(late!, sku))
    // one statement: the slow path's transaction runs at least the link, member and product reads
    expect(counted.count()).toBe(1)
    const slow = await reserveOrder(db, shop.settings, asking(late!, sku))
    expect(fast).toEqual({ status: 'sold_out' })
    expect(fast).toEqual(slow)
  })

  it('leaves to the slow path what its read does not prove: a retry gets its order back; limits, windows, reused keys and stock given back answer as before', async () => {
    const { db } = get()
    const counted = countStatements(db)
    /** createOrder through the counter; the fast path answered when it ran one statement. */
    const order = async (r: OrderRequest) => {
      counted.reset()
      const result = await createOrder(counted.db, shop.gateway, shop.settings, r)
      return { result, fast: counted.count() === 1 }
    }
    /** A refusal: createOrder's answer, the slow path's, and whether the read proved sold out. */
    const refusal = async (r: OrderRequest) => ({
      ...(await order(r)),
      slow: await reserveOrder(db, shop.settings, r),
      proven: await provenSoldOut(db, shop.settings, r),
    })
    const sku = await flashSale(db, 1)
    const [lucky, other] = await buyers(db, 2)
    const key = `key-${tag()}`
    const got = await order(asking(lucky!, sku, { clientKey: key }))
    if (got.result.status !== 'created') throw new Error(got.result.status)

    // the buyer who took the last unit retries with their client key: their order, not sold_out
    const retry = await order(asking(lucky!, sku, { clientKey: key }))
    expect(retry.fast).toBe(false)
    expect(retry.result).toMatchObject({ status: 'existing', order: { id: got.result.order.id } })
    expect(retry.result).toHaveProperty('payment.package')

    // without the key they hold the per-member limit: limit_reached comes before sold_out
    const again = await refusal(asking(lucky!, sku))
    expect(again).toMatchObject({ result: { status: 'limit_reached' }, fast: false, proven: false })
    expect(again.result).toEqual(again.slow)
    // the key names an order of another product
    const elsewhere = await refusal(asking(lucky!, await flashSale(db, 0), { clientKey: key }))
    expect(elsewhere.result).toEqual({ status: 'client_key_reused' })
    expect(elsewhere).toMatchObject({ slow: elsewhere.result, fast: false, proven: false })

    // sold out, but not on sale: the window's answer
    for (const [p, status] of [
      [{ starts_at: new Date(Date.now() + HOUR) }, 'not_started'],
      [{ ends_at: new Date(Date.now() - HOUR) }, 'ended'],
      [{ enabled: false }, 'disabled'],
    ] as const) {
      const closed = await refusal(asking(other!, await flashSale(db, 0, p)))
      expect(closed.result).toEqual({ status })
      expect(closed).toMatchObject({ slow: closed.result, fast: false, proven: false })
    }
    // a session member with no row: never answered from the read (the slow path throws)
    expect(await provenSoldOut(db, shop.settings, asking({ id: 2e9, openid: 'o_none' }, sku))).toBe(
      false,
    )

    // the other buyer: sold out, from the read
    const sold = await refusal(asking(other!, sku))
    expect(sold).toEqual({
      result: { status: 'sold_out' },
      slow: { status: 'sold_out' },
      fast: true,
      proven: true,
    })
    // the unit comes back (the order closed: cancelled or expired) and is sold again
    expect(await closeOrder(db, got.result.order.id, new Date())).toBe(true)
    const resold = await order(asking(other!, sku))
    expect(resold).toMatchObject({ result: { status: 'created' }, fast: false })
  })

  it('finds the order of a retry through the buyer’s link, not the member the session read', async () => {
    const { db } = get()
    const sku = await flashSale(db, 1)
    // a mini-program member whose user has since been linked to a follower (绑定)
    const [left] = await buyers(db, 1)
    const follower = await db
      .insertInto('members')
      .values({ appid: SAFE_ACCOUNT.appid, openid: `o_oa_${tag()}`, first_seen_at: new Date() })
      .returning('id')
      .executeTakeFirstOrThrow()
    await db
      .insertInto('mp_users')
      .values({
        appid: shop.settings.mpAppid,
        openid: left!.openid,
        unionid: null,
        member_id: follower.id,
        created_at: new Date(),
      })
      .execute()
    const key = `key-${tag()}`
    const got = await createOrder(db, shop.gateway, shop.settings, {
      ...asking(left!, sku, { clientKey: key }),
      memberId: follower.id,
    })
    if (got.status !== 'created') throw new Error(got.status)
    expect(got.order.member_id).toBe(follower.id)
    // the retry comes with a session that read the link before the 绑定: the member left
    const retry = asking(left!, sku, { clientKey: key })
    expect(await provenSoldOut(db, shop.settings, retry)).toBe(false)
    expect(await createOrder(db, shop.gateway, shop.settings, retry)).toMatchObject({
      status: 'existing',
      order: { id: got.order.id },
    })
  })
})

forEachDatabase(
  'a sold-out rush on a small pool',
  (get) => {
    it('answers 300 buyers of a sold-out sale on 2 connections while their rows are held: all sold_out, no transaction', async () => {
      const { db } = get()
      const timeoutMs = 3000
      const sku = await flashSale(db, 0)
      const rush = await buyers(db, 300)
      let begins = 0
      const small = get().open({
        max: 2,
        connectionTimeoutMs: timeoutMs,
        log: (event) => {
          if (/^\s*(begin|start transaction)\b/i.test(event.query.sql)) begins++
        },
      })
      // Each buyer's member row is held (their payment being applied, another of their orders):
      // the slow path locks it first and would wait with a connection in hand.
      const held = await holdTransaction(db, (trx) =>
        trx
          .selectFrom('members')
          .select('id')
          .where(
            'id',
            'in',
            rush.map((m) => m.id),
          )
          .forUpdate()
          .execute(),
      )
      const answers = Promise.all(
        rush.map((m) =>
          createOrder(small, shop.gateway, shop.settings, asking(m, sku)).then(
            (r) => r.status,
            (error: Error) => `${error.name}: ${error.message}`,
          ),
        ),
      )
      await Promise.race([answers, new Promise((r) => setTimeout(r, timeoutMs + 2000))])
      held.commit()
      await held.done
      const statuses = await answers
      expect(statuses.filter((s) => s !== 'sold_out')).toEqual([])
      expect(begins).toBe(0)
    }, 30_000)
  },
  databaseNames.filter((n) => n === 'postgres'),
)
