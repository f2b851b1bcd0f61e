/**
 * The Node {@link PayRequests}: wechatpay-node-v3 builds the four requests it wraps
 * (transactions_jsapi, query, close, refunds — method, URL and JSON body), and its `createHttp`
 * hook hands every one to the gateway's transport, which signs it with merchant-signer (Web Crypto,
 * async) — replacing whatever `Authorization` the package put in the headers — sends it to the
 * configured base and verifies the answer. The package is given no private key: its synchronous
 * node:crypto signer (`sha256WithRsa`, behind `buildAuthorization` and the jsapi paySign) is
 * replaced by a placeholder, so the one signing path stays merchant-signer.ts. Node only (the
 * package needs node:crypto, @fidm/x509 and superagent); Workers use {@link fetchRequests}.
 */
import WxPay from 'wechatpay-node-v3'
import type { Output, PayRequests } from './wechatpay-gateway.js'

/** What the package would have put in `Authorization` (the transport always replaces it). */
const UNSIGNED = 'UNSIGNED'

export function packageRequests(o: { certSerial: string }): PayRequests {
  return (t, { appid, mchid }) => {
    const pay = new WxPay({
      appid,
      mchid,
      // Only read to derive the serial, which is given: the package insists on a value.
      publicKey: Buffer.from('unused'),
      serial_no: o.certSerial,
    } as ConstructorParameters<typeof WxPay>[0])
    const internals = pay as unknown as {
      buildAuthorization: (...args: unknown[]) => string
      sha256WithRsa: (data: string) => string
    }
    internals.buildAuthorization = () => UNSIGNED
    // transactions_jsapi signs a paySign of its own after the answer: discarded (the gateway makes
    // it with merchant-signer), so the package never signs anything.
    internals.sha256WithRsa = () => UNSIGNED
    pay.createHttp({
      post: (url: string, params: Record<string, unknown>, headers: Record<string, string>) =>
        t.post(url, params, headers),
      get: (url: string, headers: Record<string, string>) => t.get(url, headers),
      upload: () => Promise.reject(new Error('upload is not used')),
    } as unknown as Parameters<typeof pay.createHttp>[0])
    const out = (r: unknown) => r as Output
    return {
      async jsapi(body) {
        const r = out(
          await pay.transactions_jsapi(
            body as unknown as Parameters<typeof pay.transactions_jsapi>[0],
          ),
        )
        // On success the package swaps the answer for its wx.requestPayment parameters.
        const pkg = r.data?.package
        return r.status === 200 && typeof pkg === 'string' && pkg.startsWith('prepay_id=')
          ? { status: r.status, data: { prepay_id: pkg.slice('prepay_id='.length) } }
          : r
      },
      query: async (outTradeNo) => out(await pay.query({ out_trade_no: outTradeNo })),
      close: async (outTradeNo) => out(await pay.close(outTradeNo)),
      refunds: async (body) =>
        out(await pay.refunds(body as unknown as Parameters<typeof pay.refunds>[0])),
    }
  }
}
