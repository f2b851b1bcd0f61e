/**
 * The {@link PayGateway} on wechatpay-node-v3 (Node only): it signs requests (`Authorization`) and
 * builds the `wx.requestPayment` parameters. The package has no base-URL option, so its HTTP goes
 * through `createHttp` with a fetch client that rewrites `https://api.mch.weixin.qq.com` to the
 * configured base (the sandbox Pay server in sandbox mode and tests). Responses with a body are
 * verified against WeChat Pay's signature (the package does not), when verification keys are set.
 */
import WxPay from 'wechatpay-node-v3'
import {
  PayApiError,
  type PayGateway,
  type Refund,
  type RequestPayment,
  type Transaction,
  type TransferBill,
} from './gateway.js'
import { type PayVerifyKeys, verifyWechatpaySignature } from './notification.js'
import { wechatpayBills } from './wechatpay-bills.js'

const OFFICIAL = 'https://api.mch.weixin.qq.com'

/** `bytes` random bytes from the crypto RNG, as hex (request nonces). */
const randomHex = (bytes: number) =>
  Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) =>
    b.toString(16).padStart(2, '0'),
  ).join('')

export interface WechatpayGatewayOptions {
  appid: string
  mchid: string
  /** The merchant API private key (`apiclient_key.pem`). */
  privateKeyPem: string
  /** The merchant API certificate serial. */
  certSerial: string
  apiV3Key: string
  /** Default https://api.mch.weixin.qq.com. */
  baseUrl?: string
  /** WeChat Pay's keys by serial: every response with a body must verify against one. */
  verifyKeys: PayVerifyKeys
  fetch?: typeof fetch
  timeoutMs?: number
}

interface Output {
  status: number
  data?: Record<string, unknown>
  error?: string
}

/** RFC 3339 in China Standard Time, as WeChat Pay writes times. */
export function rfc3339Cst(at: Date): string {
  const local = new Date(at.getTime() + 8 * 3600_000).toISOString().slice(0, 19)
  return `${local}+08:00`
}

/**
 * The `wx.requestPayment` signature: SHA256withRSA over `appId\ntimeStamp\nnonceStr\npackage\n`
 * with the merchant key — the package's own signer, as its jsapi call uses.
 */
export function paySign(
  privateKeyPem: string,
  p: { appId: string; timeStamp: string; nonceStr: string; package: string },
): string {
  const signer = new WxPay({
    appid: p.appId,
    mchid: 'unused',
    publicKey: Buffer.from('unused'),
    privateKey: Buffer.from(privateKeyPem),
    serial_no: 'unused',
  })
  return signer.sha256WithRsa(`${p.appId}\n${p.timeStamp}\n${p.nonceStr}\n${p.package}\n`)
}

