import { createHash, createVerify, X509Certificate } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { loadVector } from '../../test/vectors.js'
import { generatePemKeyPair, type SandboxPay, startSandboxPay } from '../sandbox/pay-server.js'
import { prepayRefused } from '../shop/orders.js'
import { base64Decode, base64Encode } from '../wechat/crypto.js'
import { PayApiError, UNVERIFIED_NOT_FOUND } from './gateway.js'
import {
  certificateSpki,
  decryptResource,
  importVerifyKeys,
  openNotification,
  type PayNotificationReason,
  pemDecode,
} from './notification.js'
import { paySign, wechatpayGateway } from './wechatpay-gateway.js'
import { packageRequests } from './wechatpay-package-requests.js'

const vector = (id: string) => loadVector('wechatpay.json', id)

describe('WeChat Pay vectors', () => {
  it('signs wx.requestPayment parameters exactly as the official vector (Web Crypto)', async () => {
    const { inputs, expected } = vector('pay-paysign-jsapi-official')
    expect(
      await paySign(inputs.merchantPrivateKeyPem!, {
        appId: inputs.appId!,
        timeStamp: inputs.timeStamp!,
        nonceStr: inputs.nonceStr!,
        package: inputs.package!,
      }),
    ).toBe(expected.paySign)
  })

  it('decrypts the AES-256-GCM vector and refuses any flipped byte', async () => {
    const { inputs, expected } = vector('pay-gcm-decrypt-java-aes256')
    const r = {
      ciphertext: inputs.ciphertext!,
      nonce: inputs.nonce!,
      associated_data: inputs.associatedData!,
    }
    const plain = await decryptResource(inputs.apiV3Key!, r)
    expect(plain.length).toBe(Number(expected.plaintextLength))
    expect(createHash('sha256').update(plain).digest('hex')).toBe(expected.plaintextSha256)
    const bytes = base64Decode(r.ciphertext)
    for (const at of [0, bytes.length - 20, bytes.length - 1]) {
      const flipped = bytes.slice()
      flipped[at]! ^= 1 // ciphertext, ciphertext end, tag
      await expect(
        decryptResource(inputs.apiV3Key!, { ...r, ciphertext: base64Encode(flipped) }),
      ).rejects.toMatchObject({ reason: 'decrypt_failed' })
    }
    await expect(
      decryptResource(inputs.apiV3Key!, { ...r, associated_data: 'certificatE' }),
    ).rejects.toMatchObject({ reason: 'decrypt_failed' })
    // the decrypted platform certificate: its key is extracted without node:crypto
    const spki = certificateSpki(pemDecode(plain).der)
    const x509 = new X509Certificate(plain)
    expect(x509.serialNumber).toBe(expected.certificateSerial)
    expect(Buffer.from(spki)).toEqual(x509.publicKey.export({ type: 'spki', format: 'der' }))
    expect((await importVerifyKeys({ [x509.serialNumber]: plain })).size).toBe(1)
  })
})

