/**
 * The shop's HTTP surface:
 *
 *   /api/mp/…     what the mini-program pages call (validated JSON in, `{code, message}` out)
 *     POST login            { code }                        → { token, expiresAt, member }
 *     GET  catalog                                          → { products } with this member's prices
 *     POST orders           { sku, groupBuyId?, clientKey? } → { order, payment } (wx.requestPayment)
 *     GET  orders/:no                                       → { order } (asks WeChat Pay while pending)
 *     GET  group-buys/:id                                   → progress of a group buy
 *     GET  cashbacks, cashbacks/:no                         → the member's cashback (cashback.ts)
 *     POST reviews, GET reviews, POST shares, GET/PUT profile  → earn rules (mp-earn.ts)
 *     GET/POST/DELETE reminders                             → the check-in reminder (mp-reminders.ts)
 *   /pay/notify   WeChat Pay notifications: verified over the raw body, decrypted with the tag
 *                 checked, applied once; 204 when accepted, 4xx/5xx `{code: 'FAIL', message}`.
 *                 Payments, refunds and transfers (MCHTRANSFER.BILL.FINISHED, `mch_payment`).
 */
import { type Context, Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { Kysely } from 'kysely'
import * as v from 'valibot'
import { type Locale, translator } from '../bot/i18n.js'
import type { Clock } from '../clock.js'
import type { ReminderSettings } from '../community/checkin-reminders.js'
import { ALL_BINDING_ATTEMPTS, BIND_LIMITS } from '../community/identities.js'
import { limitRequest, type RateLimit } from '../community/rate-buckets.js'
import type { Database, Order } from '../db/schema.js'
import type { Logger } from '../logger.js'
import { bodySize } from '../middleware/body-size.js'
import { openNotification, PayNotificationError, type PayVerifyKeys } from '../pay/notification.js'
import { activeMembership, ensureDefaultProducts, onSale, priceFor } from '../shop/catalog.js'
import { expireOrder, type Shop } from '../shop/maintenance.js'
import { mpLogin, sessionExpiry, signSession, verifySession } from '../shop/mp-auth.js'
import { linkMiniProgramUser } from '../shop/mp-link.js'
import { applyTransaction, createOrder, type OrderRefusal } from '../shop/orders.js'
import { pendingPoints } from '../shop/purchase-grants.js'
import { settleRefund } from '../shop/refunds.js'
import { applyBill } from '../shop/transfers.js'
import type { ApiClient } from '../wechat/api/client.js'
import { WechatNetworkError } from '../wechat/api/errors.js'
import { sha1Hex } from '../wechat/crypto.js'
import { cashbackRoutes } from './cashback.js'
import { earnRoutes } from './mp-earn.js'
import { reminderRoutes } from './mp-reminders.js'
import { parseBody, refuseNulInUrl, rowId } from './validate.js'

export interface ShopRouteOptions {
  db: Kysely<Database>
  clock: Clock
  logger: Logger
  timeZone: string
  /** What members are told (cashback notices); default zh-CN. */
  locale?: Locale
  shop: Shop & {
    mpSecret: string
    sessionSecret: string
    apiV3Key: string
    verifyKeys: PayVerifyKeys
    /** For code2Session (no access token needed). */
    mpApi: ApiClient
  }
  /** `POST /api/mp/login` per client address and per code (shared buckets); defaults below. */
  loginLimits?: LoginLimits
  /** The public base URL of this server, for members' share links (`<base>/r/s/<code>`). */
  publicBaseUrl?: string
  /** Check-in reminders (`/api/mp/reminders`); absent → the defaults. */
  reminders?: ReminderSettings
}

/** The login's rate limits: each attempt takes a token from both buckets. */
export interface LoginLimits {
  perAddress: RateLimit
  perCode: RateLimit
}

/** 30 at once then one every 2 s per address (NATs share one); a code twice, then once a minute. */
export const DEFAULT_LOGIN_LIMITS: LoginLimits = {
  perAddress: { perSecond: 0.5, burst: 30 },
  perCode: { perSecond: 1 / 60, burst: 2 },
}

const loginBody = v.strictObject({
  code: v.pipe(v.string(), v.minLength(1, 'is required'), v.maxLength(128)),
})
const bindBody = v.strictObject({
  code: v.pipe(
    v.string(),
    v.regex(/^\d{6}$/, 'must be the six-digit code 绑定 gave in the OA chat'),
  ),
})
/** Orders per mini-program user: ten at once, then one every 10 s. */
const ORDER_LIMIT = { perSecond: 0.1, burst: 10 }
const orderBody = v.strictObject({
  sku: v.pipe(v.string(), v.regex(/^[a-z0-9-]{1,40}$/, 'must be a catalog sku')),
  groupBuyId: v.optional(rowId),
  clientKey: v.optional(
    v.pipe(v.string(), v.regex(/^[\w-]{8,64}$/, 'must be 8–64 of [A-Za-z0-9_-]')),
  ),
})

const REFUSALS: Record<OrderRefusal, [404 | 409, string]> = {
  not_found: [404, 'no such product'],
  disabled: [409, 'the product is not on sale'],
  not_started: [409, 'the sale has not started'],
  ended: [409, 'the sale has ended'],
  sold_out: [409, 'sold out'],
  limit_reached: [409, 'the per-member limit is reached'],
  group_not_found: [404, 'no such group buy for this product'],
  group_closed: [409, 'the group buy is closed'],
  group_full: [409, 'the group buy is full'],
  client_key_reused: [409, 'this clientKey was used for another product or group buy'],
}

/** 429 with Retry-After for a request a rate bucket refused (`limitRequest`'s wait). */
function tooMany(c: Context, what: string, waitMs: number) {
  const seconds = Math.ceil(waitMs / 1000)
  return c.json(
    { code: 'TOO_MANY_REQUESTS', message: `too many ${what}: retry in ${seconds} s` },
    429,
    { 'Retry-After': String(seconds) },
  )
}

const orderJson = (o: Order) => ({
  outTradeNo: o.out_trade_no,
  sku: undefined as string | undefined,
  kind: o.kind,
  description: o.description,
  amountFen: o.amount_fen,
  status: o.status,
  groupBuyId: o.group_buy_id,
  expiresAt: o.expires_at,
  paidAt: o.paid_at,
  refundedFen: o.refunded_fen,
})

/** The mini-program API, to mount at `/api/mp`. */
/** How often a member's polls of a pending order may ask WeChat Pay about it. */
export const ORDER_QUERY_INTERVAL_MS = 5000

export function miniProgramRoutes(
  o: ShopRouteOptions,
): Hono<{ Variables: { memberId: number; openid: string } }> {
  const { db, shop } = o
  const app = new Hono<{ Variables: { memberId: number; openid: string } }>()
  app.use('*', bodySize({ maxBytes: 16 * 1024 }))
  app.use('*', refuseNulInUrl)

  const limits = o.loginLimits ?? DEFAULT_LOGIN_LIMITS
  app.post('/login', async (c) => {
    const { code } = await parseBody(c, loginBody)
    const now = o.clock.now()
    // Each attempt costs a code2Session call: limited per address and per code, across instances.
    const waitMs = await limitRequest(
      db,
      [
        { key: `mp-login:ip:${c.var.clientAddress}`, rate: limits.perAddress },
        { key: `mp-login:code:${await sha1Hex(code)}`, rate: limits.perCode },
      ],
      now,
    )
    if (waitMs > 0) return tooMany(c, 'logins', waitMs)
    let who: Awaited<ReturnType<typeof mpLogin>>
    try {
      who = await mpLogin(db, shop.mpApi, {
        mpAppid: shop.settings.mpAppid,
        mpSecret: shop.mpSecret,
        shopAppid: shop.settings.appid,
        code,
        now,
      })
    } catch (error) {
      const errcode = (error as { errcode?: number }).errcode
      if (errcode === 40029 || errcode === 40163)
        throw new HTTPException(401, { message: 'code: invalid or used (call wx.login again)' })
      if (errcode === 45011)
        return c.json(
          {
            code: 'TOO_MANY_REQUESTS',
            message: 'WeChat limits this user’s logins: retry in a minute',
          },
          429,
          { 'Retry-After': '60' },
        )
      if (errcode === 40226)
        return c.json(
          { code: 'USER_BLOCKED', message: 'WeChat blocks this user (high risk): login refused' },
          403,
        )
      if (errcode === -1 || error instanceof WechatNetworkError)
        return c.json(
          {
            code: 'WECHAT_UNAVAILABLE',
            message: 'WeChat did not answer the login: call wx.login again and retry',
          },
          503,
          { 'Retry-After': '5' },
        )
      throw error
    }
    const expiresAt = sessionExpiry(now)
    const token = await signSession(shop.sessionSecret, { ...who, expiresAt })
    return c.json({ token, expiresAt, member: await memberJson(who.memberId, now) })
  })

  app.use('*', async function session(c, next) {
    const token = /^Bearer (.+)$/.exec(c.req.header('authorization') ?? '')?.[1]
    const s = token && (await verifySession(shop.sessionSecret, token, o.clock.now()))
    if (!s) throw new HTTPException(401, { message: 'session missing or expired: log in again' })
    // The member the user is linked to now (a binding code may have linked them since the token).
    // Read without a lock: good for reads; a member-scoped write reads it again under the user's
    // link, in its own transaction (shop/linked-member.ts), as a 绑定 may commit meanwhile.
    const user = await db
      .selectFrom('mp_users')
      .select('member_id')
      .where('appid', '=', shop.settings.mpAppid)
      .where('openid', '=', s.openid)
      .executeTakeFirst()
    if (!user) throw new HTTPException(401, { message: 'session missing or expired: log in again' })
    c.set('memberId', user.member_id)
    c.set('openid', s.openid)
    await next()
  })

  // 绑定: link this mini-program user to their OA follower with the code the OA chat gave.
  app.post('/bind', async (c) => {
    const { code } = await parseBody(c, bindBody)
    const now = o.clock.now()
    const waitMs = await limitRequest(
      db,
      [
        { key: `mp-bind:user:${c.var.openid}`, rate: BIND_LIMITS.perPerson },
        { key: `mp-bind:ip:${c.var.clientAddress}`, rate: BIND_LIMITS.perPlace },
        { key: ALL_BINDING_ATTEMPTS, rate: BIND_LIMITS.all },
      ],
      now,
    )
    if (waitMs > 0) return tooMany(c, 'binding attempts', waitMs)
    const linked = await linkMiniProgramUser(db, {
      mpAppid: shop.settings.mpAppid,
      openid: c.var.openid,
      code,
      now,
      timeZone: o.timeZone,
      t: translator(o.locale ?? 'zh-CN'),
    })
    if (linked.status === 'bad_code')
      return c.json(
        {
          code: 'BAD_CODE',
          message: 'the code is invalid or expired: send 绑定 to the account again',
        },
        400,
      )
    if (linked.status === 'busy')
      return c.json(
        { code: 'SERVICE_UNAVAILABLE', message: 'the account is being counted: retry in 5 s' },
        503,
        { 'Retry-After': '5' },
      )
    if (linked.status === 'linked_elsewhere')
      return c.json(
        {
          code: 'ALREADY_LINKED',
          message: 'this WeChat user is already linked to a follower of the account',
        },
        409,
      )
    return c.json({
      linked:
        linked.status === 'linked'
          ? { orders: linked.movedOrders, points: linked.movedPoints }
          : null,
      member: await memberJson(linked.memberId, now),
    })
  })

  app.get('/me', async (c) => c.json({ member: await memberJson(c.var.memberId, o.clock.now()) }))

  app.route('/cashbacks', cashbackRoutes(o))
  app.route('/', earnRoutes(o))
  app.route('/reminders', reminderRoutes(o))

  app.get('/catalog', async (c) => {
    const now = o.clock.now()
    await ensureDefaultProducts(db, shop.settings, now)
    const membership = await activeMembership(db, c.var.memberId, now)
    const products = await db
      .selectFrom('products')
      .selectAll()
      .where('appid', '=', shop.settings.appid)
      .where('enabled', '=', true)
      .orderBy('id')
      .execute()
    return c.json({
      products: products
        .filter((p) => onSale(p, now) !== 'ended')
        .map((p) => ({
          sku: p.sku,
          kind: p.kind,
          name: p.name,
          priceFen: p.price_fen,
          yourPriceFen: priceFor(p, membership),
          stock: p.stock,
          perMemberLimit: p.per_member_limit,
          startsAt: p.starts_at,
          endsAt: p.ends_at,
          onSale: onSale(p, now) === 'ok',
          ...(p.kind === 'membership' ? { days: p.membership_days, tier: p.tier } : {}),
          ...(p.kind === 'group_buy'
            ? { groupSize: p.group_size, groupMax: p.group_max, groupHours: p.group_hours }
            : {}),
        })),
    })
  })

  app.post('/orders', async (c) => {
    const body = await parseBody(c, orderBody)
    const now = o.clock.now()
    // Each new order costs a WeChat Pay prepay call and holds stock until it expires: a user may
    // place a few at once, then one every ORDER_LIMIT's interval (a repeat with its client key too).
    const waitMs = await limitRequest(
      db,
      [{ key: `mp-order:user:${c.var.openid}`, rate: ORDER_LIMIT }],
      now,
    )
    if (waitMs > 0) return tooMany(c, 'orders', waitMs)
    await ensureDefaultProducts(db, shop.settings, now)
    const result = await createOrder(db, shop.gateway, shop.settings, {
      memberId: c.var.memberId,
      mpOpenid: c.var.openid,
      sku: body.sku,
      groupBuyId: body.groupBuyId,
      clientKey: body.clientKey,
      now,
    })
    /** An order its expiry closed: the same answer for the retry that closed it and every later one. */
    const orderExpired = (order: ReturnType<typeof orderJson>) =>
      c.json(
        {
          code: 'ORDER_EXPIRED',
          message: 'the order expired unpaid: place a new order with a new clientKey',
          order: { ...order, sku: body.sku },
        },
        409,
      )
    /** An order that may be paid or not: retry with the same clientKey. */
    const paymentUnavailable = (
      order: ReturnType<typeof orderJson>,
      message: string,
      retryAfter: number,
    ) =>
      c.json({ code: 'PAYMENT_UNAVAILABLE', message, order: { ...order, sku: body.sku } }, 503, {
        'Retry-After': String(retryAfter),
      })
    /** An order a query or its expiry settled — closed: 409, paid (or later): 200; none pending. */
    const settled = (order: ReturnType<typeof orderJson>) =>
      order.status === 'closed'
        ? orderExpired(order)
        : order.status === 'pending'
          ? undefined
          : c.json({ order: { ...order, sku: body.sku }, payment: null }, 200)
    if (result.status === 'expired') {
      // Past its time_expire: the order page's expiry step (asked about — a lost payment is
      // applied —, else closed, its unit and seat released), never a prepay.
      const order = orderJson(await expireIfClaimed(result.order, now))
      // Still pending: another request is asking WeChat Pay right now (the order page's poll), or
      // the query failed — it may be paid: never "expired" until it is closed.
      return (
        settled(order) ??
        paymentUnavailable(
          order,
          'the order expired and is being checked with WeChat Pay: retry with the same clientKey',
          5,
        )
      )
    }
    if (result.status === 'payment_refused' && result.order.status === 'pending') {
      // WeChat Pay refused to prepay an order it already has: it may be paid, its notification
      // lost (ORDER_PAID). Act on what its query says (protocol §4), as the order page does — and
      // through the same claim ({@link claimQuery}): however often and at once the buyer retries,
      // one request asks, at most once per ORDER_QUERY_INTERVAL_MS; the others answer from the
      // order as stored (paid once the query that asked has applied its payment; closed, as every
      // retry of an expired order is answered).
      const asked = await claimQuery(result.order.id, now)
      const order = orderJson(
        asked ? await applyQueried(result.order, now) : await reread(result.order),
      )
      const answer = settled(order)
      if (answer) return answer
      // Not asked here, still pending: another request's query may be under way or have failed —
      // it may be paid, so never "refused" (the buyer would order and pay again).
      if (!asked)
        return paymentUnavailable(
          order,
          'the order is being checked with WeChat Pay: retry with the same clientKey',
          5,
        )
    }
    if (result.status === 'payment_unavailable' || result.status === 'payment_refused') {
      const unavailable = result.status === 'payment_unavailable'
      o.logger.warn(unavailable ? 'prepay got no answer: order kept' : 'prepay refused', {
        outTradeNo: result.order.out_trade_no,
        error: result.error,
      })
      const order = orderJson(result.order)
      return unavailable
        ? paymentUnavailable(order, 'WeChat Pay did not answer: retry with the same clientKey', 2)
        : c.json(
            {
              code: 'PAYMENT_REFUSED',
              message: 'WeChat Pay refused the order',
              order: { ...order, sku: body.sku },
            },
            502,
          )
    }
    if (
      result.status === 'existing' &&
      result.order.status === 'closed' &&
      result.order.expires_at.getTime() <= now.getTime()
    )
      return orderExpired(orderJson(result.order))
    if (result.status !== 'created' && result.status !== 'existing') {
      const [status, message] = REFUSALS[result.status]
      return c.json({ code: result.status.toUpperCase(), message }, status)
    }
    return c.json(
      { order: { ...orderJson(result.order), sku: body.sku }, payment: result.payment },
      result.status === 'created' ? 201 : 200,
    )
  })

  app.get('/orders/:no', async (c) => {
    const now = o.clock.now()
    const find = () =>
      db
        .selectFrom('orders')
        .selectAll()
        .where('out_trade_no', '=', c.req.param('no'))
        .where('member_id', '=', c.var.memberId)
        .executeTakeFirst()
    const order = await find()
    if (!order) throw new HTTPException(404, { message: 'no such order' })
    // The page's success callback is a hint only: ask WeChat Pay (at most once every
    // ORDER_QUERY_INTERVAL_MS, {@link claimQuery}).
    if (order.status !== 'pending') return c.json({ order: orderJson(order) })
    if (order.expires_at <= now)
      return c.json({ order: orderJson(await expireIfClaimed(order, now)) })
    if (!(await claimQuery(order.id, now))) return c.json({ order: orderJson(order) })
    return c.json({ order: orderJson(await applyQueried(order, now)) })
  })

  /**
   * Claims asking WeChat Pay about a pending order: at most once per order every
   * ORDER_QUERY_INTERVAL_MS, whoever asks (a conditional update of `queried_at` decides, across
   * instances).
   */
  const claimQuery = async (orderId: number, now: Date) =>
    (await db
      .updateTable('orders')
      .set({ queried_at: now })
      .where('id', '=', orderId)
      .where('status', '=', 'pending')
      .where((eb) =>
        eb.or([
          eb('queried_at', 'is', null),
          eb('queried_at', '<=', new Date(now.getTime() - ORDER_QUERY_INTERVAL_MS)),
        ]),
      )
      .returning('id')
      .executeTakeFirst()) !== undefined

  /** The member's order as it is now. */
  const reread = (order: Order) =>
    db.selectFrom('orders').selectAll().where('id', '=', order.id).executeTakeFirstOrThrow()

  /**
   * A pending order past its expiry, after the expiry step — the same as shop maintenance's (which
   * skips an order asked about within the last minute, as a claimed one is): asked about (a
   * payment applied), else closed unpaid, its stock and group-buy seat released — when this
   * request wins {@link claimQuery}; an error is logged, the order left pending.
   */
  async function expireIfClaimed(order: Order, now: Date): Promise<Order> {
    if (!(await claimQuery(order.id, now))) return reread(order)
    await expireOrder(db, shop, order, {
      now,
      timeZone: o.timeZone,
      logger: o.logger,
      t: translator(o.locale ?? 'zh-CN'),
    }).catch((error: unknown) => {
      o.logger.warn('could not expire an order', { outTradeNo: order.out_trade_no, error })
    })
    return reread(order)
  }

  /**
   * A pending order after asking WeChat Pay about it: a payment it reports (SUCCESS) applied, as
   * a notification would be; a failed query logged, the order as it was.
   */
  async function applyQueried(order: Order, now: Date): Promise<Order> {
    const t = await shop.gateway.query(order.out_trade_no).catch((error: unknown) => {
      o.logger.warn('order query failed', { outTradeNo: order.out_trade_no, error })
      return null
    })
    if (t?.trade_state !== 'SUCCESS') return order
    await applyTransaction(db, shop.gateway, shop.settings, t, {
      eventId: `query:${t.transaction_id ?? order.out_trade_no}`,
      eventType: 'QUERY.SUCCESS',
      now,
      timeZone: o.timeZone,
    })
    return reread(order)
  }

  app.get('/group-buys/:id', async (c) => {
    const id = c.req.param('id')
    const group = /^\d{1,15}$/.test(id)
      ? await db
          .selectFrom('group_buys')
          .innerJoin('products', 'products.id', 'group_buys.product_id')
          .select([
            'group_buys.id',
            'group_buys.status',
            'group_buys.size_required',
            'group_buys.size_max',
            'group_buys.joined',
            'group_buys.paid',
            'group_buys.expires_at',
            'products.sku',
          ])
          .where('group_buys.id', '=', Number(id))
          .where('group_buys.appid', '=', shop.settings.appid)
          .executeTakeFirst()
      : undefined
    if (!group) throw new HTTPException(404, { message: 'no such group buy' })
    return c.json({
      id: group.id,
      sku: group.sku,
      status: group.status,
      sizeRequired: group.size_required,
      sizeMax: group.size_max,
      joined: group.joined,
      paid: group.paid,
      expiresAt: group.expires_at,
    })
  })

  async function memberJson(memberId: number, now: Date) {
    const member = await db
      .selectFrom('members')
      .select(['id', 'appid', 'points_balance', 'level'])
      .where('id', '=', memberId)
      .executeTakeFirstOrThrow()
    const membership = await activeMembership(db, memberId, now)
    const pending = await pendingPoints(db, memberId)
    return {
      id: member.id,
      follower: member.appid === shop.settings.appid,
      points: member.points_balance,
      /** Points from purchases waiting for their refund window (待到账), and the next release. */
      pendingPoints: pending?.points ?? 0,
      pendingReleaseAt: pending?.nextReleaseAt ?? null,
      level: member.level,
      membership: membership
        ? {
            tier: membership.tier,
            discountPercent: membership.discount_percent,
            expiresAt: membership.expires_at,
          }
        : null,
    }
  }

  return app
}

/** `POST /pay/notify`. */
export function payNotifyRoutes(o: ShopRouteOptions): Hono {
  const { db, shop } = o
  const app = new Hono()
  app.use('*', bodySize({ maxBytes: 64 * 1024 }))
  const fail = (c: Context, status: 400 | 401 | 500, message: string) =>
    c.json({ code: 'FAIL', message }, status)

  app.post('/', async (c) => {
    const raw = await c.req.text()
    const now = o.clock.now()
    let n: Awaited<ReturnType<typeof openNotification>>
    try {
      n = await openNotification(
        raw,
        {
          timestamp: c.req.header('wechatpay-timestamp'),
          nonce: c.req.header('wechatpay-nonce'),
          signature: c.req.header('wechatpay-signature'),
          serial: c.req.header('wechatpay-serial'),
        },
        { keys: shop.verifyKeys, apiV3Key: shop.apiV3Key, now },
      )
    } catch (error) {
      if (!(error instanceof PayNotificationError)) throw error
      o.logger.warn('pay notification refused', { reason: error.reason })
      const unauthenticated = [
        'missing_header',
        'unknown_serial',
        'stale_timestamp',
        'bad_signature',
      ]
      return fail(c, unauthenticated.includes(error.reason) ? 401 : 400, error.message)
    }
    try {
      if (n.kind === 'transaction') {
        const outcome = await applyTransaction(db, shop.gateway, shop.settings, n.resource, {
          ...{ eventId: n.id, eventType: n.eventType, now, timeZone: o.timeZone },
          t: translator(o.locale ?? 'zh-CN'),
        })
        o.logger.info('payment notification', { id: n.id, outcome })
      } else if (n.kind === 'refund') {
        const outcome = await settleRefund(
          db,
          n.resource.out_refund_no,
          n.resource.refund_status ?? n.eventType.slice('REFUND.'.length),
          now,
          o.logger,
          n.resource.refund_id,
        )
        o.logger.info('refund notification', { id: n.id, outcome })
      } else if (n.kind === 'transfer') {
        const outcome = await applyBill(
          {
            db,
            shop,
            timeZone: o.timeZone,
            logger: o.logger,
            t: translator(o.locale ?? 'zh-CN'),
          },
          n.resource,
          now,
        )
        o.logger.info('transfer notification', { id: n.id, outcome })
      } else {
        o.logger.warn('pay notification of an unknown kind accepted', { eventType: n.eventType })
      }
    } catch (error) {
      o.logger.error('pay notification failed', { id: n.id, error })
      return fail(c, 500, 'internal error; retry later')
    }
    return c.body(null, 204)
  })
  return app
}
