/**
 * The {@link PayGateway}: every APIv3 request is signed by merchant-signer.ts (`Authorization`,
 * Web Crypto — the one signing path, also for the `wx.requestPayment` paySign, on Node and Workers
 * alike) and sent by {@link wechatpayGateway}'s own transport to the configured base
 * (`https://api.mch.weixin.qq.com`, or the sandbox Pay server in sandbox mode and tests), every
 * response with a body verified against WeChat Pay's signature: a 2xx that does not verify throws;
 * an error answer is an error either way, but only a verified 404 with WeChat Pay's code is
 * "no such order / refund / bill" (query, refundQuery, transferQuery → null).
 *
 * The two runtimes differ in one thing only — who builds the method, URL and JSON body of the four
 * requests wechatpay-node-v3 wraps (jsapi, query, close, refunds), {@link PayRequestBuilder}:
 * - Node (src/node.ts): wechatpay-node-v3 builds them (src/pay/wechatpay-package-requests.ts); its
 *   `createHttp` hook hands each one to this transport, which signs it here (the package's own
 *   Authorization is replaced, and it never holds the private key) and sends it.
 * - Workers (src/worker.ts, and the default): {@link fetchRequests} builds the same requests; the
 *   package (node:crypto, @fidm/x509, superagent) is not bundled there.
 * Signing, sending, response verification, the paySign and every other call are shared.
 */
import {
  PayApiError,
  type PayGateway,
  type Refund,
  type Transaction,
  type TransferBill,
  unverifiedNotFound,
} from './gateway.js'
import { merchantSigner } from './merchant-signer.js'
import {
  PayNotificationError,
  type PayVerifyKeys,
  verifyWechatpaySignature,
} from './notification.js'
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
  /** Who builds jsapi/query/close/refunds: wechatpay-node-v3 on Node, {@link fetchRequests} otherwise. */
  requests?: PayRequests
}

/** One answer: status, JSON body (if any), the raw text when not 2xx. */
export interface Output {
  status: number
  data?: Record<string, unknown>
  error?: string
  /**
   * True only when the body's signature verified against WeChat Pay's keys (a 2xx body always
   * does, or the call throws); an error answer that did not verify says why in `unverified`.
   */
  verified?: boolean
  unverified?: string
}

/**
 * The signing, verifying transport the request builders use: `url` is WeChat Pay's full URL
 * (`https://api.mch.weixin.qq.com/v3/…`, rewritten to the base), `params` the JSON body; the
 * `Authorization` is always computed here with merchant-signer, over exactly the bytes sent,
 * whatever `headers` carries.
 */
export interface PayTransport {
  post(
    url: string,
    params: Record<string, unknown>,
    headers?: Record<string, string>,
  ): Promise<Output>
  get(url: string, headers?: Record<string, string>): Promise<Output>
}

/**
 * Who builds the four requests wechatpay-node-v3 wraps. `jsapi` answers `data.prepay_id`; the
 * paySign is made by the gateway (merchant-signer), never by the builder.
 */
export interface PayRequestBuilder {
  jsapi(body: Record<string, unknown>): Promise<Output>
  query(outTradeNo: string): Promise<Output>
  close(outTradeNo: string): Promise<Output>
  refunds(body: Record<string, unknown>): Promise<Output>
}

/** The builder for the gateway's transport (given the merchant's appid and mchid). */
export type PayRequests = (
  t: PayTransport,
  ids: { appid: string; mchid: string },
) => PayRequestBuilder

/** The requests built here, with fetch (Workers, and the default). */
export const fetchRequests: PayRequests = (t, { appid, mchid }) => ({
  jsapi: (body) => t.post(`${OFFICIAL}/v3/pay/transactions/jsapi`, { appid, mchid, ...body }),
  query: (no) =>
    t.get(`${OFFICIAL}/v3/pay/transactions/out-trade-no/${encodeURIComponent(no)}?mchid=${mchid}`),
  close: (no) =>
    t.post(`${OFFICIAL}/v3/pay/transactions/out-trade-no/${encodeURIComponent(no)}/close`, {
      mchid,
    }),
  refunds: (body) => t.post(`${OFFICIAL}/v3/refund/domestic/refunds`, body),
})

/** RFC 3339 in China Standard Time, as WeChat Pay writes times. */
export function rfc3339Cst(at: Date): string {
  const local = new Date(at.getTime() + 8 * 3600_000).toISOString().slice(0, 19)
  return `${local}+08:00`
}