describe('the gateway against the sandbox Pay server', () => {
  const merchant = generatePemKeyPair()
  const apiV3Key = 'sandboxApiV3Key0123456789abcdefX' // 32 bytes
  let pay: SandboxPay
  beforeAll(async () => {
    pay = await startSandboxPay({
      mchid: '1900000001',
      appid: 'wxmini0000000000a1',
      apiV3Key,
      merchantPublicKey: merchant.publicKey,
      merchantSerial: 'MERCHANTSERIAL01',
    })
  })
  afterAll(() => pay.close())
  /** The gateway against the fake Pay server; `extra` replaces any option (key, fetch, …). */
  const gateway = async (extra: Partial<Parameters<typeof wechatpayGateway>[0]> = {}) =>
    wechatpayGateway({
      appid: 'wxmini0000000000a1',
      mchid: '1900000001',
      privateKeyPem: merchant.privateKey,
      certSerial: 'MERCHANTSERIAL01',
      apiV3Key,
      baseUrl: pay.url,
      verifyKeys: await importVerifyKeys(pay.verifyKeys()),
      ...extra,
    })
  const expiry = new Date(Math.floor(Date.now() / 1000) * 1000 + 15 * 60_000)
  const order = (no: string, totalFen = 990) => ({
    outTradeNo: no,
    description: '月度会员',
    totalFen,
    openid: 'o_mini_buyer',
    notifyUrl: 'https://example.invalid/pay/notify',
    // one expiry for the whole suite: a re-order must send the very same body
    timeExpire: expiry,
  })

  it('prepays, signs wx.requestPayment, queries, closes, and refuses a changed re-order', async () => {
    const g = await gateway()
    const params = await g.jsapi(order('QZ-GW-0001'))
    expect(params).toMatchObject({ appId: 'wxmini0000000000a1', signType: 'RSA' })
    expect(params.package).toMatch(/^prepay_id=wx/)
    const message = `${params.appId}\n${params.timeStamp}\n${params.nonceStr}\n${params.package}\n`
    expect(
      createVerify('RSA-SHA256')
        .update(message)
        .verify(merchant.publicKey, params.paySign, 'base64'),
    ).toBe(true)
    // the same order again (identical parameters): the same prepay_id
    expect((await g.jsapi(order('QZ-GW-0001'))).package).toBe(params.package)
    await expect(g.jsapi({ ...order('QZ-GW-0001'), totalFen: 1 })).rejects.toMatchObject({
      status: 400,
      code: 'INVALID_REQUEST',
    })
    expect((await g.query('QZ-GW-0001'))?.trade_state).toBe('NOTPAY')
    expect(await g.query('QZ-GW-NONE')).toBeNull()
    await g.close('QZ-GW-0001')
    expect((await g.query('QZ-GW-0001'))?.trade_state).toBe('CLOSED')
  })

  it('refuses to prepay an order already paid (ORDER_PAID, signed): a refusal of WeChat Pay’s own', async () => {
    const g = await gateway()
    await g.jsapi(order('QZ-GW-PAID'))
    await pay.pay('QZ-GW-PAID', { deliver: false })
    const e = await g.jsapi(order('QZ-GW-PAID')).catch((error: unknown) => error)
    expect(e).toBeInstanceOf(PayApiError)
    expect(e).toMatchObject({ status: 400, code: 'ORDER_PAID', verified: true })
    expect(prepayRefused(e)).toBe(true)
    expect((await g.query('QZ-GW-PAID'))?.trade_state).toBe('SUCCESS')
  })

  it('finds a platform certificate by its hex serial in either case; a public-key ID only exactly', async () => {
    const pems = pay.verifyKeys()
    const certificate = pay.serial('certificate')
    expect(certificate).toMatch(/^[0-9A-F]+$/)
    // configured in lower case: responses signed with the certificate (upper case) verify
    const lowerConfigured = await importVerifyKeys(
      Object.fromEntries(
        Object.entries(pems).map(([serial, pem]) => [
          serial === certificate ? serial.toLowerCase() : serial,
          pem,
        ]),
      ),
    )
    pay.setMode('certificate')
    try {
      const g = await gateway({ verifyKeys: lowerConfigured })
      expect((await g.jsapi(order('QZ-GW-CASE'))).package).toMatch(/^prepay_id=wx/)
    } finally {
      pay.setMode('public_key')
    }
    // a notification whose Wechatpay-Serial is in lower case, the key configured in upper case
    const keys = await importVerifyKeys(pems)
    const resource = { out_trade_no: 'QZ-N-CASE', trade_state: 'SUCCESS', amount: { total: 990 } }
    const open = (mode: 'public_key' | 'certificate', serial: (s: string) => string) => {
      const n = pay.buildNotification({
        eventType: 'TRANSACTION.SUCCESS',
        originalType: 'transaction',
        resource,
        mode,
      })
      return openNotification(
        n.body,
        {
          timestamp: n.headers['wechatpay-timestamp'],
          nonce: n.headers['wechatpay-nonce'],
          signature: n.headers['wechatpay-signature'],
          serial: serial(n.headers['wechatpay-serial']!),
        },
        { keys, apiV3Key, now: new Date() },
      )
    }
    expect(await open('certificate', (s) => s.toLowerCase())).toMatchObject({ resource })
    expect(await open('public_key', (s) => s)).toMatchObject({ resource })
    // a PUB_KEY_ID_… is not hex: another case is another (unknown) key
    await expect(open('public_key', (s) => s.toLowerCase())).rejects.toMatchObject({
      reason: 'unknown_serial',
    })
  })

  it('takes every nonce from the crypto RNG, not Math.random (request and wx.requestPayment)', async () => {
    const nonces: string[] = []
    const g = await gateway({
      fetch: (input, init) => {
        const auth = new Headers(init?.headers).get('authorization') ?? ''
        nonces.push(/nonce_str="([^"]*)"/.exec(auth)?.[1] ?? '')
        return fetch(input, init)
      },
    })
    const random = vi.spyOn(Math, 'random').mockReturnValue(0.123456789)
    try {
      const a = await g.jsapi(order('QZ-GW-RNG1'))
      const b = await g.jsapi(order('QZ-GW-RNG2'))
      await g.query('QZ-GW-RNG1')
      await g.refundQuery('QZ-GW-NO-SUCH-REFUND')
      expect(a.nonceStr).toMatch(/^[0-9a-f]{32}$/)
      expect(b.nonceStr).not.toBe(a.nonceStr)
      expect(nonces).toHaveLength(4)
      for (const n of nonces) expect(n).toMatch(/^[0-9a-f]{32}$/)
      expect(new Set(nonces).size).toBe(4)
    } finally {
      random.mockRestore()
    }
  })

  it('on Node, wechatpay-node-v3 builds the requests and merchant-signer signs every one', async () => {
    const seen: { method: string; url: string; body: string; headers: Headers }[] = []
    const g = await gateway({
      requests: packageRequests({ certSerial: 'MERCHANTSERIAL01' }),
      fetch: (input, init) => {
        seen.push({
          method: init?.method ?? 'GET',
          url: String(input),
          body: typeof init?.body === 'string' ? init.body : '',
          headers: new Headers(init?.headers),
        })
        return fetch(input, init)
      },
    })
    const params = await g.jsapi(order('QZ-GW-PKG1', 1000))
    expect(params.package).toMatch(/^prepay_id=wx/)
    expect(params.nonceStr).toMatch(/^[0-9a-f]{32}$/) // ours, not the package's Math.random
    expect(
      createVerify('RSA-SHA256')
        .update(`${params.appId}\n${params.timeStamp}\n${params.nonceStr}\n${params.package}\n`)
        .verify(merchant.publicKey, params.paySign, 'base64'),
    ).toBe(true)
    expect((await g.query('QZ-GW-PKG1'))?.trade_state).toBe('NOTPAY')
    await pay.pay('QZ-GW-PKG1', { deliver: false })
    const refund = await g.refund({
      outTradeNo: 'QZ-GW-PKG1',
      outRefundNo: 'R-PKG-1',
      refundFen: 100,
      totalFen: 1000,
      reason: '测试',
      notifyUrl: 'https://example.invalid/pay/notify',
    })
    expect(refund.status).toBe('PROCESSING')
    await g.close('QZ-GW-PKG2').catch(() => undefined) // an unknown order: only the request matters

    const base = pay.url.replace(/\/+$/, '')
    expect(seen.map((r) => `${r.method} ${r.url.slice(base.length)}`)).toEqual([
      'POST /v3/pay/transactions/jsapi',
      'GET /v3/pay/transactions/out-trade-no/QZ-GW-PKG1?mchid=1900000001',
      'POST /v3/refund/domestic/refunds',
      'POST /v3/pay/transactions/out-trade-no/QZ-GW-PKG2/close',
    ])
    // the package's body shape (appid and mchid first, then ours) and its headers
    expect(Object.keys(JSON.parse(seen[0]!.body)).slice(0, 2)).toEqual(['appid', 'mchid'])
    expect(JSON.parse(seen[3]!.body)).toEqual({ mchid: '1900000001' })
    for (const r of seen) {
      expect(r.headers.get('user-agent')).toBe('127.0.0.1') // set by the package
      const auth = r.headers.get('authorization') ?? ''
      const f = Object.fromEntries(
        [...auth.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]] as [string, string]),
      )
      expect(auth.startsWith('WECHATPAY2-SHA256-RSA2048 ')).toBe(true)
      expect(f.serial_no).toBe('MERCHANTSERIAL01')
      expect(f.nonce_str).toMatch(/^[0-9a-f]{32}$/) // merchant-signer's transport, not the package
      const message = `${r.method}\n${r.url.slice(base.length)}\n${f.timestamp}\n${f.nonce_str}\n${r.body}\n`
      expect(
        createVerify('RSA-SHA256')
          .update(message)
          .verify(merchant.publicKey, f.signature ?? '', 'base64'),
      ).toBe(true)
    }
  })

  it('refunds once per out_refund_no and never more than was paid', async () => {
    const g = await gateway()
    await g.jsapi(order('QZ-GW-0002', 1000))
    await pay.pay('QZ-GW-0002', { deliver: false })
    const refund = (no: string, fen: number) =>
      g.refund({
        outTradeNo: 'QZ-GW-0002',
        outRefundNo: no,
        refundFen: fen,
        totalFen: 1000,
        reason: '测试',
        notifyUrl: 'https://example.invalid/pay/notify',
      })
    const first = await refund('R-1', 600)
    expect(first.status).toBe('PROCESSING')
    expect((await refund('R-1', 600)).refund_id).toBe(first.refund_id)
    await expect(refund('R-2', 500)).rejects.toMatchObject({ code: 'NOT_ENOUGH' })
    expect((await refund('R-3', 400)).status).toBe('PROCESSING')
  })

  it('lets a CLOSED refund be refunded again under a new number; an ABNORMAL one still holds the money', async () => {
    const g = await gateway()
    await g.jsapi(order('QZ-GW-0040', 1000))
    await pay.pay('QZ-GW-0040', { deliver: false })
    const refund = (no: string, fen: number) =>
      g.refund({
        outTradeNo: 'QZ-GW-0040',
        outRefundNo: no,
        refundFen: fen,
        totalFen: 1000,
        reason: '测试',
        notifyUrl: 'https://example.invalid/pay/notify',
      })
    await refund('R-C-1', 600)
    await pay.completeRefund('R-C-1', { status: 'CLOSED', deliver: false })
    // the closed refund holds nothing: the same money again, under a new number
    expect((await refund('R-C-2', 600)).status).toBe('PROCESSING')
    await pay.completeRefund('R-C-2', { status: 'ABNORMAL', deliver: false })
    // an abnormal refund waits on an operator with the money: never refunded a second time
    await expect(refund('R-C-3', 600)).rejects.toMatchObject({ code: 'NOT_ENOUGH' })
    expect((await refund('R-C-4', 400)).status).toBe('PROCESSING')
  })

  it('takes only WeChat Pay’s own “no such refund” for a refund that does not exist', async () => {
    const g = await gateway()
    await g.jsapi(order('QZ-GW-0003', 1000))
    await pay.pay('QZ-GW-0003', { deliver: false })
    await g.refund({
      outTradeNo: 'QZ-GW-0003',
      outRefundNo: 'R-Q-1',
      refundFen: 100,
      totalFen: 1000,
      reason: '测试',
      notifyUrl: 'https://example.invalid/pay/notify',
    })
    expect(await g.refundQuery('R-Q-1')).toMatchObject({ out_refund_no: 'R-Q-1' })
    // 404 RESOURCE_NOT_EXISTS 退款单不存在: WeChat Pay has no such refund
    expect(await g.refundQuery('R-Q-NONE')).toBeNull()
    // any other 404 (a proxy, a wrong route) says nothing about the refund: an error, never "none"
    const proxied = await gateway({
      fetch: async () =>
        new Response('<html>404 Not Found</html>', {
          status: 404,
          headers: { 'content-type': 'text/html' },
        }),
    })
    await expect(proxied.refundQuery('R-Q-1')).rejects.toBeInstanceOf(PayApiError)
  })

  it('takes only WeChat Pay’s own “no such bill” (404 NOT_FOUND) for a transfer bill that does not exist', async () => {
    const g = await gateway()
    // 404 NOT_FOUND 记录不存在: WeChat Pay has no such bill
    expect(await g.transferQuery('TBNONE0001')).toBeNull()
    // a proxy's 404 page, or a 404 with another code: an error that keeps the bill number
    pay.faultTransferQueries(
      { status: 404, text: '<html>404 Not Found</html>' },
      { status: 404, code: 'RESOURCE_NOT_EXISTS', message: '资源不存在' },
    )
    await expect(g.transferQuery('TBNONE0001')).rejects.toMatchObject({
      status: 404,
      code: 'HTTP_ERROR',
    })
    await expect(g.transferQuery('TBNONE0001')).rejects.toMatchObject({
      status: 404,
      code: 'RESOURCE_NOT_EXISTS',
    })
    expect(await g.transferQuery('TBNONE0001')).toBeNull()
  })

  describe('“no such order / refund / bill”: only a 404 WeChat Pay signed, with its code', () => {
    /**
     * A real loopback server that is not WeChat Pay (a proxy, a misrouted base URL, a tampered
     * answer): every request gets the answer last set — status, body and headers as given.
     */
    let answer = { status: 404, body: '', headers: {} as Record<string, string> }
    const fake = createServer((req, res) => {
      req.resume()
      req.on('end', () => {
        res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers })
        res.end(answer.body)
      })
    })
    const respond = (status: number, body: string, headers: Record<string, string>) => {
      answer = { status, body, headers }
    }
    beforeAll(() => new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve)))
    afterAll(() => new Promise<void>((resolve) => fake.close(() => resolve())))
    const fakeUrl = () => `http://127.0.0.1:${(fake.address() as AddressInfo).port}`

    type G = Awaited<ReturnType<typeof gateway>>
    it.each<[string, (g: G) => Promise<unknown>, 'fetch' | 'package', string]>([
      ['order query', (g) => g.query('QZ-GW-NO-SUCH'), 'fetch', 'ORDER_NOT_EXIST'],
      ['order query (package)', (g) => g.query('QZ-GW-NO-SUCH'), 'package', 'ORDER_NOT_EXIST'],
      ['refund query', (g) => g.refundQuery('R-NO-SUCH'), 'fetch', 'RESOURCE_NOT_EXISTS'],
      ['transfer query', (g) => g.transferQuery('TBNOSUCH0001'), 'fetch', 'NOT_FOUND'],
    ])(
      '%s: null only for the signed 404, an error for an unsigned or badly signed one',
      async (_, ask, requests, code) => {
        // the sandbox's own signed 404: WeChat Pay has no such thing
        expect(await ask(await gateway())).toBeNull()
        const g = await gateway({
          baseUrl: fakeUrl(),
          ...(requests === 'package'
            ? { requests: packageRequests({ certSerial: 'MERCHANTSERIAL01' }) }
            : {}),
        })
        const body = JSON.stringify({ code, message: '不存在' })
        // the same answer signed by WeChat Pay, relayed by the loopback server: still "none"
        respond(404, body, pay.signBody(body))
        expect(await ask(g)).toBeNull()
        // (a) no signature headers, (b) a signature over another body, (c) a key nobody configured
        const cases: [string, Record<string, string>][] = [
          ['no signature', {}],
          ['a bad signature', pay.signBody(JSON.stringify({ code, message: '存在' }))],
          ['an unknown serial', { ...pay.signBody(body), 'wechatpay-serial': 'PUB_KEY_ID_NOBODY' }],
        ]
        for (const [how, headers] of cases) {
          respond(404, body, headers)
          const e = await ask(g).catch((error: unknown) => error)
          expect(e, how).toBeInstanceOf(PayApiError)
          // never the bare code a caller could take for WeChat Pay's (it stays in the message)
          expect(e, how).toMatchObject({ status: 404, code: UNVERIFIED_NOT_FOUND })
          expect((e as Error).message, how).toContain(code)
        }
        // any error answer that does not verify is an error of the call, never a crash
        respond(500, JSON.stringify({ code: 'SYSTEM_ERROR', message: '系统错误' }), {})
        await expect(ask(g)).rejects.toMatchObject({ status: 500, code: 'SYSTEM_ERROR' })
      },
    )

    it.each(['fetch', 'package'] as const)(
      'order query (%s): a signed 404 with another code is an error',
      async (requests) => {
        const g = await gateway({
          baseUrl: fakeUrl(),
          ...(requests === 'package'
            ? { requests: packageRequests({ certSerial: 'MERCHANTSERIAL01' }) }
            : {}),
        })
        const other = JSON.stringify({ code: 'NOT_FOUND', message: 'no such API' })
        respond(404, other, pay.signBody(other))
        await expect(g.query('QZ-GW-NO-SUCH')).rejects.toMatchObject({
          status: 404,
          code: 'NOT_FOUND',
        })
        // both codes the protocol's error table gives for a missing order
        const documented = JSON.stringify({ code: 'RESOURCE_NOT_EXISTS', message: '订单不存在' })
        respond(404, documented, pay.signBody(documented))
        expect(await g.query('QZ-GW-NO-SUCH')).toBeNull()
      },
    )

    it('bill URL: "no bill that day" only when WeChat Pay signed it', async () => {
      const g = await gateway({ baseUrl: fakeUrl() })
      const body = JSON.stringify({ code: 'NO_STATEMENT_EXIST', message: '请求的账单文件不存在' })
      respond(400, body, pay.signBody(body))
      expect(await g.billUrl('trade', '2026-11-30')).toEqual({ status: 'none' })
      // unsigned, it would reconcile the day against no lines: every payment a false mismatch
      respond(400, body, {})
      await expect(g.billUrl('trade', '2026-11-30')).rejects.toMatchObject({
        status: 400,
        code: UNVERIFIED_NOT_FOUND,
      })
    })

    it.each(['fetch', 'package'] as const)(
      'prepay (%s): only a 4xx WeChat Pay signed is its refusal; a proxy’s page is no answer',
      async (requests) => {
        const g = await gateway({
          baseUrl: fakeUrl(),
          ...(requests === 'package'
            ? { requests: packageRequests({ certSerial: 'MERCHANTSERIAL01' }) }
            : {}),
        })
        const prepay = () => g.jsapi(order('QZ-GW-PROXY')).catch((error: unknown) => error)
        const refused = JSON.stringify({ code: 'NO_AUTH', message: '商户无权限' })
        respond(403, refused, pay.signBody(refused))
        const signed = await prepay()
        expect(signed).toMatchObject({ status: 403, code: 'NO_AUTH', verified: true })
        expect(prepayRefused(signed)).toBe(true)
        // a middlebox's timeout or block page, the same refusal unsigned, a bare 404: WeChat Pay
        // may have created the order — nobody refused it
        const unsigned: [number, string][] = [
          [408, '<html><body>408 Request Timeout</body></html>'],
          [403, '<html><body>403 Forbidden</body></html>'],
          [413, '<html><body>413 Request Entity Too Large</body></html>'],
          [403, refused],
          [404, ''],
        ]
        for (const [status, body] of unsigned) {
          respond(status, body, { 'content-type': 'text/html' })
          const e = await prepay()
          expect(e, `${status} ${body}`).toMatchObject({ status, verified: false })
          expect(prepayRefused(e), `${status} ${body}`).toBe(false)
        }
      },
    )
  })

  it('refuses requests it cannot authenticate, and responses signed by nobody it knows', async () => {
    const stranger = await gateway({ privateKeyPem: generatePemKeyPair().privateKey })
    const e = await stranger.jsapi(order('QZ-GW-0003')).catch((error: unknown) => error)
    expect(e).toBeInstanceOf(PayApiError)
    expect(e).toMatchObject({ status: 401, code: 'SIGN_ERROR' })
    const blind = await gateway({ verifyKeys: new Map() })
    await expect(blind.jsapi(order('QZ-GW-0004'))).rejects.toMatchObject({
      reason: 'unknown_serial',
    })
  })

  it('opens notifications in both key modes and refuses every tampering', async () => {
    const keys = await importVerifyKeys(pay.verifyKeys())
    const resource = { out_trade_no: 'QZ-N-1', trade_state: 'SUCCESS', amount: { total: 990 } }
    const open = (n: { body: string; headers: Record<string, string> }, now = new Date()) =>
      openNotification(
        n.body,
        {
          timestamp: n.headers['wechatpay-timestamp'],
          nonce: n.headers['wechatpay-nonce'],
          signature: n.headers['wechatpay-signature'],
          serial: n.headers['wechatpay-serial'],
        },
        { keys, apiV3Key, now },
      )
    for (const mode of ['public_key', 'certificate'] as const) {
      const n = pay.buildNotification({
        eventType: 'TRANSACTION.SUCCESS',
        originalType: 'transaction',
        resource,
        mode,
      })
      const opened = await open(n)
      expect(opened).toMatchObject({
        eventType: 'TRANSACTION.SUCCESS',
        originalType: 'transaction',
        resource,
        serial: pay.serial(mode),
      })
    }
    const good = pay.buildNotification({
      eventType: 'TRANSACTION.SUCCESS',
      originalType: 'transaction',
      resource,
    })
    const envelope = JSON.parse(good.body)
    // Re-signed bodies: the signature is right (as if made by WeChat Pay), the resource is not.
    const resigned = (mutate: (e: typeof envelope) => void) => {
      const e = structuredClone(envelope)
      mutate(e)
      const body = JSON.stringify(e)
      return { body, headers: { 'content-type': 'application/json', ...pay.signBody(body) } }
    }
    const flip = (b64: string, at: number) => {
      const bytes = base64Decode(b64)
      bytes[at < 0 ? bytes.length + at : at]! ^= 1
      return base64Encode(bytes)
    }
    const cases: [
      string,
      { body: string; headers: Record<string, string> },
      PayNotificationReason,
      Date?,
    ][] = [
      [
        'a flipped ciphertext byte',
        resigned((e) => {
          e.resource.ciphertext = flip(e.resource.ciphertext, 0)
        }),
        'decrypt_failed',
      ],
      [
        'a flipped tag byte',
        resigned((e) => {
          e.resource.ciphertext = flip(e.resource.ciphertext, -1)
        }),
        'decrypt_failed',
      ],
      [
        'changed associated data',
        resigned((e) => {
          e.resource.associated_data = 'refund'
        }),
        'decrypt_failed',
      ],
      [
        'a body changed after signing',
        { ...good, body: good.body.replace('"TRANSACTION.SUCCESS"', '"REFUND.SUCCESS"') },
        'bad_signature',
      ],
      [
        'an unknown serial',
        { ...good, headers: { ...good.headers, 'wechatpay-serial': 'PUB_KEY_ID_UNKNOWN' } },
        'unknown_serial',
      ],
      [
        "the other key mode's serial",
        { ...good, headers: { ...good.headers, 'wechatpay-serial': pay.serial('certificate') } },
        'bad_signature',
      ],
      [
        'a signature probe',
        { ...good, headers: { ...good.headers, 'wechatpay-signature': 'WECHATPAY/SIGNTEST/abc' } },
        'bad_signature',
      ],
      [
        'a missing header',
        { ...good, headers: { ...good.headers, 'wechatpay-nonce': '' } },
        'missing_header',
      ],
      [
        'a stale timestamp (replayed 5 minutes later)',
        good,
        'stale_timestamp',
        new Date(Date.now() + 300_000),
      ],
    ]
    for (const [name, n, reason, now] of cases) {
      const e = await open(n, now).catch((error: unknown) => error)
      expect(e, name).toMatchObject({ reason })
    }
  })
})
