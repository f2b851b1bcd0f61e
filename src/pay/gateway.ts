/**
 * What the shop needs from WeChat Pay, as an interface: both entries implement it with
 * fetch and Web Crypto (src/pay/wechatpay-gateway.ts), tests and the sandbox talk to the sandbox Pay
 * server through the same implementation. Amounts are integer fen.
 */

/** The parameters `wx.requestPayment` takes (appId is line 1 of the signature, not passed). */
export interface RequestPayment {
  appId: string
  timeStamp: string
  nonceStr: string
  package: string
  signType: 'RSA'
  paySign: string
}

/** A transaction as query and notifications describe it. */
export interface Transaction {
  out_trade_no: string
  transaction_id?: string
  trade_state: string
  appid?: string
  mchid?: string
  amount?: { total?: number; payer_total?: number; currency?: string }
  payer?: { openid?: string }
  success_time?: string
}

/** A refund as the refund API and refund notifications describe it. */
export interface Refund {
  refund_id: string
  out_refund_no: string
  out_trade_no?: string
  status?: string
  refund_status?: string
  amount?: { total?: number; refund?: number }
}

export interface PayGateway extends BillGateway {
  /** The mini-program AppID orders are made for, and the merchant. */
  appid: string
  mchid: string
  /** JSAPI prepay; returns the `wx.requestPayment` parameters. */
  jsapi(o: {
    outTradeNo: string
    description: string
    totalFen: number
    openid: string
    notifyUrl: string
    timeExpire: Date
  }): Promise<RequestPayment>
  /** The order's transaction, or null when WeChat Pay does not know it. */
  query(outTradeNo: string): Promise<Transaction | null>
  /** Closes an unpaid order (re-entrant). */
  close(outTradeNo: string): Promise<void>
  /** Requests a refund; the same `outRefundNo` is the same refund. */
  refund(o: {
    outTradeNo: string
    outRefundNo: string
    refundFen: number
    totalFen: number
    reason: string
    notifyUrl: string
  }): Promise<Refund>
  /** The refund as WeChat Pay knows it now, or null when it does not know the number. */
  refundQuery(outRefundNo: string): Promise<Refund | null>

  // Merchant transfers (商家转账, the 2025 user-confirmation version): see TransferBill below.
  /** Creates a transfer bill; the same `out_bill_no` with the same body is the same bill. */
  createTransfer(body: TransferBillRequest): Promise<TransferBill>
  /** The bill as WeChat Pay knows it now, or null when it does not know the number. */
  transferQuery(outBillNo: string): Promise<TransferBill | null>
  /** Cancels a bill the member has not confirmed yet (an empty signed body). */
  cancelTransfer(outBillNo: string): Promise<TransferBill>
}

/**
 * The body of `POST /v3/fund-app/mch-transfer/transfer-bills` (amounts in fen), in the order it is
 * sent: the same `out_bill_no` must always come with exactly this body.
 */
export interface TransferBillRequest {
  appid: string
  out_bill_no: string
  transfer_scene_id: string
  openid: string
  transfer_amount: number
  transfer_remark: string
  notify_url?: string
  user_recv_perception?: string
  transfer_scene_report_infos: { info_type: string; info_content: string }[]
}

/** WeChat Pay's states of a transfer bill (SUCCESS, FAIL and CANCELLED are final). */
export type TransferBillState =
  | 'ACCEPTED'
  | 'PROCESSING'
  | 'WAIT_USER_CONFIRM'
  | 'TRANSFERING'
  | 'SUCCESS'
  | 'FAIL'
  | 'CANCELING'
  | 'CANCELLED'

/** A transfer bill as create, query, cancel and MCHTRANSFER.BILL.FINISHED describe it. */
export interface TransferBill {
  out_bill_no: string
  transfer_bill_no?: string
  state: TransferBillState
  /** Only while WAIT_USER_CONFIRM (create answers): `package` of `wx.requestMerchantTransfer`. */
  package_info?: string
  fail_reason?: string
  /** Query answers and notifications (`mch_id`, with an underscore). */
  mch_id?: string
  appid?: string
  openid?: string
  transfer_amount?: number
  create_time?: string
  update_time?: string
}

/**
 * A refused or failed Pay API call: HTTP status and WeChat Pay's code. `verified` is true only for
 * an error answer whose signature verified against WeChat Pay's keys (its own word); a proxy's or
 * a middlebox's page (a 408, 403, 413 …) or any unsigned answer is not.
 */
export class PayApiError extends Error {
  override readonly name = 'PayApiError'
  constructor(
    readonly method: string,
    readonly status: number,
    readonly code: string,
    message: string,
    readonly verified = false,
  ) {
    super(`${method}: ${status} ${code} ${message}`)
  }
}

// ── Bills (daily reconciliation, src/shop/reconcile.ts) ──────────────────────────────────────

/** The trade bill (payments and refunds, 交易账单) or the fund-flow bill (资金账单). */
export type BillKind = 'trade' | 'fundflow'

/** Where a day's bill is: ready to download, none that day, or still being made. */
export type BillLocation =
  | { status: 'ready'; hashType: string; hashValue: string; downloadUrl: string }
  /** `NO_STATEMENT_EXIST`: no trade (trade bill) or no flow (fund-flow bill) that day. */
  | { status: 'none' }
  /** `STATEMENT_CREATING`: ask again later (every 30 minutes, WeChat Pay says). */
  | { status: 'creating' }

/** What reconciliation needs from WeChat Pay. */
export interface BillGateway {
  /**
   * `GET /v3/bill/tradebill?bill_date=…&bill_type=ALL` (or `/v3/bill/fundflowbill?…&account_type=
   * BASIC`), `&tar_type=GZIP` when `gzip`; the answer is signed and verified like any other.
   * `date` is `YYYY-MM-DD`, a day in Asia/Shanghai.
   */
  billUrl(kind: BillKind, date: string, o?: { gzip?: boolean }): Promise<BillLocation>
  /**
   * Downloads a ready bill (a signed GET to the download URL's raw path and query; the answer is
   * not signed), decompresses it and checks its hash: the bill's original bytes.
   * Throws `BillIntegrityError` when they are not the bill the location describes.
   */
  downloadBill(location: Extract<BillLocation, { status: 'ready' }>): Promise<Uint8Array>
}

/**
 * The code of a {@link PayApiError} for an answer that says something does not exist (a 404
 * NOT_FOUND / RESOURCE_NOT_EXISTS, a NO_STATEMENT_EXIST) whose signature did not verify: not
 * WeChat Pay's word that anything is missing (the claimed code stays in the message).
 */
export const UNVERIFIED_NOT_FOUND = 'UNVERIFIED_NOT_FOUND'

/**
 * The error for a "does not exist" answer (`code`, `message`) whose signature did not verify
 * (`reason`): {@link UNVERIFIED_NOT_FOUND}, the claimed code kept in the message only.
 */
export const unverifiedNotFound = (
  method: string,
  status: number,
  code: string,
  message: string,
  reason = 'unverified',
) =>
  new PayApiError(
    method,
    status,
    UNVERIFIED_NOT_FOUND,
    `${code} ${message} (not signed by WeChat Pay: ${reason})`,
  )
