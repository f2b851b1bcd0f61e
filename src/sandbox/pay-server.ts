/**
 * The sandbox WeChat Pay server: a real HTTP server on loopback speaking APIv3 as documented in
 * ../shared/protocol/wechatpay-v3.md — JSAPI prepay, query, close and refund, each request's
 * `Authorization` verified against the merchant's public key and each response signed — plus a
 * sender of signed, encrypted notifications (TRANSACTION.SUCCESS, REFUND.*) in both key modes:
 * a WeChat Pay public key (`PUB_KEY_ID_…`) or a platform-certificate serial. Merchant transfers
 * (商家转账: create, query, cancel, MCHTRANSFER.BILL.FINISHED) are in pay-transfers.ts.
 *
 * `npm start` in sandbox mode uses it for a full purchase, its refunds settling by themselves a few
 * seconds after they are accepted (`settleRefundsAfterMs`); tests use it instead of the internet
 * and settle refunds when they choose (`completeRefund`).
 */
import {
  createCipheriv,
  createPublicKey,
  createSign,
  createVerify,
  generateKeyPair,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { promisify } from 'node:util'
import type { Clock } from '../clock.js'
import { sandboxBills } from './pay-bills.js'
import { sandboxTransfers } from './pay-transfers.js'

/** A key pair for the sandbox, PEM encoded. */
export interface PemKeyPair {
  privateKey: string
  publicKey: string
}

/** A fresh RSA-2048 key pair (merchant or WeChat Pay side). */
export function generatePemKeyPair(): PemKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  return {
    privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  }
}

/** {@link generatePemKeyPair} on libuv's thread pool: several run in parallel, off the event loop. */
export async function generatePemKeyPairAsync(): Promise<PemKeyPair> {
  const { privateKey, publicKey } = await promisify(generateKeyPair)('rsa', {
    modulusLength: 2048,
  })
  return {
    privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  }
}

/** Which WeChat Pay key signs: the public key (new merchants) or the platform certificate's. */
export type KeyMode = 'public_key' | 'certificate'

export interface SandboxPayOptions {
  mchid: string
  /** The mini-program AppID bound to the merchant. */
  appid: string
  apiV3Key: string
  /** The merchant's API public key, to verify `Authorization`. */
  merchantPublicKey: string
  /** The merchant certificate serial `Authorization` must name. */
  merchantSerial: string
  /** WeChat Pay's signing keys by mode; generated when absent. */
  signers?: Partial<Record<KeyMode, { serial: string; keys: PemKeyPair }>>
  /** The mode of responses and notifications (default public_key). */
  mode?: KeyMode
  /**
   * The time WeChat Pay's notifications carry — create_time, success_time and their
   * Wechatpay-Timestamp — for a server on a test clock (its notify route refuses a timestamp more
   * than 5 minutes from its own clock) — and the time its bills date payments and refunds by.
   * Default the real clock. Requests and their answers are always signed and checked on the real
   * clock, as the merchant's client signs them.
   */
  clock?: Clock
  /**
   * Refunds settle by themselves this long after they are accepted — PROCESSING, then SUCCESS with
   * its REFUND.SUCCESS notification, as real WeChat Pay's do within seconds to minutes — which is
   * what `npm start` needs. Unset (the default, for tests): a refund stays PROCESSING until
   * `completeRefund`, so the test decides when and how it ends.
   */
  settleRefundsAfterMs?: number
}

/** A sandbox order (what WeChat Pay knows of one). */
export interface SandboxOrder {
  body: Record<string, unknown>
  prepayId: string
  state: 'NOTPAY' | 'SUCCESS' | 'CLOSED' | 'REFUND'
  transactionId?: string
  successTime?: string
  refunds: Map<string, SandboxRefund>
}

/** A sandbox refund. */
export interface SandboxRefund {
  refund_id: string
  out_refund_no: string
  out_trade_no: string
  amount: number
  status: RefundAnswer
  notifyUrl?: string
  /** When WeChat Pay accepted it (the trade bill lists it on that day). */
  createdAt: Date
  /** When it succeeded (`success_time` of its query and notification). */
  succeededAt?: Date
}