/**
 * The `wx.requestPayment` signature: SHA256withRSA over `appId\ntimeStamp\nnonceStr\npackage\n`
 * with the merchant key.
 */
export function paySign(
  privateKeyPem: string,
  p: { appId: string; timeStamp: string; nonceStr: string; package: string },
): Promise<string> {
  return merchantSigner(privateKeyPem)(`${p.appId}\n${p.timeStamp}\n${p.nonceStr}\n${p.package}\n`)
}

export function wechatpayGateway(o: WechatpayGatewayOptions): PayGateway {
  const base = (o.baseUrl ?? OFFICIAL).replace(/\/+$/, '')
  const doFetch = o.fetch ?? fetch
  const sign = merchantSigner(o.privateKeyPem)

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
    const verify = () =>
      verifyWechatpaySignature(
        text,
        {
          timestamp: res.headers.get('wechatpay-timestamp') ?? undefined,
          nonce: res.headers.get('wechatpay-nonce') ?? undefined,
          signature: res.headers.get('wechatpay-signature') ?? undefined,
          serial: res.headers.get('wechatpay-serial') ?? undefined,
        },
        { keys: o.verifyKeys, now: new Date() },
      )
    let verified = false
    let unverified: string | undefined
    if (res.status >= 200 && res.status < 300 && text) {
      await verify() // an answer to act on must be WeChat Pay's: throws
      verified = true
    } else if (text) {
      // WeChat Pay signs its error answers too (every answer to a request whose signature
      // verified). Recorded, never thrown — an error is an error either way — but only a verified
      // one may say "no such order / refund / bill" ({@link noSuch}).
      try {
        await verify()
        verified = true
      } catch (error) {
        unverified = error instanceof PayNotificationError ? error.reason : String(error)
      }
    } else unverified = 'no body'
    let data: Record<string, unknown> | undefined
    try {
      data = text ? JSON.parse(text) : undefined
    } catch {
      data = undefined
    }
    return res.ok
      ? { status: res.status, data, verified }
      : { status: res.status, error: text, data, verified, unverified }
  }
  /**
   * The `Authorization` of one request (WECHATPAY2-SHA256-RSA2048), signed over
   * `METHOD\npath?query\ntimestamp\nnonce\nbody\n` (an empty body is an empty line), the nonce
   * from the crypto RNG.
   */
  async function authorization(method: string, path: string, body: string) {
    const nonce = randomHex(16)
    const timestamp = String(Math.floor(Date.now() / 1000))
    const signature = await sign(`${method}\n${path}\n${timestamp}\n${nonce}\n${body}\n`)
    return `WECHATPAY2-SHA256-RSA2048 mchid="${o.mchid}",nonce_str="${nonce}",timestamp="${timestamp}",serial_no="${o.certSerial}",signature="${signature}"`
  }

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
      Authorization: await authorization(method, pathAndQuery, text),
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
      headers: {
        Authorization: await authorization('GET', path, ''),
        'Accept-Encoding': 'identity',
      },
      signal: AbortSignal.timeout((o.timeoutMs ?? 10_000) * 6),
    })
    return { status: res.status, bytes: new Uint8Array(await res.arrayBuffer()) }
  }

  const pathOf = (url: string) => (url.startsWith(OFFICIAL) ? url.slice(OFFICIAL.length) : url)
  const transport: PayTransport = {
    async post(url, params, headers) {
      const text = JSON.stringify(params)
      return send(
        'POST',
        url,
        {
          Accept: 'application/json',
          ...headers,
          'Content-Type': 'application/json',
          Authorization: await authorization('POST', pathOf(url), text),
        },
        params,
        text,
      )
    },
    async get(url, headers) {
      return send('GET', url, {
        Accept: 'application/json',
        ...headers,
        Authorization: await authorization('GET', pathOf(url), ''),
      })
    },
  }
  const requests = (o.requests ?? fetchRequests)(transport, { appid: o.appid, mchid: o.mchid })

  const fail = (method: string, out: Output): never => {
    const code = typeof out.data?.code === 'string' ? out.data.code : 'HTTP_ERROR'
    const message = typeof out.data?.message === 'string' ? out.data.message : (out.error ?? '')
    // A 404 WeChat Pay did not sign is nobody's word that a thing does not exist: it never carries
    // the code it claims (NOT_FOUND, ORDER_NOT_EXIST …), which a caller could take for WeChat Pay's.
    if (out.status === 404 && !out.verified && code !== 'HTTP_ERROR')
      throw unverifiedNotFound(method, 404, code, message, out.unverified)
    throw new PayApiError(method, out.status, code, message, out.verified === true)
  }

  return {
    appid: o.appid,
    mchid: o.mchid,
    ...wechatpayBills({ call, download }),
    async jsapi(r) {
      const out = await requests.jsapi({
        description: r.description,
        out_trade_no: r.outTradeNo,
        notify_url: r.notifyUrl,
        time_expire: rfc3339Cst(r.timeExpire),
        amount: { total: r.totalFen, currency: 'CNY' },
        payer: { openid: r.openid },
      })
      const prepayId = out.data?.prepay_id
      if (out.status !== 200 || typeof prepayId !== 'string') return fail('jsapi', out)
      const p = {
        appId: o.appid,
        timeStamp: String(Math.floor(Date.now() / 1000)),
        nonceStr: randomHex(16),
        package: `prepay_id=${prepayId}`,
      }
      return {
        ...p,
        signType: 'RSA',
        paySign: await sign(`${p.appId}\n${p.timeStamp}\n${p.nonceStr}\n${p.package}\n`),
      }
    },
    async query(outTradeNo) {
      const out = await requests.query(outTradeNo)
      // Only WeChat Pay's own, signed "no such order": maintenance closes an expired order on it
      // without asking WeChat Pay to close it.
      if (noSuch(out, NO_SUCH_ORDER)) return null
      if (out.status !== 200 || !out.data) return fail('query', out)
      return out.data as unknown as Transaction
    },
    async close(outTradeNo) {
      const out = await requests.close(outTradeNo)
      if (out.status !== 204 && out.status !== 200) fail('close', out)
    },
    async refund(r) {
      const out = await requests.refunds({
        out_trade_no: r.outTradeNo,
        out_refund_no: r.outRefundNo,
        reason: r.reason,
        notify_url: r.notifyUrl,
        amount: { refund: r.refundFen, total: r.totalFen, currency: 'CNY' },
      })
      if (out.status !== 200 || !out.data) return fail('refund', out)
      return out.data as unknown as Refund
    },
    async refundQuery(outRefundNo) {
      const out = await call(
        'GET',
        `/v3/refund/domestic/refunds/${encodeURIComponent(outRefundNo)}`,
      )
      // Only WeChat Pay's own, signed "no such refund" (404 RESOURCE_NOT_EXISTS 退款单不存在): a
      // refund given up on that answer may be re-issued, so any other 404 (a proxy, a wrong route,
      // a tampered answer) is an error, never taken for it.
      if (noSuch(out, NO_SUCH_REFUND)) return null
      if (out.status !== 200 || !out.data) return fail('refundQuery', out)
      return out.data as unknown as Refund
    },
    ...transferMethods(call, fail),
  }
}

