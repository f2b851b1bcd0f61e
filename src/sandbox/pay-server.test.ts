/**
 * The sandbox WeChat Pay server as `npm start` runs it: refunds settle by themselves
 * (`settleRefundsAfterMs`) — PROCESSING, then REFUND.SUCCESS to the notify URL and a query that
 * answers SUCCESS — so an operator's refund made through the app ends without any sandbox control.
 */
import { afterAll, beforeAll, expect, it, vi } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { SAFE_ACCOUNT, startServer, type TestServer, testConfig } from '../../test/server.js'
import { silentLogger } from '../logger.js'
import { nodeShop } from '../shop/node-shop.js'
import type { SandboxPay } from './pay-server.js'
import { startSandboxShop } from './sandbox-shop.js'
import { type SandboxApi, startSandboxApi } from './wechat-api-server.js'

const ADMIN = 'sandbox-refund-operator-token'

let wx: SandboxApi
beforeAll(async () => {
  wx = await startSandboxApi()
})
afterAll(() => wx.close())

forEachDatabase('the sandbox Pay server settling refunds by itself', (get) => {
  let server: TestServer
  let pay: SandboxPay
  let shop: Awaited<ReturnType<typeof nodeShop>>

  beforeAll(async () => {
    const sandbox = await startSandboxShop({
      notifyUrl: 'http://placeholder/pay/notify',
      settleRefundsAfterMs: 20,
    })
    pay = sandbox.pay
    shop = await nodeShop(sandbox.config, {
      appid: SAFE_ACCOUNT.appid,
      apiBase: wx.url,
      logger: silentLogger,
    })
    server = await startServer(get().db, {
      config: testConfig({ ADMIN_TOKEN: ADMIN }),
      shop,
    })
    shop.settings.notifyUrl = `${server.url}/pay/notify`
  })
  afterAll(async () => {
    await server.close()
    await pay.close()
  })

  const http = async (path: string, token: string, body?: unknown) => {
    const res = await fetch(`${server.url}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    // biome-ignore lint/suspicious/noExplicitAny: response JSON, checked by the assertions
    return { status: res.status, json: (await res.json()) as Record<string, any> }
  }

  it('settles an operator refund made through the app, with no sandbox control called', async () => {
    const code = wx.loginCode(shop.settings.mpAppid, 'o_mp_sandbox_refund')
    const login = await fetch(`${server.url}/api/mp/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code }),
    })
    const { token } = (await login.json()) as { token: string }
    const order = await http('/api/mp/orders', token, { sku: 'vip-30' })
    expect(order.status).toBe(201)
    const no = order.json.order.outTradeNo as string
    // The payer pays (what the mini program's wx.requestPayment does).
    expect((await pay.pay(no)).answer?.status).toBe(204)

    const refund = await http(
      `/admin/api/accounts/${SAFE_ACCOUNT.appid}/shop/orders/${no}/refunds`,
      ADMIN,
      {
        amountFen: 300,
        reason: '退款',
        outRefundNo: 'R-sandbox-auto-1',
      },
    )
    expect(refund.status).toBe(201)
    expect(refund.json).toMatchObject({ refundStatus: 'processing' })

    // WeChat Pay's REFUND.SUCCESS reaches /pay/notify on its own: the refund and the order settle.
    const settled = () =>
      get()
        .db.selectFrom('refunds')
        .innerJoin('orders', 'orders.id', 'refunds.order_id')
        .select(['refunds.status', 'orders.refunded_fen'])
        .where('refunds.out_refund_no', '=', 'R-sandbox-auto-1')
        .executeTakeFirstOrThrow()
    await vi.waitFor(
      async () => expect(await settled()).toEqual({ status: 'success', refunded_fen: 300 }),
      { timeout: 10_000, interval: 50 },
    )
    // …and the refund query answers as real WeChat Pay does once it has succeeded.
    expect(await shop.gateway.refundQuery('R-sandbox-auto-1')).toMatchObject({
      status: 'SUCCESS',
      success_time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00$/),
      amount: { refund: 300 },
    })
  })
})

// The merchant certificate serial is hex, and WeChat Pay reads it whatever its case: a merchant
// whose tooling writes `serial_no` in lower case (openssl x509 -serial prints upper, many libraries
// lower) is not refused SIGN_ERROR for it.
it('accepts the merchant certificate serial_no in either case, and refuses another serial', async () => {
  const sandbox = await startSandboxShop({ notifyUrl: 'http://placeholder/pay/notify' })
  try {
    const serial = sandbox.config.pay.certSerial
    const gateway = async (certSerial: string) =>
      (
        await nodeShop(
          { ...sandbox.config, pay: { ...sandbox.config.pay, certSerial } },
          { appid: SAFE_ACCOUNT.appid, apiBase: wx.url, logger: silentLogger },
        )
      ).gateway
    // An order WeChat Pay does not know: query answers null (404 ORDER_NOT_EXIST), not SIGN_ERROR.
    expect(await (await gateway(serial.toLowerCase())).query('Q-serial-case-1')).toBeNull()
    expect(await (await gateway(serial.toUpperCase())).query('Q-serial-case-1')).toBeNull()
    await expect(
      (await gateway(`${serial.slice(0, -1)}${serial.endsWith('0') ? '1' : '0'}`)).query(
        'Q-serial-case-1',
      ),
    ).rejects.toThrow(/SIGN_ERROR|401/)
  } finally {
    await sandbox.pay.close()
  }
})