/** What the refund API answers a new refund with (WeChat Pay may answer any of them at once). */
export type RefundAnswer = 'PROCESSING' | 'SUCCESS' | 'CLOSED' | 'ABNORMAL'

let seq = 0
const cst = (at: Date) =>
  `${new Date(at.getTime() + 8 * 3600_000).toISOString().slice(0, 19)}+08:00`

export async function startSandboxPay(options: SandboxPayOptions, port = 0) {
  const now = () => options.clock?.now() ?? new Date()
  const signers = {
    public_key: options.signers?.public_key ?? {
      serial: `PUB_KEY_ID_0114232134912410000000000000${String(++seq).padStart(4, '0')}`,
      keys: generatePemKeyPair(),
    },
    certificate: options.signers?.certificate ?? {
      serial: `5DEA10EF55877E3CF6C33255C2E7DEFFF7E4${String(++seq).padStart(4, '0')}`,
      keys: generatePemKeyPair(),
    },
  }
  let mode: KeyMode = options.mode ?? 'public_key'
  let refundAnswer: RefundAnswer = 'PROCESSING'
  const merchantKey: KeyObject = createPublicKey(options.merchantPublicKey)
  const orders = new Map<string, SandboxOrder>()
  const calls = new Map<string, number>()
  /** Refund requests (POST /v3/refund/domestic/refunds) received, by out_refund_no. */
  const refundPosts = new Map<string, number>()
  /** Refunds waiting to settle by themselves (`settleRefundsAfterMs`), cleared on close. */
  const settling = new Set<NodeJS.Timeout>()

  function sign(message: string, m: KeyMode = mode) {
    return createSign('RSA-SHA256').update(message).sign(signers[m].keys.privateKey, 'base64')
  }
  /** The Wechatpay-* headers of a signed body. */
  function signedHeaders(body: string, m: KeyMode = mode, at = new Date()) {
    const timestamp = String(Math.floor(at.getTime() / 1000))
    const nonce = randomBytes(16).toString('hex')
    return {
      'wechatpay-timestamp': timestamp,
      'wechatpay-nonce': nonce,
      'wechatpay-signature': sign(`${timestamp}\n${nonce}\n${body}\n`, m),
      'wechatpay-serial': signers[m].serial,
      'wechatpay-signature-type': 'WECHATPAY2-SHA256-RSA2048',
    }
  }

  function encrypt(plaintext: string, associatedData: string) {
    const nonce = randomBytes(6).toString('hex') // 12 ASCII bytes
    const cipher = createCipheriv('aes-256-gcm', Buffer.from(options.apiV3Key), Buffer.from(nonce))
    cipher.setAAD(Buffer.from(associatedData))
    const ct = Buffer.concat([
      cipher.update(plaintext, 'utf8'),
      cipher.final(),
      cipher.getAuthTag(),
    ])
    return { ciphertext: ct.toString('base64'), nonce, associated_data: associatedData }
  }

  function transaction(no: string, o: SandboxOrder, amountTotal?: number) {
    const total = (o.body.amount as { total: number }).total
    return {
      appid: o.body.appid,
      mchid: o.body.mchid,
      out_trade_no: no,
      ...(o.transactionId ? { transaction_id: o.transactionId } : {}),
      trade_type: 'JSAPI',
      trade_state: o.state,
      trade_state_desc: o.state,
      bank_type: 'OTHERS',
      success_time: o.successTime,
      payer: { openid: (o.body.payer as { openid: string }).openid },
      amount: {
        total: amountTotal ?? total,
        payer_total: amountTotal ?? total,
        currency: 'CNY',
        payer_currency: 'CNY',
      },
    }
  }

  /** A signed, encrypted notification envelope: body and headers, ready to POST. */
  function buildNotification(n: {
    eventType: string
    originalType: 'transaction' | 'refund' | 'mch_payment'
    resource: Record<string, unknown>
    mode?: KeyMode
    at?: Date
  }) {
    const body = JSON.stringify({
      id: `EV-${Date.now()}${++seq}`,
      create_time: cst(n.at ?? now()),
      resource_type: 'encrypt-resource',
      event_type: n.eventType,
      summary:
        n.eventType === 'TRANSACTION.SUCCESS'
          ? '支付成功'
          : n.originalType === 'mch_payment'
            ? '商家转账单据终态通知'
            : '退款通知',
      resource: {
        original_type: n.originalType,
        algorithm: 'AEAD_AES_256_GCM',
        ...encrypt(JSON.stringify(n.resource), n.originalType),
      },
    })
    return {
      body,
      headers: {
        'content-type': 'application/json',
        'request-id': `sandbox-${seq}`,
        ...signedHeaders(body, n.mode ?? mode, n.at ?? now()),
      } as Record<string, string>,
    }
  }

  async function deliver(url: string, n: { body: string; headers: Record<string, string> }) {
    const res = await fetch(url, { method: 'POST', headers: n.headers, body: n.body })
    return { status: res.status, body: await res.text() }
  }

  function verifyAuthorization(req: IncomingMessage, path: string, body: string) {
    const header = req.headers.authorization ?? ''
    const m = /^WECHATPAY2-SHA256-RSA2048 (.+)$/.exec(header)
    if (!m) return 'Authorization missing or not WECHATPAY2-SHA256-RSA2048'
    const fields = Object.fromEntries(
      [...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((f) => [f[1]!, f[2]!]),
    )
    if (fields.mchid !== options.mchid) return 'mchid does not match'
    // A certificate serial is a hex number: WeChat Pay matches it whatever its letters' case (a
    // merchant's tooling may write it upper or lower case).
    if (fields.serial_no?.toUpperCase() !== options.merchantSerial.toUpperCase())
      return 'serial_no is not the merchant certificate'
    if (Math.abs(Date.now() / 1000 - Number(fields.timestamp)) > 300) return 'timestamp expired'
    const message = `${req.method}\n${path}\n${fields.timestamp}\n${fields.nonce_str}\n${body}\n`
    const ok = createVerify('RSA-SHA256')
      .update(message)
      .verify(merchantKey, fields.signature ?? '', 'base64')
    return ok ? undefined : 'signature does not verify'
  }

  function reply(res: ServerResponse, status: number, json?: unknown) {
    if (json === undefined) {
      res.writeHead(status)
      return res.end()
    }
    const body = JSON.stringify(json)
    res.writeHead(status, { 'content-type': 'application/json', ...signedHeaders(body) })
    res.end(body)
  }
  const error = (res: ServerResponse, status: number, code: string, message: string) =>
    reply(res, status, { code, message })
  const bills = sandboxBills({
    orders,
    appid: options.appid,
    mchid: options.mchid,
    now,
    reply,
    error,
  })

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const raw = Buffer.concat(chunks).toString('utf8')
    const url = new URL(req.url ?? '/', 'http://sandbox')
    const path = url.pathname + url.search
    calls.set(url.pathname, (calls.get(url.pathname) ?? 0) + 1)
    const control = /^\/sandbox\/pay\/([^/]+)$/.exec(url.pathname)
    if (control && req.method === 'POST') {
      // Sandbox control (not WeChat Pay): the payer pays, as the shop demo's phone would.
      const no = decodeURIComponent(control[1]!)
      if (!orders.has(no)) return error(res, 404, 'ORDER_NOT_EXIST', 'no such order')
      const { answer } = await sandbox.pay(no)
      return reply(res, 200, { delivered: answer })
    }
    if (await transfers.control(req, url, res)) return
    const refused = verifyAuthorization(req, path, req.method === 'GET' ? '' : raw)
    if (refused) return error(res, 401, 'SIGN_ERROR', refused)
    if (await transfers.api(req, url, raw, res)) return
    let body: Record<string, unknown> = {}
    if (raw) {
      try {
        body = JSON.parse(raw)
      } catch {
        return error(res, 400, 'PARAM_ERROR', 'body is not JSON')
      }
    }

    if (req.method === 'POST' && url.pathname === '/v3/pay/transactions/jsapi') {
      const no = String(body.out_trade_no ?? '')
      const total = (body.amount as { total?: unknown } | undefined)?.total
      if (body.appid !== options.appid || body.mchid !== options.mchid)
        return error(res, 400, 'APPID_MCHID_NOT_MATCH', 'appid and mchid do not match')
      if (!/^[A-Za-z0-9_\-|*]{6,32}$/.test(no))
        return error(res, 400, 'PARAM_ERROR', 'out_trade_no: 6–32 characters')
      if (!Number.isInteger(total) || (total as number) < 1)
        return error(res, 400, 'PARAM_ERROR', 'amount.total: at least 1 fen')
      if (!(body.payer as { openid?: string } | undefined)?.openid)
        return error(res, 400, 'PARAM_ERROR', 'payer.openid is required')
      if (typeof body.notify_url !== 'string' || body.notify_url.includes('?'))
        return error(res, 400, 'PARAM_ERROR', 'notify_url: an absolute URL without a query')
      const existing = orders.get(no)
      if (existing) {
        // A paid order is never prepaid again, whatever the parameters (v2 ORDERPAID; APIv3 writes
        // ORDER_PAID 订单已支付, as its close does — protocol §4): the merchant is to query it.
        if (existing.state === 'SUCCESS' || existing.state === 'REFUND')
          return error(res, 400, 'ORDER_PAID', '订单已支付')
        if (JSON.stringify(existing.body) !== raw)
          return error(res, 400, 'INVALID_REQUEST', '请求重入时，参数与首次请求时不一致')
        if (existing.state === 'CLOSED') return error(res, 400, 'ORDER_CLOSED', 'order closed')
        return reply(res, 200, { prepay_id: existing.prepayId })
      }
      const prepayId = `wx${Date.now()}${randomBytes(8).toString('hex')}`
      orders.set(no, { body, prepayId, state: 'NOTPAY', refunds: new Map() })
      return reply(res, 200, { prepay_id: prepayId })
    }

    const queryMatch = /^\/v3\/pay\/transactions\/out-trade-no\/([^/]+)$/.exec(url.pathname)
    if (req.method === 'GET' && queryMatch) {
      if (url.searchParams.get('mchid') !== options.mchid)
        return error(res, 400, 'PARAM_ERROR', 'mchid is required')
      const o = orders.get(decodeURIComponent(queryMatch[1]!))
      if (!o) return error(res, 404, 'ORDER_NOT_EXIST', '订单不存在')
      return reply(res, 200, transaction(decodeURIComponent(queryMatch[1]!), o))
    }

    const closeMatch = /^\/v3\/pay\/transactions\/out-trade-no\/([^/]+)\/close$/.exec(url.pathname)
    if (req.method === 'POST' && closeMatch) {
      const o = orders.get(decodeURIComponent(closeMatch[1]!))
      if (o?.state === 'SUCCESS' || o?.state === 'REFUND')
        return error(res, 400, 'ORDER_PAID', '订单已支付')
      if (o) o.state = 'CLOSED'
      return reply(res, 204)
    }

    if (req.method === 'POST' && url.pathname === '/v3/refund/domestic/refunds') {
      const counted = String(body.out_refund_no ?? '')
      refundPosts.set(counted, (refundPosts.get(counted) ?? 0) + 1)
      const no = String(body.out_trade_no ?? '')
      const o = orders.get(no)
      if (!o) return error(res, 404, 'RESOURCE_NOT_EXISTS', '订单不存在')
      if (o.state !== 'SUCCESS' && o.state !== 'REFUND')
        return error(res, 403, 'TRADE_ERROR', 'order is not paid')
      const outRefundNo = String(body.out_refund_no ?? '')
      const amount = body.amount as { refund?: number; total?: number }
      const total = (o.body.amount as { total: number }).total
      const known = o.refunds.get(outRefundNo)
      if (!known) {
        // What the order's refunds hold: all but CLOSED ones (the money is back to be refunded
        // again under a new number); an ABNORMAL one holds it until an operator completes it.
        const refunded = [...o.refunds.values()]
          .filter((r) => r.status !== 'CLOSED')
          .reduce((n, r) => n + r.amount, 0)
        if (!Number.isInteger(amount?.refund) || amount.refund! < 1 || amount.total !== total)
          return error(res, 400, 'PARAM_ERROR', 'amount.refund / amount.total')
        if (refunded + amount.refund! > total)
          return error(res, 403, 'NOT_ENOUGH', 'refund exceeds what was paid')
        o.refunds.set(outRefundNo, {
          refund_id: `5030${Date.now()}${++seq}`,
          out_refund_no: outRefundNo,
          out_trade_no: no,
          amount: amount.refund!,
          status: refundAnswer,
          notifyUrl: typeof body.notify_url === 'string' ? body.notify_url : undefined,
          createdAt: now(),
          ...(refundAnswer === 'SUCCESS' ? { succeededAt: now() } : {}),
        })
        settleLater(outRefundNo)
      }
      const r = o.refunds.get(outRefundNo)!
      return reply(res, 200, refundJson(r, total))
    }
    const refundMatch = /^\/v3\/refund\/domestic\/refunds\/([^/]+)$/.exec(url.pathname)
    if (req.method === 'GET' && refundMatch) {
      const found = findRefund(decodeURIComponent(refundMatch[1]!))
      if (!found) return error(res, 404, 'RESOURCE_NOT_EXISTS', '退款单不存在')
      return reply(
        res,
        200,
        refundJson(found.refund, (found.order.body.amount as { total: number }).total),
      )
    }
    if (bills.handle(req.method ?? '', url, res)) return
    return error(res, 404, 'NOT_FOUND', `no such API: ${req.method} ${url.pathname}`)
  }

  /**
   * With `settleRefundsAfterMs`, a refund that is PROCESSING succeeds after that delay (unless it
   * has ended meanwhile). Its notification is sent once: one that is not answered 200/204 is not
   * sent again, but the refund query answers SUCCESS, which the shop's polling picks up.
   */
  function settleLater(outRefundNo: string) {
    const pending = findRefund(outRefundNo)?.refund.status === 'PROCESSING'
    if (options.settleRefundsAfterMs === undefined || !pending) return
    const timer = setTimeout(() => {
      settling.delete(timer)
      if (findRefund(outRefundNo)?.refund.status !== 'PROCESSING') return
      sandbox.completeRefund(outRefundNo).catch(() => {})
    }, options.settleRefundsAfterMs)
    timer.unref()
    settling.add(timer)
  }

  function findRefund(outRefundNo: string) {
    for (const order of orders.values()) {
      const refund = order.refunds.get(outRefundNo)
      if (refund) return { order, refund }
    }
    return undefined
  }

  function refundJson(r: SandboxRefund, total: number) {
    return {
      refund_id: r.refund_id,
      out_refund_no: r.out_refund_no,
      out_trade_no: r.out_trade_no,
      transaction_id: orders.get(r.out_trade_no)?.transactionId,
      channel: 'ORIGINAL',
      status: r.status,
      ...(r.succeededAt ? { success_time: cst(r.succeededAt) } : {}),
      create_time: cst(r.createdAt),
      amount: {
        total,
        refund: r.amount,
        payer_total: total,
        payer_refund: r.amount,
        currency: 'CNY',
      },
    }
  }

  // Merchant transfers (商家转账): their APIs, controls and MCHTRANSFER.BILL.FINISHED.
  const transfers = sandboxTransfers({
    mchid: options.mchid,
    appid: options.appid,
    reply,
    error,
    notify(url, resource) {
      const notification = buildNotification({
        eventType: 'MCHTRANSFER.BILL.FINISHED',
        originalType: 'mch_payment',
        resource,
      })
      return { notification, send: () => deliver(url, notification) }
    },
  })

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e) => error(res, 500, 'SYSTEM_ERROR', String(e)))
  })
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  const sandbox = {
    url,
    /** WeChat Pay's verification keys, by serial, as PEM (what PAY_VERIFY_KEYS holds). */
    verifyKeys: (): Record<string, string> => ({
      [signers.public_key.serial]: signers.public_key.keys.publicKey,
      [signers.certificate.serial]: signers.certificate.keys.publicKey,
    }),
    serial: (m: KeyMode) => signers[m].serial,
    /** Switches the key mode of responses and notifications (a merchant's migration). */
    setMode(m: KeyMode) {
      mode = m
    },
    calls: (pathname: string) => calls.get(pathname) ?? 0,
    /** How many refund requests named `outRefundNo` (each POST, accepted or not). */
    refundRequests: (outRefundNo: string) => refundPosts.get(outRefundNo) ?? 0,
    /**
     * How new refunds are answered (default PROCESSING, then completeRefund — or by themselves
     * with `settleRefundsAfterMs`).
     */
    answerRefundsWith(status: RefundAnswer) {
      refundAnswer = status
    },
    order: (outTradeNo: string) => orders.get(outTradeNo),
    /**
     * The payer pays: the order becomes SUCCESS and its notification is delivered to notify_url.
     * `amountTotal` overrides the notified amount (to test mismatches); `deliver: false` only
     * builds the notification. Returns it and our answer.
     */
    async pay(
      outTradeNo: string,
      o: { amountTotal?: number; mode?: KeyMode; deliver?: boolean } = {},
    ) {
      const order = orders.get(outTradeNo)
      if (!order) throw new Error(`sandbox pay: no order ${outTradeNo}`)
      if (order.state === 'NOTPAY') {
        // A payment of another amount than the order's (to test mismatches): that is what was paid.
        if (o.amountTotal !== undefined)
          (order.body.amount as { total: number }).total = o.amountTotal
        order.state = 'SUCCESS'
        order.transactionId = `4200${Date.now()}${String(++seq).padStart(6, '0')}`
        order.successTime = cst(now())
      }
      const n = buildNotification({
        eventType: 'TRANSACTION.SUCCESS',
        originalType: 'transaction',
        resource: transaction(outTradeNo, order, o.amountTotal),
        mode: o.mode,
      })
      if (o.deliver === false) return { notification: n, answer: null }
      return { notification: n, answer: await deliver(String(order.body.notify_url), n) }
    },
    /**
     * The refund completes (SUCCESS, or ends CLOSED / ABNORMAL): its REFUND.* notification is
     * delivered to its notify_url, unless `deliver: false` (a notification lost on the way: the
     * refund query still answers the new status).
     */
    async completeRefund(
      outRefundNo: string,
      o: { status?: 'SUCCESS' | 'CLOSED' | 'ABNORMAL'; deliver?: boolean } = {},
    ) {
      const found = findRefund(outRefundNo)
      if (!found) throw new Error(`sandbox pay: no refund ${outRefundNo}`)
      const { order, refund: r } = found
      const status = o.status ?? 'SUCCESS'
      r.status = status
      if (status === 'SUCCESS') r.succeededAt ??= now()
      const total = (order.body.amount as { total: number }).total
      const refunded = [...order.refunds.values()]
        .filter((x) => x.status === 'SUCCESS')
        .reduce((n, x) => n + x.amount, 0)
      if (refunded >= total) order.state = 'REFUND'
      const n = buildNotification({
        eventType: `REFUND.${status}`,
        originalType: 'refund',
        resource: {
          mchid: options.mchid,
          out_trade_no: r.out_trade_no,
          transaction_id: order.transactionId,
          refund_id: r.refund_id,
          out_refund_no: r.out_refund_no,
          refund_status: status,
          ...(r.succeededAt ? { success_time: cst(r.succeededAt) } : {}),
          user_received_account: '支付用户零钱',
          amount: { total, refund: r.amount, payer_total: total, payer_refund: r.amount },
        },
      })
      if (o.deliver === false) return { notification: n, answer: null }
      return {
        notification: n,
        answer: await deliver(String(r.notifyUrl ?? order.body.notify_url), n),
      }
    },
    /**
     * An operator re-applies an ABNORMAL refund (apply-abnormal-refund, or 商户平台): WeChat Pay is
     * processing it again — its query answers PROCESSING, no notification until it ends.
     */
    reapplyRefund(outRefundNo: string) {
      const found = findRefund(outRefundNo)
      if (found?.refund.status !== 'ABNORMAL')
        throw new Error(`sandbox pay: refund ${outRefundNo} is not ABNORMAL`)
      found.refund.status = 'PROCESSING'
      settleLater(outRefundNo)
    },
    /** Bills (pay-bills.ts): their text, faults, and payments and refunds made outside the shop. */
    billText: bills.billText,
    setBillFault: bills.setFault,
    foreignPayment: bills.foreignPayment,
    foreignRefund: bills.foreignRefund,
    buildNotification,
    deliver,
    ...transfers.controls,
    /** Signs any body as WeChat Pay would (to build tampered-but-signed cases). */
    signBody: (body: string, m?: KeyMode) => signedHeaders(body, m),
    async close() {
      for (const timer of settling) clearTimeout(timer)
      settling.clear()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
  return sandbox
}

export type SandboxPay = Awaited<ReturnType<typeof startSandboxPay>>
