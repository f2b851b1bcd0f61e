/**
 * The shop's part of the operator API (mounted inside /admin/api, behind its bearer token):
 *
 *   GET   shop/products                  the catalog (seeded with the defaults)
 *   POST  shop/products                  { sku, kind, name, priceFen, stock?, perMemberLimit?,
 *                                          startsAt?, endsAt?, membershipDays?, tier?,
 *                                          discountPercent?, groupSize?, groupMax?, groupHours? }
 *   PATCH shop/products/:sku             { name?, priceFen?, stock?, perMemberLimit?, startsAt?,
 *                                          endsAt?, enabled? } (at least one; the window, merged
 *                                          with the stored one, must end after it starts)
 *   GET   shop/orders?status=&limit=     newest first
 *   POST  shop/orders/:no/refunds        { amountFen, reason, outRefundNo? } + Idempotency-Key
 *   GET   shop/points-shortfalls?limit=  refunds after release whose points the member had already
 *                                        spent: what could not be taken back, newest first
 */
import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import * as v from 'valibot'
import type { OrderStatus } from '../db/schema.js'
import { pageLimit, parseBody, parseQuery, shopAccountGuard } from '../routes/validate.js'
import type { Shop } from '../shop/maintenance.js'
import {
  createProduct,
  createProductInput,
  createProductProblem,
  updateProduct,
  updateProductInput,
} from './actions/product-actions.js'
import { refundNumber, refundOrder, refundOrderInput } from './actions/refund-actions.js'
import type { OperatorDeps } from './operator-deps.js'
import { listOrders, listProducts, ORDER_STATUSES, pointsShortfalls } from './reads/shop-reads.js'
import { apiActor, someChange } from './route-helpers.js'

const listQuery = v.object({ limit: pageLimit(200) })

/** The shop routes, to mount inside the operator API when a shop is configured. */
export function shopAdminRoutes(o: OperatorDeps & { shop: Shop }): Hono {
  const app = new Hono()
  const { db, shop } = o
  const onlyShopAccount = shopAccountGuard(shop.settings.appid)

  app.get('/accounts/:appid/shop/products', async (c) => {
    onlyShopAccount(c.req.param('appid'))
    return c.json({ products: await listProducts(db, shop, o.clock.now()) })
  })

  app.post('/accounts/:appid/shop/products', async (c) => {
    onlyShopAccount(c.req.param('appid'))
    const b = await parseBody(c, createProductInput)
    const problem = createProductProblem(b, shop)
    if (problem) throw new HTTPException(400, { message: problem })
    const created = await createProduct(o, apiActor(c), b)
    if (!created) throw new HTTPException(409, { message: `sku: ${b.sku} exists` })
    return c.json(created, 201)
  })

  app.patch('/accounts/:appid/shop/products/:sku', async (c) => {
    onlyShopAccount(c.req.param('appid'))
    const b = someChange(await parseBody(c, updateProductInput))
    const r = await updateProduct(o, apiActor(c), { ...b, sku: c.req.param('sku') })
    if (r.status === 'unknown') throw new HTTPException(404, { message: 'no such product' })
    if (r.status === 'refused') throw new HTTPException(400, { message: r.problem })
    return c.json(r.product)
  })

  app.get('/accounts/:appid/shop/orders', async (c) => {
    onlyShopAccount(c.req.param('appid'))
    const status = c.req.query('status') as OrderStatus | undefined
    if (status !== undefined && !ORDER_STATUSES.includes(status))
      throw new HTTPException(400, { message: `status: one of ${ORDER_STATUSES.join(', ')}` })
    const { limit } = parseQuery(c, listQuery)
    return c.json({ orders: await listOrders(db, shop, { status, limit }) })
  })

  app.get('/accounts/:appid/shop/points-shortfalls', async (c) => {
    onlyShopAccount(c.req.param('appid'))
    const { limit } = parseQuery(c, listQuery)
    return c.json({ shortfalls: await pointsShortfalls(db, shop, limit) })
  })

  app.post('/accounts/:appid/shop/orders/:no/refunds', async (c) => {
    onlyShopAccount(c.req.param('appid'))
    const b = await parseBody(c, refundOrderInput)
    // Idempotent: the refund's number is the body's outRefundNo or derived from the
    // Idempotency-Key header, so the same request twice is one refund (answered with it).
    const key = c.req.header('idempotency-key')
    if (!b.outRefundNo && !key)
      return c.json(
        {
          code: 'IDEMPOTENCY_KEY_REQUIRED',
          message:
            'send an Idempotency-Key header (or outRefundNo): the same key twice is one refund',
        },
        400,
      )
    if (key !== undefined && !/^[\w-]{1,64}$/.test(key))
      return c.json(
        { code: 'BAD_IDEMPOTENCY_KEY', message: 'Idempotency-Key: 1–64 of [A-Za-z0-9_-]' },
        400,
      )
    const outTradeNo = c.req.param('no')
    const outRefundNo = b.outRefundNo ?? (await refundNumber(outTradeNo, key!))
    const result = await refundOrder(o, apiActor(c), { ...b, outTradeNo, outRefundNo })
    if (result.status === 'not_found') throw new HTTPException(404, { message: 'no such order' })
    if (result.status === 'not_paid')
      throw new HTTPException(409, { message: 'the order is not paid' })
    if (result.status === 'refunded')
      throw new HTTPException(409, { message: 'the order is already refunded in full' })
    if (result.status === 'too_much')
      return c.json(
        {
          code: 'TOO_MUCH',
          message: `at most ${result.refundable} fen can still be refunded`,
          refundable: result.refundable,
        },
        409,
      )
    return c.json(result, result.status === 'requested' ? 201 : 200)
  })

  return app
}
