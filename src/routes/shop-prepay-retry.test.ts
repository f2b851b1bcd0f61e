/**
 * A buyer's retry of `POST /api/mp/orders` with the same clientKey for a pending order, end to end
 * against the sandbox Pay server: past the order's time_expire it is expired (maintenance.ts
 * `expireOrder`), never prepaid again; one WeChat Pay already has paid (its notification lost) is
 * refused ORDER_PAID there, and the buyer gets the order as paid.
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { SAFE_ACCOUNT, startServer, type TestServer } from '../../test/server.js'
import { flashSale } from '../../test/shop-server.js'
import { silentLogger } from '../logger.js'
import type { SandboxPay } from '../sandbox/pay-server.js'
import { startSandboxShop } from '../sandbox/sandbox-shop.js'
import { type SandboxApi, startSandboxApi } from '../sandbox/wechat-api-server.js'
import { nodeShop } from '../shop/node-shop.js'
import { ORDER_QUERY_INTERVAL_MS, type ShopRouteOptions } from './shop.js'

let wx: SandboxApi
beforeAll(async () => {
  wx = await startSandboxApi()
})
afterAll(() => wx.close())

forEachDatabase('retrying a prepay with the same clientKey', (get) => {
  let server: TestServer
  let pay: SandboxPay
  let shop: ShopRouteOptions['shop']
  const offset = { ms: 0 }
  /** When set, the server's clock stands still there (plus `offset`). */
  const frozen: { at?: number } = {}
  const clock = { now: () => new Date((frozen.at ?? Date.now()) + offset.ms) }
  let users = 0

  beforeAll(async () => {
    const sandbox = await startSandboxShop({ notifyUrl: 'http://placeholder/pay/notify' })
    pay = sandbox.pay
    shop = await nodeShop(sandbox.config, {
      appid: SAFE_ACCOUNT.appid,
      apiBase: wx.url,
      logger: silentLogger,
    })
    server = await startServer(get().db, { clock, shop })
    shop.settings.notifyUrl = `${server.url}/pay/notify`
  })
  afterAll(async () => {
    await server.close()
    await pay.close()
  })

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
    const code = wx.loginCode(shop.settings.mpAppid, `o_mp_retry_${++users}`)
    const res = await fetch(`${server.url}/api/mp/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code }),
    })
    expect(res.status).toBe(200)
    return ((await res.json()) as { token: string }).token
  }
  const buy = (token: string, body: Record<string, unknown>) => api('/orders', token, body)
  const jsapiCalls = () => pay.calls('/v3/pay/transactions/jsapi')
  /** Runs `f` with the server's clock past every order's expiry (15 minutes). */
  const afterExpiry = async <T>(f: () => Promise<T>) => {
    offset.ms = 16 * 60_000
    try {
      return await f()
    } finally {
      offset.ms = 0
    }
  }

  it('expires an order retried past its time_expire without a prepay: 409 ORDER_EXPIRED, its unit back', async () => {
    const stock = await flashSale(get().db, 'retry-expired', 1)
    const token = await login()
    const first = await buy(token, { sku: 'retry-expired', clientKey: 'retry-expired-1' })
    expect(first.status).toBe(201)
    const no = first.json.order.outTradeNo as string
    expect(await stock()).toBe(0)
    const calls = jsapiCalls()
    const retry = await afterExpiry(() =>
      buy(token, { sku: 'retry-expired', clientKey: 'retry-expired-1' }),
    )
    expect(retry.status).toBe(409)
    expect(retry.json).toMatchObject({
      code: 'ORDER_EXPIRED',
      order: { outTradeNo: no, status: 'closed' },
    })
    expect(retry.json.payment).toBeUndefined()
    expect(jsapiCalls()).toBe(calls) // no prepay under an expired out_trade_no
    // the expiry step of maintenance: asked about, closed at WeChat Pay and here, the unit back
    expect(pay.order(no)?.state).toBe('CLOSED')
    expect(await stock()).toBe(1)
    expect((await buy(await login(), { sku: 'retry-expired' })).status).toBe(201)
    // and every later retry gets the same answer
    const again = await afterExpiry(() =>
      buy(token, { sku: 'retry-expired', clientKey: 'retry-expired-1' }),
    )
    expect(again.status).toBe(409)
    expect(again.json).toMatchObject({ code: 'ORDER_EXPIRED', order: { status: 'closed' } })
  })

  it('never calls expired an order another request is asking WeChat Pay about: it may be paid', async () => {
    await flashSale(get().db, 'retry-expired-asked', 1)
    const token = await login()
    const first = await buy(token, { sku: 'retry-expired-asked', clientKey: 'retry-asked' })
    const no = first.json.order.outTradeNo as string
    await pay.pay(no, { deliver: false }) // paid, the notification lost
    // the order page's poll is asking about it right now (it claimed the query a second ago)
    const asking = new Date(Date.now() + 16 * 60_000 - 1000)
    await get()
      .db.updateTable('orders')
      .set({ queried_at: asking })
      .where('out_trade_no', '=', no)
      .execute()
    const retry = await afterExpiry(() =>
      buy(token, { sku: 'retry-expired-asked', clientKey: 'retry-asked' }),
    )
    expect(retry.status).toBe(503)
    expect(retry.json).toMatchObject({
      code: 'PAYMENT_UNAVAILABLE',
      order: { outTradeNo: no, status: 'pending' },
    })
    // once the query is free again, the retry finds it paid
    offset.ms = 16 * 60_000 + 10_000
    try {
      const later = await buy(token, { sku: 'retry-expired-asked', clientKey: 'retry-asked' })
      expect(later.status).toBe(200)
      expect(later.json).toMatchObject({ order: { outTradeNo: no, status: 'paid' }, payment: null })
    } finally {
      offset.ms = 0
    }
  })

  it('applies a payment found when a retry past time_expire asks WeChat Pay, without a prepay', async () => {
    const stock = await flashSale(get().db, 'retry-expired-paid', 1)
    const token = await login()
    const first = await buy(token, { sku: 'retry-expired-paid', clientKey: 'retry-paid-late' })
    const no = first.json.order.outTradeNo as string
    await pay.pay(no, { deliver: false }) // paid just in time, the notification lost
    const calls = jsapiCalls()
    const retry = await afterExpiry(() =>
      buy(token, { sku: 'retry-expired-paid', clientKey: 'retry-paid-late' }),
    )
    expect(retry.status).toBe(200)
    expect(retry.json).toMatchObject({ order: { outTradeNo: no, status: 'paid' }, payment: null })
    expect(jsapiCalls()).toBe(calls)
    expect(await stock()).toBe(0) // sold
  })

  it('answers a retry for an order WeChat Pay has paid (ORDER_PAID, notification lost) with the paid order', async () => {
    const stock = await flashSale(get().db, 'retry-paid', 5)
    const token = await login()
    const first = await buy(token, { sku: 'retry-paid', clientKey: 'retry-paid-1' })
    expect(first.status).toBe(201)
    const no = first.json.order.outTradeNo as string
    await pay.pay(no, { deliver: false })
    const calls = jsapiCalls()
    const retry = await buy(token, { sku: 'retry-paid', clientKey: 'retry-paid-1' })
    expect(jsapiCalls()).toBe(calls + 1) // refused ORDER_PAID, then asked about
    expect(retry.status).toBe(200)
    expect(retry.json).toMatchObject({ order: { outTradeNo: no, status: 'paid' }, payment: null })
    expect(await stock()).toBe(4) // sold, its unit kept
    // applied as a notification would have been: the purchase counted
    const member = await get()
      .db.selectFrom('orders')
      .innerJoin('members', 'members.id', 'orders.member_id')
      .select(['members.purchase_count', 'orders.transaction_id'])
      .where('orders.out_trade_no', '=', no)
      .executeTakeFirstOrThrow()
    expect(member).toEqual({ purchase_count: 1, transaction_id: pay.order(no)?.transactionId })
  })

  it('asks WeChat Pay about a refused retry’s order once per query interval, however often and at once it is retried', async () => {
    await flashSale(get().db, 'retry-refused', 20)
    const token = await login()
    const first = await buy(token, { sku: 'retry-refused', clientKey: 'retry-refused-1' })
    expect(first.status).toBe(201)
    const no = first.json.order.outTradeNo as string
    // WeChat Pay closed it on its side (so a prepay again is refused ORDER_CLOSED): pending here
    // until its expiry, and every retry is refused — each may ask WeChat Pay about it.
    pay.order(no)!.state = 'CLOSED'
    const queries = () => pay.calls(`/v3/pay/transactions/out-trade-no/${no}`)
    const before = queries()
    frozen.at = Date.now()
    try {
      const retry = () => buy(token, { sku: 'retry-refused', clientKey: 'retry-refused-1' })
      const answers = [await retry(), await retry(), await retry()]
      answers.push(...(await Promise.all(Array.from({ length: 5 }, retry))))
      // the retry that asked is told the refusal; the others, which did not ask, that the order
      // is being checked (another query may be under way and find it paid): never "refused"
      expect(answers[0]!.status).toBe(502)
      expect(answers[0]!.json).toMatchObject({
        code: 'PAYMENT_REFUSED',
        order: { outTradeNo: no, status: 'pending' },
      })
      for (const a of answers.slice(1)) {
        expect(a.status).toBe(503)
        expect(a.headers.get('retry-after')).toBe('5')
        expect(a.json).toMatchObject({
          code: 'PAYMENT_UNAVAILABLE',
          order: { outTradeNo: no, status: 'pending' },
        })
      }
      // One query for 8 refused retries within ORDER_QUERY_INTERVAL_MS, the others answered from
      // the stored order — as the order page's polls are (the same claim of `queried_at`).
      expect(queries() - before).toBe(1)
      const polled = await api(`/orders/${no}`, token)
      expect(polled.json.order.status).toBe('pending')
      expect(queries() - before).toBe(1)
      // The interval past: the next retry asks again.
      frozen.at += ORDER_QUERY_INTERVAL_MS
      expect((await retry()).status).toBe(502)
      expect(queries() - before).toBe(2)
    } finally {
      delete frozen.at
    }
  })
})
