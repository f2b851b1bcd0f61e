/**
 * Transfer bills as data (商家转账, the 2025 user-confirmation version;
 * ../shared/protocol/wechatpay-v3-transfers-bills.md §1): the settings of the request, the bill
 * number, recording a cashback's transfer in the redemption's transaction, the request body, and
 * the states. No network here — src/shop/transfers.ts sends, asks and settles.
 */
import type { Transaction } from 'kysely'
import type { Database, TransferState } from '../db/schema.js'
import type { TransferBillRequest, TransferBillState } from '../pay/gateway.js'
import { randomToken } from '../wechat/crypto.js'

/** What the transfer bills say (scene 1000 现金营销 and its two report fields), from configuration. */
export interface TransferSettings {
  /** `transfer_scene_id`: 1000 现金营销, the scene whose report fields are filled in below. */
  sceneId: '1000'
  /** 活动名称 (≤ 32 characters). */
  activityName: string
  /** 奖励说明 (≤ 32 characters). */
  rewardDescription: string
  /** `transfer_remark`, shown to the member (≤ 32 characters). */
  remark: string
  /** `user_recv_perception`: what the member's receipt calls it (scene 1000 allows these two). */
  perception: '现金奖励' | '活动奖励'
}

export const DEFAULT_TRANSFER_SETTINGS: TransferSettings = {
  sceneId: '1000',
  activityName: '积分兑换',
  rewardDescription: '积分兑换现金奖励',
  remark: '积分兑换返现',
  perception: '现金奖励',
}

/** WeChat Pay's minimum transfer (0.1 元), not adjustable for scene 1000. */
export const TRANSFER_MIN_FEN = 10
/** From 2,000 元 a bill needs the payee's encrypted real name, which we do not collect. */
export const TRANSFER_MAX_FEN = 199_999
/** The member confirms within 24 hours, else WeChat Pay closes the bill (FAIL, OVERDUE_CLOSE). */
export const CONFIRM_WINDOW_MS = 24 * 3600_000

/** Final states: nothing changes a transfer after one. */
export const FINAL_TRANSFER_STATES: readonly TransferState[] = ['success', 'fail', 'cancelled']

/**
 * The order states move in (a stale answer never moves a transfer back): pending 0, accepted 1,
 * processing 2, waiting for the member 3, transferring or cancelling 4, final 5.
 */
export const TRANSFER_STATE_RANK: Record<TransferState, number> = {
  pending: 0,
  accepted: 1,
  processing: 2,
  wait_user_confirm: 3,
  transfering: 4,
  canceling: 4,
  success: 5,
  fail: 5,
  cancelled: 5,
}

/** WeChat Pay's state, as we store it. */
export const transferState = (s: TransferBillState): TransferState =>
  s.toLowerCase() as TransferState

/** A bill number: `QT` + UTC time to the second + 12 random letters or digits (28, [A-Za-z0-9]). */
export function newOutBillNo(now: Date): string {
  const stamp = now.toISOString().replace(/\D/g, '').slice(0, 14)
  return `QT${stamp}${randomToken(12)}`
}

/**
 * Records a cashback's transfer inside the redemption's transaction (state `pending`, due now), so
 * the spend and the transfer commit together; returns its `out_bill_no`, which never changes.
 */
export async function recordTransfer(
  trx: Transaction<Database>,
  t: {
    appid: string
    memberId: number
    redemptionId: number
    payAppid: string
    openid: string
    amountFen: number
    now: Date
  },
): Promise<string> {
  if (
    !Number.isInteger(t.amountFen) ||
    t.amountFen < TRANSFER_MIN_FEN ||
    t.amountFen > TRANSFER_MAX_FEN
  )
    throw new RangeError(
      `a transfer is ${TRANSFER_MIN_FEN}–${TRANSFER_MAX_FEN} fen, not ${t.amountFen}`,
    )
  const outBillNo = newOutBillNo(t.now)
  await trx
    .insertInto('transfers')
    .values({
      appid: t.appid,
      member_id: t.memberId,
      redemption_id: t.redemptionId,
      out_bill_no: outBillNo,
      pay_appid: t.payAppid,
      openid: t.openid,
      amount_fen: t.amountFen,
      state: 'pending',
      next_attempt_at: t.now,
      created_at: t.now,
      updated_at: t.now,
    })
    .execute()
  return outBillNo
}

/**
 * The create request of a transfer. Built once, at its first send, and stored: every retry sends
 * the stored bytes, whatever the configuration says by then.
 */
export function transferRequest(
  t: { pay_appid: string; out_bill_no: string; openid: string; amount_fen: number },
  s: TransferSettings,
  notifyUrl: string,
): TransferBillRequest {
  return {
    appid: t.pay_appid,
    out_bill_no: t.out_bill_no,
    transfer_scene_id: s.sceneId,
    openid: t.openid,
    transfer_amount: t.amount_fen,
    transfer_remark: s.remark,
    notify_url: notifyUrl,
    user_recv_perception: s.perception,
    transfer_scene_report_infos: [
      { info_type: '活动名称', info_content: s.activityName },
      { info_type: '奖励说明', info_content: s.rewardDescription },
    ],
  }
}

/** The mini-program page where a member confirms a cashback (opaque ids only). */
export function cashbackLink(
  mpAppid: string,
  outBillNo?: string,
): { appid: string; pagepath: string } {
  const query = outBillNo ? `?${new URLSearchParams({ no: outBillNo })}` : ''
  return { appid: mpAppid, pagepath: `pages/cashback/index${query}` }
}