/**
 * Whether `out` is WeChat Pay's own "no such …": a 404 whose signature verified against WeChat
 * Pay's keys (same scheme, window and key selection as a 2xx answer's) with one of `codes`.
 */
const noSuch = (out: Output, codes: ReadonlySet<string>) =>
  out.status === 404 && out.verified === true && codes.has(String(out.data?.code))

/** The codes of WeChat Pay's 404 for an order it does not know (protocol, error table). */
const NO_SUCH_ORDER = new Set(['ORDER_NOT_EXIST', 'RESOURCE_NOT_EXISTS'])

/** The codes of WeChat Pay's 404 for a refund number it does not know. */
const NO_SUCH_REFUND = new Set(['RESOURCE_NOT_EXISTS', 'ORDER_NOT_EXIST'])

type Call = (
  method: 'GET' | 'POST',
  pathAndQuery: string,
  body?: Record<string, unknown>,
) => Promise<Output>

/**
 * The code of WeChat Pay's 404 for a transfer bill number it does not know (NOT_FOUND 记录不存在,
 * as its transfer queries answer). Nothing else: a transfer given up on that answer returns the
 * member's points, so a 404 of a proxy or a wrong route, one whose signature does not verify, or a
 * code WeChat Pay has not documented for this query ("unknown error code ⇒ keep the bill number",
 * protocol §1.5) is an error.
 */
const NO_SUCH_BILL = new Set(['NOT_FOUND'])

/**
 * Merchant transfers (商家转账, ../shared/protocol/wechatpay-v3-transfers-bills.md §1) through the
 * signed {@link Call}: create, query by `out_bill_no` (WeChat Pay's own "no such bill" → null), and
 * cancel with an empty body.
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
      if (noSuch(out, NO_SUCH_BILL)) return null
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
