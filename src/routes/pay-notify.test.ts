/**
 * `POST /pay/notify` with notifications that are signed and decrypt, but are not the documented
 * shape (src/pay/notification-resource.ts): refused 400 with WeChat Pay's failure body, logged at
 * warn, nothing written — never a 500, which WeChat Pay would retry for a day.
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { SAFE_ACCOUNT, startServer, type TestServer, testConfig } from '../../test/server.js'
import { createLogger, silentLogger } from '../logger.js'
import type { SandboxPay } from '../sandbox/pay-server.js'
import { startSandboxShop } from '../sandbox/sandbox-shop.js'
import { type SandboxApi, startSandboxApi } from '../sandbox/wechat-api-server.js'
import { nodeShop } from '../shop/node-shop.js'
import type { ShopRouteOptions } from './shop.js'

let wx: SandboxApi
beforeAll(async () => {
  wx = await startSandboxApi()
})
afterAll(() => wx.close())

forEachDatabase('WeChat Pay notifications of the wrong shape', (get) => {
  let server: TestServer
  let pay: SandboxPay
  let shop: ShopRouteOptions['shop']
  const logged: { level: string; msg: string }[] = []

  beforeAll(async () => {
    const sandbox = await startSandboxShop({ notifyUrl: 'http://placeholder/pay/notify' })
    pay = sandbox.pay
    shop = await nodeShop(sandbox.config, {
      appid: SAFE_ACCOUNT.appid,
      apiBase: wx.url,
      logger: silentLogger,
    })
    server = await startServer(get().db, {
      config: testConfig(),
      shop,
      logger: createLogger({ write: (line) => logged.push(JSON.parse(line)) }),
    })
    shop.settings.notifyUrl = `${server.url}/pay/notify`
  })
  afterAll(async () => {
    await server.close()
    await pay.close()
  })

  it('refuses a signed body or decrypted resource that is not the documented shape: 400 FAIL, nothing written', async () => {
    const code = wx.loginCode(shop.settings.mpAppid, 'o_mp_shape')
    const login = await fetch(`${server.url}/api/mp/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code }),
    })
    const { token } = (await login.json()) as { token: string }
    const bought = await fetch(`${server.url}/api/mp/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ sku: 'vip-90' }),
    })
    const no = ((await bought.json()) as { order: { outTradeNo: string } }).order.outTradeNo
    const { notification: genuine } = await pay.pay(no, { deliver: false })

    const signed = (body: string) => ({
      body,
      headers: { 'content-type': 'application/json', ...pay.signBody(body) },
    })
    const transaction = {
      appid: shop.settings.mpAppid,
      mchid: shop.gateway.mchid,
      out_trade_no: no,
      transaction_id: '4200000000000000001',
      trade_state: 'SUCCESS',
      amount: { total: 990, payer_total: 990, currency: 'CNY' },
    }
    const notification = (
      eventType: string,
      originalType: 'transaction' | 'refund' | 'mch_payment',
      // what WeChat Pay would never encrypt: any JSON value
      resource: unknown,
    ) =>
      pay.buildNotification({
        eventType,
        originalType,
        resource: resource as Record<string, unknown>,
      })
    const tx = (patch: Record<string, unknown>) =>
      notification('TRANSACTION.SUCCESS', 'transaction', { ...transaction, ...patch })
    const refund = (patch: Record<string, unknown>) =>
      notification('REFUND.SUCCESS', 'refund', {
        out_trade_no: no,
        out_refund_no: 'R-shape-1',
        refund_id: '50300000001',
        refund_status: 'SUCCESS',
        ...patch,
      })
    const bill = (patch: Record<string, unknown>) =>
      notification('MCHTRANSFER.BILL.FINISHED', 'mch_payment', {
        out_bill_no: 'CB-shape-1',
        transfer_bill_no: 'TB1',
        state: 'SUCCESS',
        mch_id: shop.gateway.mchid,
        transfer_amount: 5000,
        ...patch,
      })
    const cases: [string, { body: string; headers: Record<string, string> }][] = [
      ['null body', signed('null')],
      ['array body', signed('[]')],
      ['id with NUL', signed(genuine.body.replace(/"id":"EV-/, '"id":"EV-\\u0000'))],
      ['null resource', notification('TRANSACTION.SUCCESS', 'transaction', null)],
      ['out_trade_no with NUL', tx({ out_trade_no: `${no}\u0000` })],
      ['out_trade_no []', tx({ out_trade_no: [] })],
      ['out_trade_no {}', tx({ out_trade_no: {} })],
      ['out_trade_no true', tx({ out_trade_no: true })],
      ['out_trade_no missing', tx({ out_trade_no: undefined })],
      ['trade_state 1', tx({ trade_state: 1 })],
      ['amount.total past integer', tx({ amount: { total: 1e308, currency: 'CNY' } })],
      ['transaction_id with NUL', tx({ transaction_id: '42\u00000' })],
      ['out_refund_no with NUL', refund({ out_refund_no: 'R-\u0000' })],
      ['refund_status []', refund({ refund_status: [] })],
      ['out_bill_no with NUL', bill({ out_bill_no: 'CB-\u0000' })],
      ['transfer_amount text', bill({ transfer_amount: '5000' })],
      ['fail_reason with NUL', bill({ state: 'FAIL', fail_reason: 'x\u0000' })],
    ]
    const events = async () =>
      (
        await get()
          .db.selectFrom('pay_events')
          .select((eb) => eb.fn.countAll<string>().as('n'))
          .executeTakeFirstOrThrow()
      ).n
    const before = await events()
    for (const [name, n] of cases) {
      const answer = await pay.deliver(`${server.url}/pay/notify`, n)
      expect({ name, status: answer.status }).toEqual({ name, status: 400 })
      expect(JSON.parse(answer.body)).toEqual({ code: 'FAIL', message: expect.any(String) })
    }
    expect(await events()).toBe(before)
    const order = await get()
      .db.selectFrom('orders')
      .select(['status', 'transaction_id', 'paid_total_fen'])
      .where('out_trade_no', '=', no)
      .executeTakeFirstOrThrow()
    expect(order).toEqual({ status: 'pending', transaction_id: null, paid_total_fen: null })
    const refused = logged.filter((l) => l.msg === 'pay notification refused')
    expect(refused).toHaveLength(cases.length)
    expect(refused.every((l) => l.level === 'warn')).toBe(true)
    expect(logged.filter((l) => l.level === 'error')).toEqual([])
    // The genuine notification is applied.
    expect((await pay.deliver(`${server.url}/pay/notify`, genuine)).status).toBe(204)
  })
})
