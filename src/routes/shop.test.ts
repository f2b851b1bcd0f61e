import { createVerify } from 'node:crypto'
import { type Kysely, sql } from 'kysely'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { SAFE_ACCOUNT, startServer, type TestServer, testConfig } from '../../test/server.js'
import { readOpsStatus } from '../community/ops-status.js'
import type { Database } from '../db/schema.js'
import { silentLogger } from '../logger.js'
import { PayApiError } from '../pay/gateway.js'
import type { SandboxPay } from '../sandbox/pay-server.js'
import { createPusher } from '../sandbox/pusher.js'
import { startSandboxShop } from '../sandbox/sandbox-shop.js'
import { type SandboxApi, startSandboxApi } from '../sandbox/wechat-api-server.js'
import { miniProgramLink } from '../shop/catalog.js'
import { runShopMaintenance } from '../shop/maintenance.js'
import { nodeShop } from '../shop/node-shop.js'
import { createOrder } from '../shop/orders.js'
import { releaseFrozenPoints } from '../shop/purchase-grants.js'
import {
  REFUND_MAX_ATTEMPTS,
  refundRetryDelayMs,
  requestRefund,
  sendRefund,
} from '../shop/refunds.js'
import { base64Decode, base64Encode } from '../wechat/crypto.js'
import { ORDER_QUERY_INTERVAL_MS, type ShopRouteOptions } from './shop.js'

type ShopDb = Kysely<Database>

let wx: SandboxApi
beforeAll(async () => {
  wx = await startSandboxApi()
})
afterAll(() => wx.close())

