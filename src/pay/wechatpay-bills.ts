/**
 * The bill half of the WeChat Pay gateway (wechatpay-gateway.ts gives it its signed calls):
 * asking for a day's download URL and downloading the bill, as in the protocol reference §2.
 * Kept apart from the payment calls so the gateway itself only wires it in.
 */
import { openBill } from './bill-download.js'
import { type BillGateway, type BillKind, PayApiError, unverifiedNotFound } from './gateway.js'

/** What the gateway's signed calls answer. */
interface CallOutput {
  status: number
  data?: Record<string, unknown>
  error?: string
  /** Whether the answer's signature verified (an error answer's too; wechatpay-gateway.ts). */
  verified?: boolean
  /** Why it did not. */
  unverified?: string
}

export interface WechatpayBillsOptions {
  /** A signed APIv3 call whose answer is verified (JSON). */
  call(method: 'GET', pathAndQuery: string): Promise<CallOutput>
  /** A signed GET of an absolute URL whose answer is not signed: status and raw bytes. */
  download(url: string): Promise<{ status: number; bytes: Uint8Array }>
}

const PATHS: Record<BillKind, string> = {
  trade: '/v3/bill/tradebill?bill_date={date}&bill_type=ALL',
  fundflow: '/v3/bill/fundflowbill?bill_date={date}&account_type=BASIC',
}

const codeOf = (data: Record<string, unknown> | undefined) =>
  typeof data?.code === 'string' ? data.code : 'HTTP_ERROR'

/** {@link BillGateway} over the gateway's signed calls. */
export function wechatpayBills(o: WechatpayBillsOptions): BillGateway {
  return {
    async billUrl(kind, date, opts) {
      if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) throw new RangeError(`bill_date: ${date}`)
      const path = `${PATHS[kind].replace('{date}', date)}${opts?.gzip ? '&tar_type=GZIP' : ''}`
      const out = await o.call('GET', path)
      if (out.status === 200 && out.data) {
        const { hash_type, hash_value, download_url } = out.data
        if (
          typeof hash_type !== 'string' ||
          typeof hash_value !== 'string' ||
          typeof download_url !== 'string'
        )
          throw new PayApiError('billUrl', 200, 'BAD_ANSWER', 'hash_type, hash_value, download_url')
        return {
          status: 'ready',
          hashType: hash_type,
          hashValue: hash_value,
          downloadUrl: download_url,
        }
      }
      const code = codeOf(out.data)
      const message = typeof out.data?.message === 'string' ? out.data.message : (out.error ?? '')
      // "No bill that day" reconciles the day against no lines: only WeChat Pay's own, signed.
      if (code === 'NO_STATEMENT_EXIST' && !out.verified)
        throw unverifiedNotFound('billUrl', out.status, code, message, out.unverified)
      if (code === 'NO_STATEMENT_EXIST') return { status: 'none' }
      if (code === 'STATEMENT_CREATING') return { status: 'creating' }
      throw new PayApiError('billUrl', out.status, code, message, out.verified === true)
    },
    async downloadBill(location) {
      const { status, bytes } = await o.download(location.downloadUrl)
      if (status !== 200) {
        // A refused download answers a JSON error body.
        let data: Record<string, unknown> | undefined
        const text = new TextDecoder().decode(bytes)
        try {
          data = JSON.parse(text)
        } catch {}
        const message = typeof data?.message === 'string' ? data.message : text.slice(0, 200)
        throw new PayApiError('downloadBill', status, codeOf(data), message)
      }
      return openBill(bytes, location)
    },
  }
}
