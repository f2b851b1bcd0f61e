/**
 * The shop's part of the operator API (mounted inside /admin/api, behind its bearer token):
 *
 *   GET   shop/products                  the catalog (seeded with the defaults)
 *   POST  shop/products                  { sku, kind, name, priceFen, stock?, perMemberLimit?,
 *                                          startsAt?, endsAt?, membershipDays?, tier?,
 *                                          discountPercent?, groupSize?, groupMax?, groupHours? }
 *   PATCH shop/products/:sku             { name?, priceFen?, stock?, perMemberLimit?, startsAt?,
 *                                          endsAt?, enabled? }
 *   GET   shop/orders?status=&limit=     newest first
 *   POST  shop/orders/:no/refunds        { amountFen, reason, outRefundNo? } + Idempotency-Key
 *   GET   shop/points-shortfalls?limit=  refunds after release whose points the member had already
 *                                        spent: what could not be taken back, newest first
 */
import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { Kysely } from 'kysely'
import * as v from 'valibot'
import type { Clock } from '../clock.js'
import { audit } from '../community/audit-log.js'
import type { Database, OrderStatus } from '../db/schema.js'
import type { Logger } from '../logger.js'
import { int, parseBody, shopAccountGuard, timestamp } from '../routes/validate.js'
import { ensureDefaultProducts } from '../shop/catalog.js'
import type { Shop } from '../shop/maintenance.js'
import { requestRefund } from '../shop/refunds.js'
import { sha256Hex } from '../wechat/crypto.js'

const ACTOR = 'operator'
const fen = v.pipe(
  v.number(),
  v.integer('must be whole fen'),
  v.minValue(1),
  v.maxValue(100_000_000),
)
const count = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(10_000_000))
const time = timestamp()
const editable = {
  name: v.pipe(v.string(), v.trim(), v.minLength(1), v.maxLength(127)),
  priceFen: fen,
  stock: v.nullable(count),
  perMemberLimit: v.nullable(int(1)),
  startsAt: v.nullable(time),
  endsAt: v.nullable(time),
}
const productCreate = v.strictObject({
  sku: v.pipe(v.string(), v.regex(/^[a-z0-9-]{1,40}$/, 'lowercase letters, digits and -')),
  kind: v.picklist(
    ['membership', 'flash_sale', 'group_buy'],
    'membership, flash_sale or group_buy',
  ),
  name: editable.name,
  priceFen: fen,
  stock: v.optional(editable.stock, null),
  perMemberLimit: v.optional(editable.perMemberLimit, null),
  startsAt: v.optional(editable.startsAt, null),
  endsAt: v.optional(editable.endsAt, null),
  membershipDays: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(3660))),
  tier: v.optional(v.pipe(v.string(), v.regex(/^[a-z0-9_-]{1,20}$/))),
  discountPercent: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(100))),
  groupSize: v.optional(v.pipe(v.number(), v.integer(), v.minValue(2), v.maxValue(50))),
  groupMax: v.optional(v.pipe(v.number(), v.integer(), v.minValue(2), v.maxValue(100))),
  groupHours: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(168))),
})
const productPatch = v.partial(v.strictObject({ ...editable, enabled: v.boolean() }))
const refundBody = v.strictObject({
  amountFen: fen,
  reason: v.pipe(v.string(), v.trim(), v.minLength(1, 'is required'), v.maxLength(80)),
  outRefundNo: v.optional(
    v.pipe(v.string(), v.regex(/^[\w\-|*@]{1,64}$/, '1–64 of [A-Za-z0-9_-|*@]')),
  ),
})