export function wechatpayGateway(o: WechatpayGatewayOptions): PayGateway {
  const base = (o.baseUrl ?? OFFICIAL).replace(/\/+$/, '')
  const doFetch = o.fetch ?? fetch
  const pay = new WxPay({
    appid: o.appid,
    mchid: o.mchid,
    // Only read to derive the serial, which is given: the package insists on a value.
    publicKey: Buffer.from('unused'),
    privateKey: Buffer.from(o.privateKeyPem),
    serial_no: o.certSerial,
    key: o.apiV3Key,
  })

  async function send(
    method: 'GET' | 'POST',
    url: string,
    headers: Record<string, string>,
    body?: Record<string, unknown>,
    rawBody?: string,
  ): Promise<Output> {
    const target = url.startsWith(OFFICIAL) ? base + url.slice(OFFICIAL.length) : url
    const res = await doFetch(target, {
      method,
      headers: { ...headers, 'Accept-Encoding': 'identity' },
      // The same JSON.stringify the package signed: the bytes match.
      body: rawBody !== undefined ? rawBody : body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(o.timeoutMs ?? 10_000),
    })
    const text = await res.text()
    if (res.status >= 200 && res.status < 300 && text) {
      await verifyWechatpaySignature(
        text,
        {
          timestamp: res.headers.get('wechatpay-timestamp') ?? undefined,
          nonce: res.headers.get('wechatpay-nonce') ?? undefined,
          signature: res.headers.get('wechatpay-signature') ?? undefined,
          serial: res.headers.get('wechatpay-serial') ?? undefined,
        },
        { keys: o.verifyKeys, now: new Date() },
      )
    }
    let data: Record<string, unknown> | undefined
    try {
      data = text ? JSON.parse(text) : undefined
    } catch {
      data = undefined
    }
    return res.ok ? { status: res.status, data } : { status: res.status, error: text, data }
  }
  /**
   * The `Authorization` of one request, signed with the package's signer over
   * `METHOD\npath?query\ntimestamp\nnonce\nbody\n` (an empty body is an empty line, which the
   * package gets wrong for a POST without a body), the nonce from the crypto RNG (the package uses
   * Math.random). Every call the package makes goes through here too.
   */
  function authorization(method: string, url: string, body: string) {
    const nonce = randomHex(16)
    const timestamp = String(Math.floor(Date.now() / 1000))
    const path = url.startsWith(OFFICIAL) ? url.slice(OFFICIAL.length) : url
    const signature = pay.sha256WithRsa(`${method}\n${path}\n${timestamp}\n${nonce}\n${body}\n`)
    return pay.getAuthorization(nonce, timestamp, signature)
  }
  ;(pay as unknown as { buildAuthorization: unknown }).buildAuthorization = (
    method: string,
    url: string,
    params?: Record<string, unknown>,
  ) => authorization(method, url, params === undefined ? '' : JSON.stringify(params))

  /**
   * A signed call to any APIv3 path (`/v3/…`, query included) the package does not wrap: JSON in,
   * JSON out, the answer's signature verified. `verify: false` only for the bill download, which
   * WeChat Pay does not sign.
   */
  async function call(
    method: 'GET' | 'POST',
    pathAndQuery: string,
    body?: Record<string, unknown>,
  ): Promise<Output> {
    const text = body === undefined ? '' : JSON.stringify(body)
    const headers: Record<string, string> = {
      Accept: 'application/json',
      Authorization: authorization(method, pathAndQuery, text),
    }
    if (method === 'POST') headers['Content-Type'] = 'application/json'
    return send(method, OFFICIAL + pathAndQuery, headers, body, method === 'GET' ? undefined : text)
  }

  /**
   * A signed GET whose answer WeChat Pay does not sign (the bill download, protocol §2.2): the
   * canonical URL is the raw path and query of `url`, never re-encoded; the answer is read as
   * bytes and not verified. Only WeChat Pay's host (rewritten to the base) or the base's own.
   */
  async function download(url: string): Promise<{ status: number; bytes: Uint8Array }> {
    const m = /^(https?:\/\/[^/?#]+)([^#]*)/.exec(url)
    const origin = m?.[1]
    if (!m || (origin !== OFFICIAL && origin !== new URL(base).origin))
      throw new PayApiError(
        'downloadBill',
        0,
        'BAD_DOWNLOAD_URL',
        `not WeChat Pay's host: ${origin ?? 'not a URL'}`, // never the token
      )
    const path = m[2] || '/'
    const res = await doFetch((origin === OFFICIAL ? base : origin) + path, {
      method: 'GET',
      headers: { Authorization: authorization('GET', path, ''), 'Accept-Encoding': 'identity' },
      signal: AbortSignal.timeout((o.timeoutMs ?? 10_000) * 6),
    })
    return { status: res.status, bytes: new Uint8Array(await res.arrayBuffer()) }
  }

  pay.createHttp({
    post: (url: string, params: Record<string, unknown>, headers: Record<string, string>) =>
      send('POST', url, headers, params),
    get: (url: string, headers: Record<string, string>) => send('GET', url, headers),
    upload: () => Promise.reject(new Error('upload is not used')),
  })

  const fail = (method: string, out: Output): never => {
    const code = typeof out.data?.code === 'string' ? out.data.code : 'HTTP_ERROR'
    const message = typeof out.data?.message === 'string' ? out.data.message : (out.error ?? '')
    throw new PayApiError(method, out.status, code, message)
  }

  return {
    appid: o.appid,
    mchid: o.mchid,
    ...wechatpayBills({ call, download }),
    async jsapi(r) {
      const out = (await pay.transactions_jsapi({
        description: r.description,
        out_trade_no: r.outTradeNo,
        notify_url: r.notifyUrl,
        time_expire: rfc3339Cst(r.timeExpire),
        amount: { total: r.totalFen, currency: 'CNY' },
        payer: { openid: r.openid },
      })) as Output
      if (out.status !== 200 || !out.data?.paySign) return fail('jsapi', out)
      // Re-signed with a nonce from the crypto RNG (the package's comes from Math.random).
      const p = out.data as unknown as RequestPayment
      const nonceStr = randomHex(16)
      return {
        ...p,
        nonceStr,
        paySign: pay.sha256WithRsa(`${p.appId}\n${p.timeStamp}\n${nonceStr}\n${p.package}\n`),
      }
    },
    async query(outTradeNo) {
      const out = (await pay.query({ out_trade_no: outTradeNo })) as Output
      if (out.status === 404) return null
      if (out.status !== 200 || !out.data) return fail('query', out)
      return out.data as unknown as Transaction
    },
    async close(outTradeNo) {
      const out = (await pay.close(outTradeNo)) as Output
      if (out.status !== 204 && out.status !== 200) fail('close', out)
    },
    async refund(r) {
      const out = (await pay.refunds({
        out_trade_no: r.outTradeNo,
        out_refund_no: r.outRefundNo,
        reason: r.reason,
        notify_url: r.notifyUrl,
        amount: { refund: r.refundFen, total: r.totalFen, currency: 'CNY' },
      })) as Output
      if (out.status !== 200 || !out.data) return fail('refund', out)
      return out.data as unknown as Refund
    },
    async refundQuery(outRefundNo) {
      const out = await call(
        'GET',
        `/v3/refund/domestic/refunds/${encodeURIComponent(outRefundNo)}`,
      )
      if (out.status === 404) return null
      if (out.status !== 200 || !out.data) return fail('refundQuery', out)
      return out.data as unknown as Refund
    },
    ...transferMethods(call, fail),
  }
}

type Call = (
  method: 'GET' | 'POST',
  pathAndQuery: string,
  body?: Record<string, unknown>,
) => Promise<Output>

/**
 * Merchant transfers (商家转账, ../shared/protocol/wechatpay-v3-transfers-bills.md §1) through the
 * signed {@link Call}: create, query by `out_bill_no` (404 → null), and cancel with an empty body.
 */
function transferMethods(
  call: Call,
  fail: (method: string, out: Output) => never,
): Pick<PayGateway, 'createTransfer' | 'transferQuery' | 'cancelTransfer'> {
  const BILLS = '/v3/fund-app/mch-transfer/transfer-bills'
  const bill = (method: string, out: Output) =>
    out.status === 200 && typeof out.data?.state === 'string'
      ? (out.data as unknown as TransferBill)
      : fail(method, out)
  return {
    async createTransfer(body) {
      return bill('createTransfer', await call('POST', BILLS, { ...body }))
    },
    async transferQuery(outBillNo) {
      const out = await call('GET', `${BILLS}/out-bill-no/${encodeURIComponent(outBillNo)}`)
      if (out.status === 404) return null
      return bill('transferQuery', out)
    },
    async cancelTransfer(outBillNo) {
      return bill(
        'cancelTransfer',
        await call('POST', `${BILLS}/out-bill-no/${encodeURIComponent(outBillNo)}/cancel`),
      )
    },
  }
}
