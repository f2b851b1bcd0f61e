/**
 * A refused prepay retry (`POST /api/mp/orders` with the same clientKey) whose order was settled by
 * someone else between the retry's read of it (pending) and its claim of the order's query: the
 * retry does not ask WeChat Pay (the claim needs a pending order) and answers from the order as
 * stored — the one `settled` answer of routes/shop.ts. Closed by its expiry (the race at
 * `expires_at`: maintenance closes it at WeChat Pay, so the prepay is refused ORDER_CLOSED, and
 * here): 409 ORDER_EXPIRED. Paid (its notification arrives during the prepay, which WeChat Pay then
 * refuses ORDER_PAID): 200 with the paid order. End to end against the sandbox Pay server on
 * loopback, on both databases; the race is made exact by running the other party inside the
 * retry's own prepay call.
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { flashSale, startShopServer } from '../../test/shop-server.js'
import { silentLogger } from '../logger.js'
import { type SandboxApi, startSandboxApi } from '../sandbox/wechat-api-server.js'
import { runShopMaintenance } from '../shop/maintenance.js'

let wx: SandboxApi
beforeAll(async () => {
  wx = await startSandboxApi()
})
afterAll(() => wx.close())

forEachDatabase('a refused prepay retry whose order was settled meanwhile', (get) => {
  let server: Awaited<ReturnType<typeof startShopServer>>
  /** When set, the server's clock stands still there. */
  const frozen: { at?: number } = {}
  const clock = { now: () => new Date(frozen.at ?? Date.now()) }
  /** Run inside the next prepay (jsapi) call for the given order, before WeChat Pay is asked. */
  const during: { prepay?: { outTradeNo: string; run: () => Promise<void> } } = {}
  let users = 0

  beforeAll(async () => {
    server = await startShopServer(get().db, wx.url, { clock })
    const gateway = server.shop.gateway
    const jsapi = gateway.jsapi.bind(gateway)
    gateway.jsapi = async (r) => {
      const hook = during.prepay
      if (hook?.outTradeNo === r.outTradeNo) {
        delete during.prepay
        await hook.run()
      }
      return jsapi(r)
    }
  })
  afterAll(() => server.close())

  const api = async (path: string, token: string, body?: unknown) => {
    const res = await fetch(`${server.url}/api/mp${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    return {
      status: res.status,
      headers: res.headers,
      // biome-ignore lint/suspicious/noExplicitAny: response JSON, checked by the assertions
      json: (await res.json()) as Record<string, any>,
    }
  }
  const login = async () => {
    const code = wx.loginCode(server.shop.settings.mpAppid, `o_mp_settled_${++users}`)
    const res = await fetch(`${server.url}/api/mp/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code }),
    })
    expect(res.status).toBe(200)
    return ((await res.json()) as { token: string }).token
  }
  const buy = (token: string, body: Record<string, unknown>) => api('/orders', token, body)
  const calls = (no: string) => ({
    jsapi: server.pay.calls('/v3/pay/transactions/jsapi'),
    query: server.pay.calls(`/v3/pay/transactions/out-trade-no/${no}`),
    close: server.pay.calls(`/v3/pay/transactions/out-trade-no/${no}/close`),
  })
  const orderRow = (no: string) =>
    get()
      .db.selectFrom('orders')
      .select([
        'status',
        'closed_at',
        'queried_at',
        'stock_taken',
        'transaction_id',
        'member_id',
        'expires_at',
      ])
      .where('out_trade_no', '=', no)
      .executeTakeFirstOrThrow()

  it('answers 409 ORDER_EXPIRED to a refused retry whose order its expiry closed meanwhile, its unit back once, no prepay after the refusal', async () => {
    const stock = await flashSale(get().db, 'settled-closed', 1)
    const token = await login()
    const first = await buy(token, { sku: 'settled-closed', clientKey: 'settled-closed-1' })
    expect(first.status).toBe(201)
    const no = first.json.order.outTradeNo as string
    expect(await stock()).toBe(0)
    const expiresAt = (await orderRow(no)).expires_at
    // The retry comes a moment before its expiry (so it is prepaid, not expired); maintenance,
    // at the expiry, closes the order — at WeChat Pay (the prepay is then refused ORDER_CLOSED) and
    // here — between the retry's read of the order and its claim of the order's query.
    let maintenance: Awaited<ReturnType<typeof runShopMaintenance>> | undefined
    during.prepay = {
      outTradeNo: no,
      run: async () => {
        maintenance = await runShopMaintenance(get().db, server.shop, {
          now: expiresAt,
          timeZone: 'Asia/Shanghai',
          logger: silentLogger,
        })
      },
    }
    const before = calls(no)
    frozen.at = expiresAt.getTime() - 1
    try {
      const retry = await buy(token, { sku: 'settled-closed', clientKey: 'settled-closed-1' })
      expect(during.prepay).toBeUndefined() // the race ran, inside the retry's prepay
      expect(maintenance).toMatchObject({ closed: 1, paidLate: 0, errors: 0 })
      expect(retry.status).toBe(409)
      expect(retry.json).toMatchObject({
        code: 'ORDER_EXPIRED',
        order: { outTradeNo: no, sku: 'settled-closed', status: 'closed' },
      })
      expect(retry.json.payment).toBeUndefined()
      // The retry's one prepay (refused) and nothing after it; maintenance's query and close, the
      // retry asking nothing (its claim lost: the order was no longer pending).
      expect(calls(no)).toEqual({
        jsapi: before.jsapi + 1,
        query: before.query + 1,
        close: before.close + 1,
      })
      expect(server.pay.order(no)?.state).toBe('CLOSED')
      // Closed once, by maintenance at the expiry (its claim stamp kept); the unit back once.
      expect(await orderRow(no)).toMatchObject({
        status: 'closed',
        closed_at: expiresAt,
        queried_at: expiresAt,
        stock_taken: false,
        transaction_id: null,
      })
      expect(await stock()).toBe(1)
      // Every later retry gets the same answer, with no call to WeChat Pay and nothing changed.
      frozen.at = expiresAt.getTime() + 1000
      const again = await buy(token, { sku: 'settled-closed', clientKey: 'settled-closed-1' })
      expect(again.status).toBe(409)
      expect(again.json).toMatchObject({
        code: 'ORDER_EXPIRED',
        order: { outTradeNo: no, status: 'closed' },
      })
      expect(calls(no)).toEqual({
        jsapi: before.jsapi + 1,
        query: before.query + 1,
        close: before.close + 1,
      })
      expect(await stock()).toBe(1)
    } finally {
      delete frozen.at
      delete during.prepay
    }
  })

  it('answers 200 with the paid order to a refused retry whose payment was applied meanwhile, without asking WeChat Pay', async () => {
    const stock = await flashSale(get().db, 'settled-paid', 5)
    const token = await login()
    const first = await buy(token, { sku: 'settled-paid', clientKey: 'settled-paid-1' })
    expect(first.status).toBe(201)
    const no = first.json.order.outTradeNo as string
    expect(await stock()).toBe(4)
    // The payer pays and the notification is applied between the retry's read of the order and
    // its claim of the order's query: the prepay is refused ORDER_PAID.
    let delivered: unknown
    during.prepay = {
      outTradeNo: no,
      run: async () => {
        delivered = (await server.pay.pay(no)).answer
      },
    }
    const before = calls(no)
    try {
      const retry = await buy(token, { sku: 'settled-paid', clientKey: 'settled-paid-1' })
      expect(during.prepay).toBeUndefined()
      expect(delivered).toMatchObject({ status: 204 }) // the notification accepted
      expect(retry.status).toBe(200)
      expect(retry.json).toMatchObject({
        order: { outTradeNo: no, sku: 'settled-paid', status: 'paid' },
        payment: null,
      })
      // The retry's refused prepay only: no query (the notification had settled it), no close.
      expect(calls(no)).toEqual({
        jsapi: before.jsapi + 1,
        query: before.query,
        close: before.close,
      })
      const row = await orderRow(no)
      expect(row).toMatchObject({
        status: 'paid',
        closed_at: null,
        queried_at: null,
        stock_taken: true,
        transaction_id: server.pay.order(no)?.transactionId,
      })
      expect(await stock()).toBe(4) // sold, its unit kept
      // applied once, as the notification did: one purchase, one order
      const member = await get()
        .db.selectFrom('members')
        .select('purchase_count')
        .where('id', '=', row.member_id)
        .executeTakeFirstOrThrow()
      expect(member.purchase_count).toBe(1)
      const orders = await get()
        .db.selectFrom('orders')
        .select('out_trade_no')
        .where('member_id', '=', row.member_id)
        .execute()
      expect(orders.map((o) => o.out_trade_no)).toEqual([no])
    } finally {
      delete during.prepay
    }
  })
})