export function shopAdminRoutes(o: {
  db: Kysely<Database>
  clock: Clock
  logger: Logger
  shop: Shop
}): Hono {
  const app = new Hono()
  const { db, shop } = o
  const appid = shop.settings.appid
  const onlyShopAccount = shopAccountGuard(appid)

  app.get('/accounts/:appid/shop/products', async (c) => {
    onlyShopAccount(c.req.param('appid'))
    await ensureDefaultProducts(db, shop.settings, o.clock.now())
    const products = await db
      .selectFrom('products')
      .selectAll()
      .where('appid', '=', appid)
      .orderBy('id')
      .execute()
    return c.json({ products })
  })

  app.post('/accounts/:appid/shop/products', async (c) => {
    onlyShopAccount(c.req.param('appid'))
    const b = await parseBody(c, productCreate)
    const missing =
      b.kind === 'membership'
        ? !b.membershipDays && 'membershipDays'
        : b.kind === 'group_buy' &&
            b.groupMax !== undefined &&
            b.groupMax < (b.groupSize ?? shop.settings.groupBuy.size)
          ? 'groupMax'
          : null
    if (missing)
      throw new HTTPException(400, { message: `${missing}: required or too small for a ${b.kind}` })
    const now = o.clock.now()
    const group = b.kind === 'group_buy'
    const created = await db.transaction().execute(async (trx) => {
      const row = await trx
        .insertInto('products')
        .values({
          appid,
          sku: b.sku,
          kind: b.kind,
          name: b.name,
          price_fen: b.priceFen,
          stock: b.stock,
          per_member_limit: b.perMemberLimit,
          starts_at: b.startsAt,
          ends_at: b.endsAt,
          membership_days: b.kind === 'membership' ? b.membershipDays! : null,
          tier: b.kind === 'membership' ? (b.tier ?? 'vip') : null,
          discount_percent: b.kind === 'membership' ? (b.discountPercent ?? 100) : null,
          group_size: group ? (b.groupSize ?? shop.settings.groupBuy.size) : null,
          group_max: group
            ? (b.groupMax ?? Math.max(shop.settings.groupBuy.max, b.groupSize ?? 0))
            : null,
          group_hours: group ? (b.groupHours ?? shop.settings.groupBuy.hours) : null,
          created_at: now,
        })
        .onConflict((oc) => oc.columns(['appid', 'sku']).doNothing())
        .returningAll()
        .executeTakeFirst()
      if (row)
        await audit(trx, {
          appid,
          actor: ACTOR,
          action: 'product.create',
          target: b.sku,
          details: b,
          now,
        })
      return row
    })
    if (!created) throw new HTTPException(409, { message: `sku: ${b.sku} exists` })
    return c.json(created, 201)
  })

  app.patch('/accounts/:appid/shop/products/:sku', async (c) => {
    onlyShopAccount(c.req.param('appid'))
    const b = await parseBody(c, productPatch)
    const now = o.clock.now()
    const updated = await db.transaction().execute(async (trx) => {
      const row = await trx
        .updateTable('products')
        .set({
          ...(b.name !== undefined ? { name: b.name } : {}),
          ...(b.priceFen !== undefined ? { price_fen: b.priceFen } : {}),
          ...(b.stock !== undefined ? { stock: b.stock } : {}),
          ...(b.perMemberLimit !== undefined ? { per_member_limit: b.perMemberLimit } : {}),
          ...(b.startsAt !== undefined ? { starts_at: b.startsAt } : {}),
          ...(b.endsAt !== undefined ? { ends_at: b.endsAt } : {}),
          ...(b.enabled !== undefined ? { enabled: b.enabled } : {}),
        })
        .where('appid', '=', appid)
        .where('sku', '=', c.req.param('sku'))
        .returningAll()
        .executeTakeFirst()
      if (row)
        await audit(trx, {
          appid,
          actor: ACTOR,
          action: 'product.update',
          target: row.sku,
          details: b,
          now,
        })
      return row
    })
    if (!updated) throw new HTTPException(404, { message: 'no such product' })
    return c.json(updated)
  })

  app.get('/accounts/:appid/shop/orders', async (c) => {
    onlyShopAccount(c.req.param('appid'))
    const status = c.req.query('status')
    const statuses: OrderStatus[] = ['pending', 'paid', 'closed', 'refunded', 'flagged']
    if (status !== undefined && !statuses.includes(status as OrderStatus))
      throw new HTTPException(400, { message: `status: one of ${statuses.join(', ')}` })
    const limit = Math.min(200, Math.max(1, Number(c.req.query('limit') ?? 50) || 50))
    let q = db
      .selectFrom('orders')
      .selectAll()
      .where('appid', '=', appid)
      .orderBy('id', 'desc')
      .limit(limit)
    if (status) q = q.where('status', '=', status as OrderStatus)
    return c.json({ orders: await q.execute() })
  })

  app.get('/accounts/:appid/shop/points-shortfalls', async (c) => {
    onlyShopAccount(c.req.param('appid'))
    const limit = Math.min(200, Math.max(1, Number(c.req.query('limit') ?? 50) || 50))
    const rows = await db
      .selectFrom('purchase_grants as g')
      .innerJoin('orders as o', 'o.id', 'g.order_id')
      .innerJoin('members as m', 'm.id', 'g.member_id')
      .select([
        'o.out_trade_no',
        'm.openid',
        'g.points',
        'g.points_taken_back',
        'g.points_shortfall',
        'g.released_at',
        'g.updated_at',
      ])
      .where('o.appid', '=', appid)
      .where('g.points_shortfall', '>', 0)
      .orderBy('g.updated_at', 'desc')
      .orderBy('g.order_id', 'desc')
      .limit(limit)
      .execute()
    return c.json({
      shortfalls: rows.map((r) => ({
        outTradeNo: r.out_trade_no,
        openid: r.openid,
        points: r.points,
        takenBack: r.points_taken_back,
        shortfall: r.points_shortfall,
        releasedAt: r.released_at,
        updatedAt: r.updated_at,
      })),
    })
  })

  app.post('/accounts/:appid/shop/orders/:no/refunds', async (c) => {
    onlyShopAccount(c.req.param('appid'))
    const b = await parseBody(c, refundBody)
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
    const outRefundNo =
      b.outRefundNo ?? `RK-${(await sha256Hex(`${c.req.param('no')}\n${key}`)).slice(0, 32)}`
    const now = o.clock.now()
    const result = await requestRefund(
      db,
      shop.gateway,
      shop.settings,
      {
        outTradeNo: c.req.param('no'),
        amountFen: b.amountFen,
        reason: b.reason,
        outRefundNo,
        now,
      },
      o.logger,
    )
    if (result.status === 'not_found') throw new HTTPException(404, { message: 'no such order' })
    if (result.status === 'not_paid')
      throw new HTTPException(409, { message: 'the order is not paid' })
    if (result.status === 'too_much')
      return c.json(
        {
          code: 'TOO_MUCH',
          message: `at most ${result.refundable} fen can still be refunded`,
          refundable: result.refundable,
        },
        409,
      )
    if (result.status === 'requested')
      await audit(db, {
        appid,
        actor: ACTOR,
        action: 'order.refund',
        target: c.req.param('no'),
        details: { ...b, outRefundNo: result.outRefundNo },
        now,
      })
    return c.json(result, result.status === 'requested' ? 201 : 200)
  })

  return app
}