forEachDatabase('the mini-program shop and WeChat Pay, end to end', (get) => {
  let server: TestServer
  let pay: SandboxPay
  let shop: ShopRouteOptions['shop']
  let merchantPublicKey: string
  // The server's clock: the real one moved by `ms`, or held at `at` (a test whose buckets must not
  // refill while it runs).
  const offset: { ms: number; at?: number } = { ms: 0 }
  const clock = { now: () => new Date((offset.at ?? Date.now()) + offset.ms) }
  let users = 0

  beforeAll(async () => {
    const sandbox = await startSandboxShop({ notifyUrl: 'http://placeholder/pay/notify' })
    pay = sandbox.pay
    merchantPublicKey = sandbox.merchantPublicKey
    shop = await nodeShop(sandbox.config, {
      appid: SAFE_ACCOUNT.appid,
      apiBase: wx.url,
      logger: silentLogger,
    })
    server = await startServer(get().db, {
      config: testConfig({ ADMIN_TOKEN: 'shop-operator-token-0123' }),
      clock,
      shop,
      // Each buyer from their own address (login is limited per address: input-edges.test.ts).
      clientAddress: (c) => c.req.header('x-test-client') ?? '127.0.0.1',
    })
    shop.settings.notifyUrl = `${server.url}/pay/notify`
  })
  afterAll(async () => {
    await server.close()
    await pay.close()
  })

  const api = async (
    path: string,
    init: { token?: string; body?: unknown; client?: string } = {},
  ) => {
    const res = await fetch(`${server.url}/api/mp${path}`, {
      method: init.body === undefined ? 'GET' : 'POST',
      headers: {
        'content-type': 'application/json',
        ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
        ...(init.client ? { 'x-test-client': init.client } : {}),
      },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    })
    // biome-ignore lint/suspicious/noExplicitAny: response JSON, checked by the assertions
    return { status: res.status, json: (await res.json()) as Record<string, any> }
  }
  /** A mini-program user logs in (wx.login → code → our /login). */
  const login = async (unionid?: string) => {
    const openid = `o_mp_${++users}_${Math.random().toString(36).slice(2, 8)}`
    const code = wx.loginCode(shop.settings.mpAppid, openid, unionid)
    const res = await api('/login', { body: { code }, client: `198.51.100.${users % 250}` })
    expect(res.status).toBe(200)
    return { openid, token: res.json.token as string, member: res.json.member }
  }
  const buy = (token: string, body: Record<string, unknown>) => api('/orders', { token, body })
  const ledger = (memberId: number) =>
    get()
      .db.selectFrom('points_ledger')
      .select(['rule', 'delta'])
      .where('member_id', '=', memberId)
      .orderBy('id')
      .execute()

  it('answers code2Session errors clearly and never retries the single-use code', async () => {
    const attempt = async (fault: Parameters<typeof wx.fault>[1]) => {
      const code = wx.loginCode(shop.settings.mpAppid, `o_mp_err_${++users}`)
      const before = wx.calls('jscode2session')
      wx.fault('jscode2session', fault, fault, fault, fault)
      const res = await api('/login', { body: { code } })
      const calls = wx.calls('jscode2session') - before
      wx.clearFaults()
      return { status: res.status, code: res.json.code, calls }
    }
    expect(await attempt({ errcode: 45011, errmsg: 'freq limit' })).toEqual({
      status: 429,
      code: 'TOO_MANY_REQUESTS',
      calls: 1,
    })
    expect(await attempt({ errcode: 40226, errmsg: 'risky user' })).toEqual({
      status: 403,
      code: 'USER_BLOCKED',
      calls: 1,
    })
    expect(await attempt({ errcode: -1, errmsg: 'system busy' })).toEqual({
      status: 503,
      code: 'WECHAT_UNAVAILABLE',
      calls: 1,
    })
    expect(await attempt({ status: 502 })).toEqual({
      status: 503,
      code: 'WECHAT_UNAVAILABLE',
      calls: 1,
    })
  })

  it('logs in, buys a membership, and applies a notification sent 3× concurrently once', async () => {
    expect((await api('/login', { body: { code: 'made-up' } })).status).toBe(401)
    expect((await api('/catalog')).status).toBe(401)
    expect((await api('/catalog', { token: 'v1.forged.token' })).status).toBe(401)
    const u = await login()
    expect(u.member).toMatchObject({ follower: false, points: 0, membership: null })
    const catalog = await api('/catalog', { token: u.token })
    expect(catalog.json.products.map((p: { sku: string }) => p.sku)).toEqual([
      'vip-30',
      'vip-90',
      'vip-365',
      'flash-tea',
      'group-gift',
    ])
    const order = await buy(u.token, { sku: 'vip-30', clientKey: 'tap-0000001' })
    expect(order.status).toBe(201)
    expect(order.json.order).toMatchObject({
      amountFen: 3000,
      status: 'pending',
      kind: 'membership',
    })
    const p = order.json.payment
    expect(p).toMatchObject({ appId: shop.settings.mpAppid, signType: 'RSA' })
    const signed = `${p.appId}\n${p.timeStamp}\n${p.nonceStr}\n${p.package}\n`
    expect(
      createVerify('RSA-SHA256').update(signed).verify(merchantPublicKey, p.paySign, 'base64'),
    ).toBe(true)
    // a double tap: the same order and prepay_id
    const again = await buy(u.token, { sku: 'vip-30', clientKey: 'tap-0000001' })
    expect(again.status).toBe(200)
    expect(again.json.order.outTradeNo).toBe(order.json.order.outTradeNo)
    expect(again.json.payment.package).toBe(p.package)

    const no = order.json.order.outTradeNo as string
    const { notification, answer } = await pay.pay(no, { deliver: false })
    expect(answer).toBeNull()
    const answers = await Promise.all(
      [1, 2, 3].map(() => pay.deliver(`${server.url}/pay/notify`, notification)),
    )
    expect(answers.map((a) => a.status)).toEqual([204, 204, 204])
    const paid = await api(`/orders/${no}`, { token: u.token })
    expect(paid.json.order).toMatchObject({ status: 'paid', amountFen: 3000 })
    const me = await api('/me', { token: u.token })
    expect(me.json.member.membership).toMatchObject({ tier: 'vip', discountPercent: 90 })
    const days = (new Date(me.json.member.membership.expiresAt).getTime() - Date.now()) / 86_400_000
    expect(Math.round(days)).toBe(30) // extended once, not three times
    // first_purchase and 1 point per yuan, both frozen until the refund window ends
    expect(await ledger(me.json.member.id)).toEqual([
      { rule: 'first_purchase', delta: 100 },
      { rule: 'purchase', delta: 30 },
    ])
    // members pay the tier's price elsewhere; first_purchase is paid once ever
    const tea = await buy(u.token, { sku: 'flash-tea' })
    expect(tea.json.order.amountFen).toBe(891)
    expect((await pay.pay(tea.json.order.outTradeNo)).answer!.status).toBe(204)
    expect(
      (await ledger(me.json.member.id)).filter((e) => e.rule === 'first_purchase'),
    ).toHaveLength(1)
    // the per-member limit of the flash sale (1)
    expect((await buy(u.token, { sku: 'flash-tea' })).json.code).toBe('LIMIT_REACHED')
  })

  it('earns a mini-program-only buyer 首次购买 at the first purchase, queuing no OA notice they could never get', async () => {
    const u = await login()
    expect(u.member).toMatchObject({ follower: false })
    const order = await buy(u.token, { sku: 'vip-90' })
    expect((await pay.pay(order.json.order.outTradeNo)).answer!.status).toBe(204)
    const badges = await get()
      .db.selectFrom('member_badges')
      .select('badge_key')
      .where('member_id', '=', u.member.id)
      .execute()
    expect(badges).toEqual([{ badge_key: 'first_purchase' }])
    // an official account's customer-service message cannot reach a mini-program openid, and no
    // dispatcher serves the mini program's appid: such an item would wait for ever
    const items = await get()
      .db.selectFrom('push_outbox')
      .select(['appid', 'kind', 'source'])
      .where('openid', '=', u.openid)
      .execute()
    expect(items).toEqual([])
    const due = await get()
      .db.selectFrom('push_outbox')
      .select('id')
      .where('appid', '=', shop.settings.mpAppid)
      .execute()
    expect(due).toEqual([])
  })

  it('merges a mini-program user with the OA follower of the same unionid', async () => {
    const follower = await get()
      .db.insertInto('members')
      .values({
        appid: SAFE_ACCOUNT.appid,
        openid: 'o_oa_follower',
        unionid: 'union-123',
        first_seen_at: new Date(),
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    const u = await login('union-123')
    expect(u.member).toMatchObject({ id: follower.id, follower: true })
  })

  it('refuses tampered, stale, unknown-key and probe notifications, changing nothing', async () => {
    const u = await login()
    const order = await buy(u.token, { sku: 'vip-90' })
    const no = order.json.order.outTradeNo as string
    const { notification: good } = await pay.pay(no, { deliver: false })
    const url = `${server.url}/pay/notify`
    const envelope = JSON.parse(good.body)
    const flipped = (() => {
      const e = structuredClone(envelope)
      const bytes = base64Decode(e.resource.ciphertext)
      bytes[5]! ^= 1
      e.resource.ciphertext = base64Encode(bytes)
      const body = JSON.stringify(e)
      return { body, headers: { 'content-type': 'application/json', ...pay.signBody(body) } }
    })()
    const cases: [unknown, number][] = [
      [flipped, 400],
      [{ ...good, body: good.body.replace('"transaction"', '"refund"') }, 401],
      [{ ...good, headers: { ...good.headers, 'wechatpay-serial': 'PUB_KEY_ID_OTHER' } }, 401],
      [
        { ...good, headers: { ...good.headers, 'wechatpay-signature': 'WECHATPAY/SIGNTEST/x' } },
        401,
      ],
      [
        {
          ...good,
          headers: {
            ...good.headers,
            'wechatpay-timestamp': String(Math.floor(Date.now() / 1000) - 400),
          },
        },
        401,
      ],
      [
        {
          body: 'not json',
          headers: { 'content-type': 'application/json', ...pay.signBody('not json') },
        },
        400,
      ],
    ]
    for (const [n, status] of cases) {
      const answer = await pay.deliver(url, n as typeof good)
      expect(answer.status).toBe(status)
      expect(JSON.parse(answer.body)).toMatchObject({ code: 'FAIL' })
    }
    const row = await get()
      .db.selectFrom('orders')
      .select('status')
      .where('out_trade_no', '=', no)
      .executeTakeFirstOrThrow()
    expect(row.status).toBe('pending')
    expect(
      await get().db.selectFrom('pay_events').select('id').where('reference', '=', no).execute(),
    ).toEqual([])
    // the genuine one, in the other key mode, is applied
    const { answer } = await pay.pay(no, { mode: 'certificate' })
    expect(answer!.status).toBe(204)
  })

  it('flags a payment whose amount differs from the order and grants nothing', async () => {
    const u = await login()
    const order = await buy(u.token, { sku: 'vip-365' })
    const { answer } = await pay.pay(order.json.order.outTradeNo, { amountTotal: 1 })
    expect(answer!.status).toBe(204)
    const row = await get()
      .db.selectFrom('orders')
      .select(['status', 'flag_reason'])
      .where('out_trade_no', '=', order.json.order.outTradeNo)
      .executeTakeFirstOrThrow()
    expect(row.status).toBe('flagged')
    expect(row.flag_reason).toMatch(/amount\.total 1 ≠ 29800/)
    expect(await ledger(u.member.id)).toEqual([])
    expect((await api('/me', { token: u.token })).json.member.membership).toBeNull()
  })

  it('fills a group buy with three paid participants; a fourth may join up to five', async () => {
    const [a, b, c] = [await login(), await login(), await login()]
    const lead = await buy(a.token, { sku: 'group-gift' })
    const group = lead.json.order.groupBuyId as number
    const joined = [
      await buy(b.token, { sku: 'group-gift', groupBuyId: group }),
      await buy(c.token, { sku: 'group-gift', groupBuyId: group }),
    ]
    expect(joined.map((j) => j.status)).toEqual([201, 201])
    expect((await buy(a.token, { sku: 'flash-tea', groupBuyId: group })).status).toBe(404)
    for (const o of [lead, ...joined]) await pay.pay(o.json.order.outTradeNo)
    const formed = await api(`/group-buys/${group}`, { token: a.token })
    expect(formed.json).toMatchObject({ status: 'succeeded', joined: 3, paid: 3, sizeRequired: 3 })
    // formed at three, it still takes people while seats and time remain
    const [d, e, f] = [await login(), await login(), await login()]
    const more = [
      await buy(d.token, { sku: 'group-gift', groupBuyId: group }),
      await buy(e.token, { sku: 'group-gift', groupBuyId: group }),
    ]
    expect(more.map((j) => j.status)).toEqual([201, 201])
    for (const o of more) await pay.pay(o.json.order.outTradeNo)
    const sixth = await buy(f.token, { sku: 'group-gift', groupBuyId: group })
    expect(sixth).toMatchObject({
      status: 409,
      json: { code: 'GROUP_FULL', message: 'the group buy is full' },
    })
    const status = await api(`/group-buys/${group}`, { token: a.token })
    expect(status.json).toMatchObject({ status: 'succeeded', joined: 5, paid: 5, sizeMax: 5 })
  })

  it('never oversells a flash sale under 1,000 concurrent orders', async () => {
    const product = await get()
      .db.insertInto('products')
      .values({
        appid: SAFE_ACCOUNT.appid,
        sku: 'flash-rush',
        kind: 'flash_sale',
        name: '秒杀压力测试',
        price_fen: 100,
        stock: 10,
        per_member_limit: 1,
        created_at: new Date(),
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    const buyers = await get()
      .db.insertInto('members')
      .values(
        Array.from({ length: 1000 }, (_, i) => ({
          appid: shop.settings.mpAppid,
          openid: `o_rush_${i}`,
          first_seen_at: new Date(),
        })),
      )
      .returning(['id', 'openid'])
      .execute()
    const results = await Promise.all(
      buyers.map((m) =>
        createOrder(get().db, shop.gateway, shop.settings, {
          memberId: m.id,
          mpOpenid: m.openid,
          sku: 'flash-rush',
          now: new Date(),
        }),
      ),
    )
    expect(results.filter((r) => r.status === 'created')).toHaveLength(10)
    expect(results.filter((r) => r.status === 'sold_out')).toHaveLength(990)
    const left = await get()
      .db.selectFrom('products')
      .select('stock')
      .where('id', '=', product.id)
      .executeTakeFirstOrThrow()
    expect(left.stock).toBe(0)
  })

  it('closes expired orders (stock back), fails unfilled group buys and refunds them', async () => {
    const [a, b] = [await login(), await login()]
    const stock = async () =>
      (
        await get()
          .db.selectFrom('products')
          .select('stock')
          .where('sku', '=', 'group-gift')
          .executeTakeFirstOrThrow()
      ).stock
    const before = await stock()
    const lead = await buy(a.token, { sku: 'group-gift' })
    const unpaid = await buy(b.token, { sku: 'group-gift', groupBuyId: lead.json.order.groupBuyId })
    expect(await stock()).toBe(before! - 2)
    await pay.pay(lead.json.order.outTradeNo)
    offset.ms = 25 * 3600_000 // a day later
    try {
      const summary = await runShopMaintenance(get().db, shop, {
        now: clock.now(),
        timeZone: 'Asia/Shanghai',
        logger: silentLogger,
      })
      // (earlier tests left unpaid orders too: they close as well)
      expect(summary).toMatchObject({ groupsFailed: 1, errors: 0 })
      expect(summary.closed).toBeGreaterThanOrEqual(1)
    } finally {
      offset.ms = 0
    }
    // both units back: the unpaid order's when it closed, the refunded leader's when its group failed
    expect(await stock()).toBe(before)
    expect(pay.order(unpaid.json.order.outTradeNo)?.state).toBe('CLOSED')
    const closed = await get()
      .db.selectFrom('orders')
      .select('status')
      .where('out_trade_no', '=', unpaid.json.order.outTradeNo)
      .executeTakeFirstOrThrow()
    expect(closed.status).toBe('closed')
    const refund = await get()
      .db.selectFrom('refunds')
      .select(['out_refund_no', 'status'])
      .where('out_refund_no', '=', `R-${lead.json.order.outTradeNo}-group`)
      .executeTakeFirstOrThrow()
    expect(refund.status).toBe('processing')
    const { answer } = await pay.completeRefund(refund.out_refund_no)
    expect(answer?.status).toBe(204)
    const order = await api(`/orders/${lead.json.order.outTradeNo}`, { token: a.token })
    expect(order.json.order).toMatchObject({ status: 'refunded', refundedFen: 1990 })
    expect(await stock()).toBe(before) // once: the refund settling gives nothing more back
  })

  it('refunds partially, idempotently, never more than was paid', async () => {
    const u = await login()
    const order = await buy(u.token, { sku: 'vip-30' })
    const no = order.json.order.outTradeNo as string
    await pay.pay(no)
    const refund = (outRefundNo: string, amountFen: number) =>
      requestRefund(get().db, shop.gateway, shop.settings, {
        outTradeNo: no,
        amountFen,
        reason: '部分退款',
        outRefundNo,
        now: new Date(),
      })
    expect(await refund('RF-1', 1000)).toMatchObject({
      status: 'requested',
      refundStatus: 'processing',
    })
    expect(await refund('RF-1', 1000)).toMatchObject({ status: 'existing' })
    expect(await refund('RF-2', 2500)).toEqual({ status: 'too_much', refundable: 2000 })
    await pay.completeRefund('RF-1')
    const row = await get()
      .db.selectFrom('orders')
      .select(['status', 'refunded_fen'])
      .where('out_trade_no', '=', no)
      .executeTakeFirstOrThrow()
    expect(row).toEqual({ status: 'paid', refunded_fen: 1000 })
  })

  it('settles a refund WeChat Pay answers as final at once (SUCCESS, CLOSED, ABNORMAL)', async () => {
    const u = await login()
    const order = await buy(u.token, { sku: 'vip-30' })
    const no = order.json.order.outTradeNo as string
    await pay.pay(no)
    const refund = (outRefundNo: string, amountFen: number) =>
      requestRefund(get().db, shop.gateway, shop.settings, {
        outTradeNo: no,
        amountFen,
        reason: '即时退款',
        outRefundNo,
        now: new Date(),
      })
    const order_ = () =>
      get()
        .db.selectFrom('orders')
        .select(['status', 'refunded_fen'])
        .where('out_trade_no', '=', no)
        .executeTakeFirstOrThrow()
    try {
      pay.answerRefundsWith('SUCCESS')
      expect(await refund('RN-1', 1000)).toMatchObject({ refundStatus: 'success' })
      expect(await order_()).toEqual({ status: 'paid', refunded_fen: 1000 })
      // the REFUND.SUCCESS notification that follows is a duplicate: counted once
      const { answer } = await pay.completeRefund('RN-1')
      expect(answer?.status).toBeLessThan(300)
      expect(await order_()).toEqual({ status: 'paid', refunded_fen: 1000 })
      pay.answerRefundsWith('CLOSED')
      expect(await refund('RN-2', 500)).toMatchObject({ refundStatus: 'closed' })
      pay.answerRefundsWith('ABNORMAL')
      expect(await refund('RN-3', 500)).toMatchObject({ refundStatus: 'abnormal' })
      expect(await order_()).toEqual({ status: 'paid', refunded_fen: 1000 })
      const statuses = await get()
        .db.selectFrom('refunds')
        .select(['out_refund_no', 'status'])
        .where('out_refund_no', 'in', ['RN-1', 'RN-2', 'RN-3'])
        .orderBy('out_refund_no')
        .execute()
      expect(statuses.map((r) => r.status)).toEqual(['success', 'closed', 'abnormal'])
    } finally {
      pay.answerRefundsWith('PROCESSING')
    }
  })

  it('applies a refund completed after ABNORMAL, by notification or by polling, and counts it against the cap meanwhile', async () => {
    let token = ''
    /** A new member buys a 30-day membership (3000 fen), paid. */
    const buyPaid = async () => {
      token = (await login()).token
      const no = (await buy(token, { sku: 'vip-30' })).json.order.outTradeNo as string
      await pay.pay(no)
      return no
    }
    const refund = (no: string, outRefundNo: string, amountFen: number, now = new Date()) =>
      requestRefund(get().db, shop.gateway, shop.settings, {
        outTradeNo: no,
        amountFen,
        reason: '异常后完成',
        outRefundNo,
        now,
      })
    const orderRow = (no: string) =>
      get()
        .db.selectFrom('orders')
        .select(['status', 'refunded_fen'])
        .where('out_trade_no', '=', no)
        .executeTakeFirstOrThrow()
    const refundStatus = async (outRefundNo: string) =>
      (
        await get()
          .db.selectFrom('refunds')
          .select('status')
          .where('out_refund_no', '=', outRefundNo)
          .executeTakeFirstOrThrow()
      ).status
    const grant = (no: string) =>
      get()
        .db.selectFrom('purchase_grants as g')
        .innerJoin('orders as o', 'o.id', 'g.order_id')
        .select([
          'g.points',
          'g.points_taken_back',
          'g.points_status',
          'g.membership_days_taken_back',
        ])
        .where('o.out_trade_no', '=', no)
        .executeTakeFirstOrThrow()

    // 1. by notification: the card route failed (ABNORMAL); the operator completes it at WeChat
    // Pay (apply-abnormal-refund), which sends REFUND.SUCCESS — never a second refund
    const no = await buyPaid()
    expect(await refund(no, `RA-${no}`, 3000)).toMatchObject({ refundStatus: 'processing' })
    expect((await pay.completeRefund(`RA-${no}`, { status: 'ABNORMAL' })).answer?.status).toBe(204)
    expect(await refundStatus(`RA-${no}`)).toBe('abnormal')
    // the money is waiting at WeChat Pay: it still counts, a second refund of it is refused
    expect(await refund(no, `RA2-${no}`, 3000)).toEqual({ status: 'too_much', refundable: 0 })
    expect(await refund(no, `RA3-${no}`, 1)).toEqual({ status: 'too_much', refundable: 0 })
    expect((await pay.completeRefund(`RA-${no}`)).answer?.status).toBe(204)
    expect(await refundStatus(`RA-${no}`)).toBe('success')
    expect(await orderRow(no)).toEqual({ status: 'refunded', refunded_fen: 3000 })
    // what the purchase granted follows the money, as for any refund
    const g = await grant(no)
    expect(g).toMatchObject({ points_status: 'cancelled', membership_days_taken_back: 30 })
    expect(g.points_taken_back).toBe(g.points)
    expect((await api('/me', { token })).json.member.membership).toBeNull()
    // the notification again: once
    expect((await pay.completeRefund(`RA-${no}`)).answer?.status).toBe(204)
    expect(await orderRow(no)).toEqual({ status: 'refunded', refunded_fen: 3000 })

    // 2. by polling: the same, but the REFUND.SUCCESS notification is lost
    const lost = await buyPaid()
    const t0 = new Date()
    expect(await refund(lost, `RB-${lost}`, 3000, t0)).toMatchObject({ refundStatus: 'processing' })
    await pay.completeRefund(`RB-${lost}`, { status: 'ABNORMAL' })
    expect(await refundStatus(`RB-${lost}`)).toBe('abnormal')
    const queries = () => pay.calls(`/v3/refund/domestic/refunds/RB-${lost}`)
    const before = queries()
    const maintain = (at: Date) =>
      runShopMaintenance(get().db, shop, {
        now: at,
        timeZone: 'Asia/Shanghai',
        logger: silentLogger,
      })
    const minutes = (m: number) => new Date(t0.getTime() + m * 60_000)
    // an abnormal refund waits on a person: asked about hourly, not every 10 minutes
    await maintain(minutes(30))
    expect(queries()).toBe(before)
    expect((await maintain(minutes(61))).errors).toBe(0)
    expect(queries()).toBe(before + 1)
    expect(await refundStatus(`RB-${lost}`)).toBe('abnormal') // still, at WeChat Pay too
    // the operator completes it; its notification is lost
    await pay.completeRefund(`RB-${lost}`, { deliver: false })
    await maintain(minutes(100))
    expect(queries()).toBe(before + 1)
    expect((await maintain(minutes(122))).errors).toBe(0)
    expect(queries()).toBe(before + 2)
    expect(await refundStatus(`RB-${lost}`)).toBe('success')
    expect(await orderRow(lost)).toEqual({ status: 'refunded', refunded_fen: 3000 })
    expect(await grant(lost)).toMatchObject({ membership_days_taken_back: 30 })
  })

  /** Runs maintenance a day later (past every group buy's deadline). */
  const maintainLater = async (
    o: { db?: ShopDb; shop?: ShopRouteOptions['shop']; laterMs?: number } = {},
  ) => {
    offset.ms = 25 * 3600_000 + (o.laterMs ?? 0)
    try {
      return await runShopMaintenance(o.db ?? get().db, o.shop ?? shop, {
        now: clock.now(),
        timeZone: 'Asia/Shanghai',
        logger: silentLogger,
      })
    } finally {
      offset.ms = 0
    }
  }
  /** The database as a process sees it that dies right after it marks a group buy failed. */
  const dyingAfterGroupFails = (): ShopDb => {
    let dead = false
    return get().db.withPlugin({
      transformQuery({ node }) {
        if (dead) throw new Error('the process died')
        const text = JSON.stringify(node)
        if (
          node.kind === 'UpdateQueryNode' &&
          text.includes('"group_buys"') &&
          text.includes('"failed"')
        )
          dead = true
        return node
      },
      transformResult: async ({ result }) => result,
    })
  }
  const groupRefund = (outTradeNo: string) =>
    get()
      .db.selectFrom('refunds')
      .select(['amount_fen', 'status', 'error'])
      .where('out_refund_no', '=', `R-${outTradeNo}-group`)
      .executeTakeFirst()

  it('never loses the refunds of a failed group buy: written with the failure, sent until accepted', async () => {
    const a = await login()
    const lead = await buy(a.token, { sku: 'group-gift' })
    const no = lead.json.order.outTradeNo as string
    await pay.pay(no)
    // the process dies right after marking the group failed …
    await maintainLater({ db: dyingAfterGroupFails() }).catch(() => undefined)
    // … the next run cannot reach WeChat Pay …
    const unreachable = {
      ...shop,
      gateway: {
        ...shop.gateway,
        refund: async () => {
          throw new Error('connect ECONNREFUSED')
        },
      },
    }
    await maintainLater({ shop: unreachable })
    expect(await groupRefund(no)).toMatchObject({
      amount_fen: 1990,
      status: 'requested',
      error: expect.stringContaining('ECONNREFUSED'),
    })
    // … and the one after its back-off (a minute after the failed try) sends it
    expect(await maintainLater({ laterMs: 60_000 })).toMatchObject({ errors: 0 })
    expect(await groupRefund(no)).toMatchObject({ status: 'processing', error: null })
    await pay.completeRefund(`R-${no}-group`)
    const order = await api(`/orders/${no}`, { token: a.token })
    expect(order.json.order).toMatchObject({ status: 'refunded', refundedFen: 1990 })
  })

  /** A product of its own (stock counts no other test disturbs); its stock now. */
  const ownProduct = async (
    sku: string,
    values: { kind: 'flash_sale' | 'group_buy'; stock: number | null },
  ) => {
    await get()
      .db.insertInto('products')
      .values({
        appid: SAFE_ACCOUNT.appid,
        sku,
        name: sku,
        price_fen: 1990,
        per_member_limit: null,
        created_at: new Date(),
        ...values,
        ...(values.kind === 'group_buy' ? { group_size: 3, group_max: 5, group_hours: 24 } : {}),
      })
      .execute()
    return async () =>
      (
        await get()
          .db.selectFrom('products')
          .select('stock')
          .where('sku', '=', sku)
          .executeTakeFirstOrThrow()
      ).stock
  }
  const orderRow = (outTradeNo: string) =>
    get()
      .db.selectFrom('orders')
      .select(['status', 'flag_reason'])
      .where('out_trade_no', '=', outTradeNo)
      .executeTakeFirstOrThrow()

  it('gives back each unit of a failed group buy once: the paid ones with the failure, a payment after it with its refund', async () => {
    const stock = await ownProduct('group-stock', { kind: 'group_buy', stock: 5 })
    const [a, b] = [await login(), await login()]
    const lead = (await buy(a.token, { sku: 'group-stock' })).json.order
    const late = (await buy(b.token, { sku: 'group-stock', groupBuyId: lead.groupBuyId })).json
      .order
    await pay.pay(lead.outTradeNo)
    expect(await stock()).toBe(3)
    // the expiry pass cannot ask WeChat Pay about the unpaid order: still pending, its group fails
    const unreachable = {
      ...shop,
      gateway: {
        ...shop.gateway,
        query: async () => {
          throw new Error('connect ECONNREFUSED')
        },
      },
    }
    await maintainLater({ shop: unreachable })
    const group = await get()
      .db.selectFrom('group_buys')
      .select('status')
      .where('id', '=', lead.groupBuyId)
      .executeTakeFirstOrThrow()
    expect(group.status).toBe('failed')
    expect(await orderRow(late.outTradeNo)).toMatchObject({ status: 'pending' })
    expect(await stock()).toBe(4) // the paid leader's unit, with the failure and its refund
    // … then the buyer pays: refunded, and the unit comes back with the refund
    const paid = await pay.pay(late.outTradeNo, { deliver: false })
    expect((await pay.deliver(`${server.url}/pay/notify`, paid.notification)).status).toBe(204)
    expect(await orderRow(late.outTradeNo)).toEqual({
      status: 'flagged',
      flag_reason: 'paid after the group buy failed',
    })
    expect(
      await get()
        .db.selectFrom('refunds')
        .select('reason')
        .where('out_refund_no', '=', `R-${late.outTradeNo}`)
        .executeTakeFirst(),
    ).toEqual({ reason: 'paid after the group buy failed' })
    expect(await stock()).toBe(5)
    // once: the notification again, the next passes, the refunds settling give nothing more back
    expect((await pay.deliver(`${server.url}/pay/notify`, paid.notification)).status).toBe(204)
    expect(await maintainLater({ laterMs: 120_000 })).toMatchObject({ errors: 0 })
    await pay.completeRefund(`R-${lead.outTradeNo}-group`)
    await pay.completeRefund(`R-${late.outTradeNo}`)
    expect(await maintainLater({ laterMs: 240_000 })).toMatchObject({ errors: 0 })
    expect(await orderRow(lead.outTradeNo)).toMatchObject({ status: 'refunded' })
    expect(await stock()).toBe(5)
  })

  it('gives back on expiry only a unit the order took (ordered unlimited, then limited to 1)', async () => {
    const stock = await ownProduct('open-ended', { kind: 'flash_sale', stock: null })
    const first = (await buy((await login()).token, { sku: 'open-ended' })).json.order
    // the operator limits it to one unit: an absolute stock, as the product update (PATCH
    // shop/products/:sku) sets it (not through the route: the audit test counts its entries)
    await get()
      .db.updateTable('products')
      .set({ stock: 1 })
      .where('sku', '=', 'open-ended')
      .execute()
    const second = (await buy((await login()).token, { sku: 'open-ended' })).json.order
    expect(await stock()).toBe(0)
    // both expire unpaid: only the second gives its unit back
    expect(await maintainLater()).toMatchObject({ errors: 0 })
    expect(await orderRow(first.outTradeNo)).toMatchObject({ status: 'closed' })
    expect(await orderRow(second.outTradeNo)).toMatchObject({ status: 'closed' })
    expect(await stock()).toBe(1)
    // one unit: one buyer gets it, the next is refused
    expect((await buy((await login()).token, { sku: 'open-ended' })).status).toBe(201)
    expect((await buy((await login()).token, { sku: 'open-ended' })).json.code).toBe('SOLD_OUT')
  })

  it('asks again about an expired order whose query failed only after a minute, after the others', async () => {
    const u = await login()
    const failing = (await buy(u.token, { sku: 'vip-30' })).json.order.outTradeNo as string
    const asked: string[] = []
    const flaky = {
      ...shop,
      gateway: {
        ...shop.gateway,
        query: async (no: string) => {
          asked.push(no)
          if (no === failing) throw new Error('SYSTEM_ERROR 系统繁忙')
          return shop.gateway.query(no)
        },
      },
    }
    expect(await maintainLater({ shop: flaky })).toMatchObject({ errors: 1 })
    expect(asked.filter((n) => n === failing)).toHaveLength(1)
    // 30 s later: not asked again yet; a minute later: asked again
    await maintainLater({ shop: flaky, laterMs: 30_000 })
    expect(asked.filter((n) => n === failing)).toHaveLength(1)
    await maintainLater({ shop: flaky, laterMs: 61_000 })
    expect(asked.filter((n) => n === failing)).toHaveLength(2)
  })

  it('refunds what remains when a group buy fails after a partial refund', async () => {
    const a = await login()
    const lead = await buy(a.token, { sku: 'group-gift' })
    const no = lead.json.order.outTradeNo as string
    await pay.pay(no)
    const partial = await requestRefund(get().db, shop.gateway, shop.settings, {
      outTradeNo: no,
      amountFen: 100,
      reason: '差价',
      outRefundNo: `RP-${no}`,
      now: new Date(),
    })
    expect(partial).toMatchObject({ status: 'requested', refundStatus: 'processing' })
    await pay.completeRefund(`RP-${no}`)
    expect(await maintainLater()).toMatchObject({ errors: 0 })
    expect(await groupRefund(no)).toMatchObject({ amount_fen: 1890, status: 'processing' })
    await pay.completeRefund(`R-${no}-group`)
    const order = await api(`/orders/${no}`, { token: a.token })
    expect(order.json.order).toMatchObject({ status: 'refunded', refundedFen: 1990 })
  })

  it('refunds only what remains when a group buy fails while a partial refund is abnormal', async () => {
    const a = await login()
    const lead = await buy(a.token, { sku: 'group-gift' })
    const no = lead.json.order.outTradeNo as string
    await pay.pay(no)
    const partial = await requestRefund(get().db, shop.gateway, shop.settings, {
      outTradeNo: no,
      amountFen: 100,
      reason: '差价',
      outRefundNo: `RPA-${no}`,
      now: new Date(),
    })
    expect(partial).toMatchObject({ status: 'requested', refundStatus: 'processing' })
    await pay.completeRefund(`RPA-${no}`, { status: 'ABNORMAL' })
    expect(await maintainLater()).toMatchObject({ errors: 0 })
    expect(await groupRefund(no)).toMatchObject({ amount_fen: 1890, status: 'processing' })
  })

  it('asks WeChat Pay about a polled pending order at most once every few seconds', async () => {
    const u = await login()
    const order = await buy(u.token, { sku: 'vip-30' })
    const no = order.json.order.outTradeNo as string
    const queries = () => pay.calls(`/v3/pay/transactions/out-trade-no/${no}`)
    const before = queries()
    const polls = await Promise.all(
      Array.from({ length: 5 }, () => api(`/orders/${no}`, { token: u.token })),
    )
    expect(polls.map((p) => p.status)).toEqual([200, 200, 200, 200, 200])
    expect(queries() - before).toBe(1)
    offset.ms = ORDER_QUERY_INTERVAL_MS + 1000
    try {
      await pay.pay(no, { deliver: false }) // paid, the notification lost: the poll finds it
      const later = await api(`/orders/${no}`, { token: u.token })
      expect(queries() - before).toBe(2)
      expect(later.json.order).toMatchObject({ status: 'paid' })
    } finally {
      offset.ms = 0
    }
  })

  it('closes an expired order its page keeps polling, once: the unit comes back for another buyer', async () => {
    const stock = await ownProduct('polled-flash', { kind: 'flash_sale', stock: 1 })
    const u = await login()
    const no = (await buy(u.token, { sku: 'polled-flash' })).json.order.outTradeNo as string
    expect(await stock()).toBe(0)
    const status = async () =>
      (
        await get()
          .db.selectFrom('orders')
          .select('status')
          .where('out_trade_no', '=', no)
          .executeTakeFirstOrThrow()
      ).status
    // past its expiry (15 min) the page polls every 30 s, and maintenance runs after each poll
    for (let s = 0; s <= 180; s += 30) {
      offset.ms = 16 * 60_000 + s * 1000
      try {
        const polled = await api(`/orders/${no}`, { token: u.token })
        expect(polled.status).toBe(200)
        await runShopMaintenance(get().db, shop, {
          now: new Date(clock.now().getTime() + 1000),
          timeZone: 'Asia/Shanghai',
          logger: silentLogger,
        })
      } finally {
        offset.ms = 0
      }
    }
    expect(await status()).toBe('closed')
    expect(pay.order(no)?.state).toBe('CLOSED')
    expect(pay.calls(`/v3/pay/transactions/out-trade-no/${no}/close`)).toBe(1)
    expect(await stock()).toBe(1)
    expect((await buy((await login()).token, { sku: 'polled-flash' })).status).toBe(201)
  })

  it('keeps an order whose prepay got no answer for the retry with the same clientKey; closes one WeChat Pay refused', async () => {
    const stock = await ownProduct('prepay-flash', { kind: 'flash_sale', stock: 2 })
    const realJsapi = shop.gateway.jsapi
    const jsapiCalls = () => pay.calls('/v3/pay/transactions/jsapi')
    /** The order with `clientKey`, WeChat Pay's jsapi answering as `fault` says the first time. */
    const attempt = async (clientKey: string, fault: 'system_error' | 'lost' | 'refused') => {
      const u = await login()
      shop.gateway.jsapi = async (r) => {
        shop.gateway.jsapi = realJsapi
        if (fault === 'system_error')
          throw new PayApiError('jsapi', 500, 'SYSTEM_ERROR', '系统繁忙')
        // WeChat Pay's own answer: signed (verified)
        if (fault === 'refused') throw new PayApiError('jsapi', 403, 'NO_AUTH', '商户无权限', true)
        await realJsapi(r) // WeChat Pay made the order, its answer was lost on the way
        throw new TypeError('fetch failed')
      }
      try {
        const first = await buy(u.token, { sku: 'prepay-flash', clientKey })
        return { u, first }
      } finally {
        shop.gateway.jsapi = realJsapi
      }
    }
    for (const fault of ['system_error', 'lost'] as const) {
      const { u, first } = await attempt(`tap-${fault}`, fault)
      expect(first.status).toBe(503)
      expect(first.json).toMatchObject({
        code: 'PAYMENT_UNAVAILABLE',
        order: { status: 'pending' },
      })
      const no = first.json.order.outTradeNo as string
      expect(await stock()).toBe(fault === 'system_error' ? 1 : 0) // held while it is pending
      // the retry asks WeChat Pay again: same out_trade_no, identical parameters
      const calls = jsapiCalls()
      const retry = await buy(u.token, { sku: 'prepay-flash', clientKey: `tap-${fault}` })
      expect(retry.status).toBe(200)
      expect(retry.json.order).toMatchObject({ outTradeNo: no, status: 'pending' })
      expect(jsapiCalls()).toBe(calls + 1)
      expect(retry.json.payment.package).toBe(`prepay_id=${pay.order(no)?.prepayId}`)
    }
    // both units held by the two pending orders; they come back when those expire
    expect(await maintainLater()).toMatchObject({ errors: 0 })
    expect(await stock()).toBe(2)
    // a refusal of WeChat Pay's own closes the new order at once: its unit is back
    const { first } = await attempt('tap-refused', 'refused')
    expect(first.status).toBe(502)
    expect(first.json).toMatchObject({ code: 'PAYMENT_REFUSED', order: { status: 'closed' } })
    expect(await stock()).toBe(2)
  })

  it('keeps an order whose prepay got a 4xx WeChat Pay did not sign (a proxy’s timeout or block page) for the retry', async () => {
    const stock = await ownProduct('prepay-proxy', { kind: 'flash_sale', stock: 2 })
    const realJsapi = shop.gateway.jsapi
    const unsigned: [number, string][] = [
      [408, '<html><body>408 Request Timeout</body></html>'],
      [403, '<html><body>403 Forbidden</body></html>'],
    ]
    for (const [status, page] of unsigned) {
      const u = await login()
      const clientKey = `tap-proxy-${status}`
      shop.gateway.jsapi = async (r) => {
        shop.gateway.jsapi = realJsapi
        await realJsapi(r) // WeChat Pay made the order; a middlebox answered in its place
        throw new PayApiError('jsapi', status, 'HTTP_ERROR', page, false)
      }
      let first: Awaited<ReturnType<typeof buy>>
      try {
        first = await buy(u.token, { sku: 'prepay-proxy', clientKey })
      } finally {
        shop.gateway.jsapi = realJsapi
      }
      expect(first.status, String(status)).toBe(503)
      expect(first.json).toMatchObject({
        code: 'PAYMENT_UNAVAILABLE',
        order: { status: 'pending' },
      })
      const no = first.json.order.outTradeNo as string
      // the retry gets the order WeChat Pay made, to pay
      const retry = await buy(u.token, { sku: 'prepay-proxy', clientKey })
      expect(retry.status).toBe(200)
      expect(retry.json.order).toMatchObject({ outTradeNo: no, status: 'pending' })
      expect(retry.json.payment.package).toBe(`prepay_id=${pay.order(no)?.prepayId}`)
    }
    expect(await stock()).toBe(0) // both units held by the pending orders
  })

  it('refunds a flagged order (paid another amount) against what WeChat Pay says was paid', async () => {
    const u = await login()
    const order = await buy(u.token, { sku: 'vip-30' })
    const no = order.json.order.outTradeNo as string
    const local = order.json.order.amountFen as number
    await pay.pay(no, { amountTotal: local - 1 })
    const row = () =>
      get()
        .db.selectFrom('orders')
        .select(['status', 'paid_total_fen', 'refunded_fen'])
        .where('out_trade_no', '=', no)
        .executeTakeFirstOrThrow()
    expect(await row()).toMatchObject({ status: 'flagged', paid_total_fen: local - 1 })
    const refund = (outRefundNo: string, amountFen: number) =>
      requestRefund(get().db, shop.gateway, shop.settings, {
        outTradeNo: no,
        amountFen,
        reason: '金额不符，退款',
        outRefundNo,
        now: new Date(),
      })
    expect(await refund(`RF-${no}-all`, local)).toEqual({
      status: 'too_much',
      refundable: local - 1,
    })
    expect(await refund(`RF-${no}`, local - 1)).toMatchObject({ refundStatus: 'processing' })
    await pay.completeRefund(`RF-${no}`)
    expect(await row()).toMatchObject({ status: 'refunded', refunded_fen: local - 1 })
  })

  it('keeps a refund whose 4xx answers WeChat Pay did not sign (a proxy’s page) requested: never ended failed', async () => {
    const u = await login()
    const order = await buy(u.token, { sku: 'vip-30' })
    const no = order.json.order.outTradeNo as string
    await pay.pay(no)
    const proxied = {
      ...shop.gateway,
      refund: async () => {
        throw new PayApiError('refund', 403, 'HTTP_ERROR', '<html>403 Forbidden</html>', false)
      },
    }
    const t0 = new Date()
    await requestRefund(get().db, proxied, shop.settings, {
      outTradeNo: no,
      amountFen: 100,
      reason: '代理',
      outRefundNo: `RP-${no}`,
      now: t0,
    })
    let at = t0
    for (let i = 2; i <= REFUND_MAX_ATTEMPTS + 1; i++) {
      at = new Date(at.getTime() + refundRetryDelayMs(i - 1))
      await sendRefund(get().db, proxied, shop.settings, `RP-${no}`, at)
    }
    // no answer of WeChat Pay's own: it may still be creating that refund — sent again, never
    // failed (a failed refund stops holding the money: a re-issue could pay twice)
    expect(
      await get()
        .db.selectFrom('refunds')
        .select('status')
        .where('out_refund_no', '=', `RP-${no}`)
        .executeTakeFirstOrThrow(),
    ).toEqual({ status: 'requested' })
  })

  it('backs off a refund WeChat Pay keeps refusing, ends it failed, and never lets it hold newer ones', async () => {
    const u = await login()
    const order = await buy(u.token, { sku: 'vip-30' })
    const no = order.json.order.outTradeNo as string
    await pay.pay(no)
    // WeChat Pay's own refusal (a 4xx answer): decided, not created
    const refusing = {
      ...shop.gateway,
      refund: async () => {
        throw new PayApiError('refund', 403, 'NOT_ENOUGH', '基本账户余额不足', true)
      },
    }
    const t0 = new Date()
    expect(
      await requestRefund(get().db, refusing, shop.settings, {
        outTradeNo: no,
        amountFen: 100,
        reason: '一直失败',
        outRefundNo: `RQ-${no}`,
        now: t0,
      }),
    ).toMatchObject({ refundStatus: 'requested' })
    const row = () =>
      get()
        .db.selectFrom('refunds')
        .select(['status', 'attempts', 'next_attempt_at'])
        .where('out_refund_no', '=', `RQ-${no}`)
        .executeTakeFirstOrThrow()
    expect(await row()).toMatchObject({ status: 'requested', attempts: 1 })
    expect((await row()).next_attempt_at!.getTime() - t0.getTime()).toBe(60_000)
    // not due yet: the queue sends a newer refund and leaves this one alone
    const newer = await requestRefund(get().db, shop.gateway, shop.settings, {
      outTradeNo: no,
      amountFen: 100,
      reason: '正常',
      outRefundNo: `RQ2-${no}`,
      now: t0,
    })
    expect(newer).toMatchObject({ refundStatus: 'processing' })
    // each try waits twice as long; the tenth ends it failed (and it stops counting as refunded)
    let at = t0
    for (let i = 2; i <= REFUND_MAX_ATTEMPTS; i++) {
      at = new Date(at.getTime() + refundRetryDelayMs(i - 1))
      await sendRefund(get().db, refusing, shop.settings, `RQ-${no}`, at)
    }
    expect(await row()).toMatchObject({ status: 'failed', attempts: REFUND_MAX_ATTEMPTS })
    expect(refundRetryDelayMs(10)).toBe(6 * 3600_000)
    // operators see it: /healthz and the quanzi_refunds gauge read the same status
    const ops = await readOpsStatus(get().db, { now: () => at }, [])
    expect(ops.refunds.failed?.count).toBeGreaterThanOrEqual(1)
    expect(ops.refunds.failed?.oldestSeconds).toBeGreaterThan(0)
  })

  it('asks WeChat Pay before failing a refund whose sends all errored: one it accepted is followed, never refunded twice', async () => {
    /** A new member buys a 30-day membership (3000 fen), paid. */
    const buyPaid = async () => {
      const { token } = await login()
      const no = (await buy(token, { sku: 'vip-30' })).json.order.outTradeNo as string
      await pay.pay(no)
      return no
    }
    const row = (outRefundNo: string) =>
      get()
        .db.selectFrom('refunds')
        .select(['status', 'attempts', 'refund_id', 'next_attempt_at'])
        .where('out_refund_no', '=', outRefundNo)
        .executeTakeFirstOrThrow()
    /** Sends `outRefundNo` with `gateway` until its tries run out. */
    const exhaust = async (
      no: string,
      outRefundNo: string,
      gateway: typeof shop.gateway,
      t0: Date,
    ) => {
      expect(
        await requestRefund(get().db, gateway, shop.settings, {
          outTradeNo: no,
          amountFen: 3000,
          reason: '应答丢失',
          outRefundNo,
          now: t0,
        }),
      ).toMatchObject({ refundStatus: 'requested' })
      let at = t0
      for (let i = 2; i <= REFUND_MAX_ATTEMPTS; i++) {
        at = new Date(at.getTime() + refundRetryDelayMs(i - 1))
        await sendRefund(get().db, gateway, shop.settings, outRefundNo, at)
      }
      return at
    }

    // WeChat Pay accepts every send, but each answer is lost on our side (a timeout, or a 200
    // whose signature does not verify)
    const lossy = {
      ...shop.gateway,
      refund: async (r: Parameters<typeof shop.gateway.refund>[0]) => {
        await shop.gateway.refund(r)
        throw new Error('The operation was aborted due to timeout')
      },
    }
    const no = await buyPaid()
    await exhaust(no, `RL-${no}`, lossy, new Date())
    // not failed: WeChat Pay has it, processing
    expect(await row(`RL-${no}`)).toMatchObject({
      status: 'processing',
      attempts: REFUND_MAX_ATTEMPTS,
      refund_id: expect.any(String),
    })
    // so a re-issue under a new number is refused
    expect(
      await requestRefund(get().db, shop.gateway, shop.settings, {
        outTradeNo: no,
        amountFen: 3000,
        reason: '重新退款',
        outRefundNo: `RL2-${no}`,
        now: new Date(),
      }),
    ).toEqual({ status: 'too_much', refundable: 0 })
    await pay.completeRefund(`RL-${no}`)
    const order = await get()
      .db.selectFrom('orders')
      .select(['status', 'refunded_fen'])
      .where('out_trade_no', '=', no)
      .executeTakeFirstOrThrow()
    expect(order).toEqual({ status: 'refunded', refunded_fen: 3000 })

    // one WeChat Pay settled meanwhile (its notification lost too): settled from the query
    const settled = await buyPaid()
    const quick = {
      ...shop.gateway,
      refund: async (r: Parameters<typeof shop.gateway.refund>[0]) => {
        await shop.gateway.refund(r)
        await pay.completeRefund(r.outRefundNo, { deliver: false })
        throw new Error('socket hang up')
      },
    }
    await exhaust(settled, `RS-${settled}`, quick, new Date())
    expect(await row(`RS-${settled}`)).toMatchObject({ status: 'success' })

    // every send timed out and WeChat Pay has no such refund yet: the last send may still be
    // creating it — kept open and sent again later, never failed (a re-issue would pay twice)
    const pending = await buyPaid()
    const silent = {
      ...shop.gateway,
      refund: async () => {
        throw new Error('The operation was aborted due to timeout')
      },
    }
    const lastTry = await exhaust(pending, `RN-${pending}`, silent, new Date())
    const kept = await row(`RN-${pending}`)
    expect(kept).toMatchObject({ status: 'requested', attempts: REFUND_MAX_ATTEMPTS })
    expect(kept.next_attempt_at!.getTime()).toBeGreaterThan(lastTry.getTime())
    expect(
      await requestRefund(get().db, shop.gateway, shop.settings, {
        outTradeNo: pending,
        amountFen: 3000,
        reason: '重新退款',
        outRefundNo: `RN2-${pending}`,
        now: new Date(),
      }),
    ).toEqual({ status: 'too_much', refundable: 0 })

    // the query before failing it errors too: kept open and retried later, not failed
    const blind = await buyPaid()
    const unreachable = {
      ...shop.gateway,
      refund: async () => {
        throw new Error('connect ETIMEDOUT')
      },
      refundQuery: async () => {
        throw new Error('connect ETIMEDOUT')
      },
    }
    const last = await exhaust(blind, `RU-${blind}`, unreachable, new Date())
    const open = await row(`RU-${blind}`)
    expect(open).toMatchObject({ status: 'requested', attempts: REFUND_MAX_ATTEMPTS })
    expect(open.next_attempt_at!.getTime()).toBeGreaterThan(last.getTime())
    // WeChat Pay is back: the next try sends it
    expect(
      await sendRefund(get().db, shop.gateway, shop.settings, `RU-${blind}`, open.next_attempt_at!),
    ).toBe('processing')
  })

  it('asks WeChat Pay about a refund whose notification was lost, from 10 minutes on', async () => {
    const u = await login()
    const order = await buy(u.token, { sku: 'vip-30' })
    const no = order.json.order.outTradeNo as string
    await pay.pay(no)
    const t0 = new Date()
    const refund = (outRefundNo: string) =>
      requestRefund(get().db, shop.gateway, shop.settings, {
        outTradeNo: no,
        amountFen: 100,
        reason: '通知丢失',
        outRefundNo,
        now: t0,
      })
    for (const n of ['LS', 'LC', 'LP', 'LU'])
      expect(await refund(`${n}-${no}`)).toMatchObject({ refundStatus: 'processing' })
    // WeChat Pay settles two of them, but the notifications never arrive
    await pay.completeRefund(`LS-${no}`, { deliver: false })
    await pay.completeRefund(`LC-${no}`, { status: 'CLOSED', deliver: false })
    const status = async (n: string) =>
      (
        await get()
          .db.selectFrom('refunds')
          .select(['status', 'next_attempt_at'])
          .where('out_refund_no', '=', `${n}-${no}`)
          .executeTakeFirstOrThrow()
      ).status
    const queries = () => pay.calls(`/v3/refund/domestic/refunds/LS-${no}`)
    const maintain = (at: Date, gateway = shop.gateway) =>
      runShopMaintenance(
        get().db,
        { ...shop, gateway },
        { now: at, timeZone: 'Asia/Shanghai', logger: silentLogger },
      )
    // one that WeChat Pay does not know (it accepted it): back to the queue, sent again
    const forgetful = {
      ...shop.gateway,
      refundQuery: (outRefundNo: string) =>
        outRefundNo === `LU-${no}` ? Promise.resolve(null) : shop.gateway.refundQuery(outRefundNo),
    }
    await maintain(new Date(t0.getTime() + 9 * 60_000), forgetful)
    expect(queries()).toBe(0)
    expect(await status('LS')).toBe('processing')
    const summary = await maintain(new Date(t0.getTime() + 10 * 60_000), forgetful)
    expect(summary.errors).toBe(0)
    expect(queries()).toBe(1)
    expect(await status('LS')).toBe('success')
    expect(await status('LC')).toBe('closed')
    expect(await status('LU')).toBe('requested')
    const row = await get()
      .db.selectFrom('orders')
      .select('refunded_fen')
      .where('out_trade_no', '=', no)
      .executeTakeFirstOrThrow()
    expect(row.refunded_fen).toBe(100)
    // still processing at WeChat Pay: asked again no sooner than 10 minutes later
    const next = await get()
      .db.selectFrom('refunds')
      .select('next_attempt_at')
      .where('out_refund_no', '=', `LP-${no}`)
      .executeTakeFirstOrThrow()
    expect(next.next_attempt_at!.getTime() - t0.getTime()).toBe(20 * 60_000)
    const lpQueries = pay.calls(`/v3/refund/domestic/refunds/LP-${no}`)
    await maintain(new Date(t0.getTime() + 19 * 60_000))
    expect(pay.calls(`/v3/refund/domestic/refunds/LP-${no}`)).toBe(lpQueries)
    // the requeued one was sent again with the same number: processing once more
    expect(await status('LU')).toBe('processing')
    // the notification that finally arrives is a duplicate: counted once
    await pay.completeRefund(`LS-${no}`)
    expect(
      (
        await get()
          .db.selectFrom('orders')
          .select('refunded_fen')
          .where('out_trade_no', '=', no)
          .executeTakeFirstOrThrow()
      ).refunded_fen,
    ).toBe(100)
  })

  it('links a mini-program user without unionid to their follower with the 绑定 code', async () => {
    const u = await login() // no unionid: a member of the mini program's own
    const order = await buy(u.token, { sku: 'vip-30' })
    const no = order.json.order.outTradeNo as string
    await pay.pay(no)
    // its points are released after the refund window; a second purchase's stay frozen (待到账)
    await releaseFrozenPoints(get().db, { now: new Date(Date.now() + 8 * 86_400_000) })
    const tea = await buy(u.token, { sku: 'flash-tea' })
    await pay.pay(tea.json.order.outTradeNo)
    const mpMember = u.member.id as number
    const balance = async (id: number) => {
      const m = await get()
        .db.selectFrom('members')
        .select(['points_balance', 'points_frozen', 'purchase_count'])
        .where('id', '=', id)
        .executeTakeFirstOrThrow()
      const sum = await get()
        .db.selectFrom('points_ledger')
        .select([
          sql<number>`coalesce(sum(delta) filter (where state = 'available'), 0)::int`.as('n'),
          sql<number>`coalesce(sum(delta) filter (where state = 'frozen'), 0)::int`.as('frozen'),
        ])
        .where('member_id', '=', id)
        .executeTakeFirstOrThrow()
      // Σ ledger == balance, always (and Σ frozen entries == points_frozen)
      expect(Number(sum.n)).toBe(m.points_balance)
      expect(Number(sum.frozen)).toBe(m.points_frozen)
      return m
    }
    const earned = (await balance(mpMember)).points_balance
    expect(earned).toBeGreaterThan(0)
    const pending = (await balance(mpMember)).points_frozen
    expect(pending).toBeGreaterThan(0)
    // the follower asks the OA chat for a code
    const chat = createPusher({ url: `${server.url}/wechat`, account: SAFE_ACCOUNT })
    const followerOpenid = `o_oa_link_${Math.random().toString(36).slice(2, 8)}`
    const reply = (await chat.text(followerOpenid, '绑定')).reply!.Content as string
    const code = /(\d{6})/.exec(reply)![1]!
    const follower = await get()
      .db.selectFrom('members')
      .select('id')
      .where('openid', '=', followerOpenid)
      .executeTakeFirstOrThrow()
    const had = (await balance(follower.id)).points_balance // the follower's own points
    // a wrong code: refused, nothing moves
    const wrong = code === '000000' ? '000001' : '000000'
    expect((await api('/bind', { token: u.token, body: { code: wrong } })).status).toBe(400)
    expect((await api('/bind', { token: u.token, body: { code: 'abc' } })).status).toBe(400)
    expect((await balance(mpMember)).points_balance).toBe(earned)
    const bound = await api('/bind', { token: u.token, body: { code } })
    expect(bound.status).toBe(200)
    expect(bound.json.linked).toEqual({ orders: 2, points: earned })
    expect(bound.json.member.id).toBe(follower.id)
    expect(await balance(mpMember)).toEqual({
      points_balance: 0,
      points_frozen: 0,
      purchase_count: 0,
    })
    expect(await balance(follower.id)).toMatchObject({
      points_balance: had + earned,
      points_frozen: pending,
      purchase_count: 2,
    })
    // the purchases' grants follow the orders: released and refunded on the follower from now on
    const grants = await get()
      .db.selectFrom('purchase_grants')
      .select('member_id')
      .where('member_id', 'in', [mpMember, follower.id])
      .execute()
    expect(grants.map((g) => g.member_id)).toEqual([follower.id, follower.id])
    // the same token now speaks for the follower: the order and the membership are theirs
    const mine = await api(`/orders/${no}`, { token: u.token })
    expect(mine.status).toBe(200)
    expect((await api('/me', { token: u.token })).json.member.id).toBe(follower.id)
    // the code is used up; a new login lands on the follower
    expect((await api('/bind', { token: u.token, body: { code } })).status).toBe(400)
    const again = await api('/login', {
      body: { code: wx.loginCode(shop.settings.mpAppid, u.openid) },
    })
    expect(again.json.member.id).toBe(follower.id)
    // a user already linked to a follower is not moved to another one
    const other = `o_oa_link2_${Math.random().toString(36).slice(2, 8)}`
    const code2 = /(\d{6})/.exec((await chat.text(other, '绑定')).reply!.Content as string)![1]!
    expect((await api('/bind', { token: u.token, body: { code: code2 } })).json.code).toBe(
      'ALREADY_LINKED',
    )
  })

  it('places an order on the member the user is linked to now, even when the session read the link before a 绑定; a client key names one product', async () => {
    const u = await login()
    const chat = createPusher({ url: `${server.url}/wechat`, account: SAFE_ACCOUNT })
    const followerOpenid = `o_oa_race_${Math.random().toString(36).slice(2, 8)}`
    const code = /(\d{6})/.exec(
      (await chat.text(followerOpenid, '绑定')).reply!.Content as string,
    )![1]!
    const follower = await get()
      .db.selectFrom('members')
      .select('id')
      .where('openid', '=', followerOpenid)
      .executeTakeFirstOrThrow()
    expect((await api('/bind', { token: u.token, body: { code } })).status).toBe(200)
    // An order request whose session middleware read the link just before the 绑定 committed
    // reaches createOrder with the member the user has left.
    const stale = await createOrder(get().db, shop.gateway, shop.settings, {
      memberId: u.member.id as number,
      mpOpenid: u.openid,
      sku: 'vip-30',
      now: new Date(),
    })
    if (stale.status !== 'created') throw new Error(stale.status)
    expect(stale.order.member_id).toBe(follower.id)
    expect((await api(`/orders/${stale.order.out_trade_no}`, { token: u.token })).status).toBe(200)

    const clientKey = `reuse-${Math.random().toString(36).slice(2, 10)}`
    const first = await buy(u.token, { sku: 'vip-30', clientKey })
    expect(first.status).toBe(201)
    const again = await buy(u.token, { sku: 'vip-30', clientKey })
    expect(again.status).toBe(200)
    expect(again.json.order.outTradeNo).toBe(first.json.order.outTradeNo)
    // the same key for another product: refused, not answered with the first order under a new label
    const other = await buy(u.token, { sku: 'vip-365', clientKey })
    expect(other).toMatchObject({ status: 409, json: { code: 'CLIENT_KEY_REUSED' } })
  })

  it('limits how fast a user places orders (each a prepay call): ten at once, then 429', async () => {
    const u = await login()
    offset.at = Date.now()
    try {
      for (let i = 0; i < 10; i++) expect((await buy(u.token, { sku: 'vip-30' })).status).toBe(201)
      const refused = await buy(u.token, { sku: 'vip-30' })
      expect(refused.status).toBe(429)
      expect(refused.json).toMatchObject({ code: 'TOO_MANY_REQUESTS' })
      expect(refused.json.message).toBe('too many orders: retry in 10 s')
      // another user is not held back
      expect((await buy((await login()).token, { sku: 'vip-30' })).status).toBe(201)
    } finally {
      offset.at = undefined
    }
  })

  it('lets operators manage products, list orders and refund, with an audit trail', async () => {
    const admin = async (
      method: string,
      path: string,
      body?: unknown,
      headers: Record<string, string> = {},
    ) => {
      const res = await fetch(
        `${server.url}/admin/api/accounts/${SAFE_ACCOUNT.appid}/shop${path}`,
        {
          method,
          headers: {
            authorization: 'Bearer shop-operator-token-0123',
            'content-type': 'application/json',
            ...headers,
          },
          body: body === undefined ? undefined : JSON.stringify(body),
        },
      )
      return { status: res.status, json: (await res.json()) as Record<string, unknown> }
    }
    const created = await admin('POST', '/products', {
      sku: 'flash-later',
      kind: 'flash_sale',
      name: '明日秒杀',
      priceFen: 500,
      stock: 3,
      startsAt: new Date(Date.now() + 86_400_000).toISOString(),
    })
    expect(created.status).toBe(201)
    expect(
      (
        await admin('POST', '/products', {
          sku: 'flash-later',
          kind: 'flash_sale',
          name: 'x',
          priceFen: 1,
        })
      ).status,
    ).toBe(409)
    expect(
      (
        await admin('POST', '/products', {
          sku: 'Bad Sku',
          kind: 'flash_sale',
          name: 'x',
          priceFen: 1,
        })
      ).json.message,
    ).toBe('sku: lowercase letters, digits and -')
    expect(
      (
        await admin('POST', '/products', {
          sku: 'plan-x',
          kind: 'membership',
          name: 'x',
          priceFen: 1,
        })
      ).status,
    ).toBe(400)
    const u = await login()
    expect((await buy(u.token, { sku: 'flash-later' })).json.code).toBe('NOT_STARTED')
    expect((await admin('PATCH', '/products/flash-later', { startsAt: null })).status).toBe(200)
    const order = await buy(u.token, { sku: 'flash-later' })
    expect(order.status).toBe(201)
    await pay.pay(order.json.order.outTradeNo)
    const orders = await admin('GET', '/orders?status=paid&limit=200')
    expect((orders.json.orders as { out_trade_no: string }[]).map((x) => x.out_trade_no)).toContain(
      order.json.order.outTradeNo,
    )
    expect((await admin('GET', '/orders?status=weird')).status).toBe(400)
    const no = order.json.order.outTradeNo
    // no idempotency key: refused, nothing refunded
    const keyless = await admin('POST', `/orders/${no}/refunds`, { amountFen: 100, reason: '退款' })
    expect(keyless.status).toBe(400)
    expect(keyless.json.code).toBe('IDEMPOTENCY_KEY_REQUIRED')
    expect(
      (
        await admin(
          'POST',
          `/orders/${no}/refunds`,
          { amountFen: 600, reason: '退款' },
          { 'idempotency-key': 'too-much-1' },
        )
      ).json,
    ).toMatchObject({ code: 'TOO_MUCH', refundable: 500 })
    // the same Idempotency-Key twice is one refund, answered with the first
    const keyed = () =>
      admin(
        'POST',
        `/orders/${no}/refunds`,
        { amountFen: 100, reason: '退一部分' },
        { 'idempotency-key': 'op-2026-12-02-a' },
      )
    const first = await keyed()
    const again = await keyed()
    expect([first.status, again.status]).toEqual([201, 200])
    expect(again.json).toMatchObject({ status: 'existing', outRefundNo: first.json.outRefundNo })
    const keyedRows = await get()
      .db.selectFrom('refunds')
      .select('amount_fen')
      .where('out_refund_no', '=', String(first.json.outRefundNo))
      .execute()
    expect(keyedRows).toEqual([{ amount_fen: 100 }])
    const refund = await admin('POST', `/orders/${no}/refunds`, {
      amountFen: 200,
      reason: '部分退款',
      outRefundNo: 'OP-R-1',
    })
    expect(refund.status).toBe(201)
    expect(refund.json).toMatchObject({ status: 'requested', refundStatus: 'processing' })
    expect(
      (
        await admin('POST', `/orders/${no}/refunds`, {
          amountFen: 200,
          reason: '部分退款',
          outRefundNo: 'OP-R-1',
        })
      ).status,
    ).toBe(200)
    const log = await get()
      .db.selectFrom('audit_log')
      .select('action')
      .where('action', 'in', ['product.create', 'product.update', 'order.refund'])
      .execute()
    expect(log.map((l) => l.action).sort()).toEqual([
      'order.refund', // the keyed one, once
      'order.refund',
      'product.create',
      'product.update',
    ])
  })

  // after the audit-trail test, which counts every order.refund entry
  it('answers refunds asked for at once with one Idempotency-Key with the first result; a fully refunded order says so', async () => {
    const admin = async (path: string, body: unknown, headers: Record<string, string> = {}) => {
      const res = await fetch(
        `${server.url}/admin/api/accounts/${SAFE_ACCOUNT.appid}/shop${path}`,
        {
          method: 'POST',
          headers: {
            authorization: 'Bearer shop-operator-token-0123',
            'content-type': 'application/json',
            ...headers,
          },
          body: JSON.stringify(body),
        },
      )
      return { status: res.status, json: (await res.json()) as Record<string, unknown> }
    }
    const u = await login()
    const order = await buy(u.token, { sku: 'vip-30' })
    const no = order.json.order.outTradeNo as string
    const paid = order.json.order.amountFen as number
    await pay.pay(no)
    const same = await Promise.all(
      [1, 2, 3].map(() =>
        admin(
          `/orders/${no}/refunds`,
          { amountFen: 100, reason: '同一请求' },
          { 'idempotency-key': 'same-key-at-once' },
        ),
      ),
    )
    expect(same.map((r) => r.status).sort()).toEqual([200, 200, 201])
    // whichever of them sent it, each answers its result
    expect(same.map((r) => r.json.refundStatus)).toEqual(['processing', 'processing', 'processing'])
    expect(pay.refundRequests(String(same[0]!.json.outRefundNo))).toBe(1)
    await pay.completeRefund(String(same[0]!.json.outRefundNo))
    pay.answerRefundsWith('SUCCESS')
    try {
      const rest = await admin(`/orders/${no}/refunds`, {
        amountFen: paid - 100,
        reason: '全部退款',
        outRefundNo: `FULL-${no}`,
      })
      expect(rest.json).toMatchObject({ status: 'requested', refundStatus: 'success' })
    } finally {
      pay.answerRefundsWith('PROCESSING')
    }
    const again = await admin(`/orders/${no}/refunds`, {
      amountFen: 1,
      reason: '再退',
      outRefundNo: `MORE-${no}`,
    })
    expect(again.status).toBe(409)
    expect(again.json.message).toBe('the order is already refunded in full')
  })

  it('links template messages to product pages without prices', () => {
    expect(miniProgramLink(shop.settings, { sku: 'flash-tea' }, { campaign: 'c1' })).toEqual({
      appid: shop.settings.mpAppid,
      pagepath: 'pages/product/index?sku=flash-tea&campaign=c1',
    })
  })
})
