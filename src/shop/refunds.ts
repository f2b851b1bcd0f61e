/**
 * Refunds: recorded first (unique `out_refund_no`, so a retry is the same refund), capped so that
 * all live refunds of an order never exceed what was paid, then sent to WeChat Pay with the same
 * number until it accepts. REFUND.* notifications settle them once.
 */
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.js'
import type { Logger } from '../logger.js'
import { PayApiError, type PayGateway, type Refund } from '../pay/gateway.js'
import type { ShopSettings } from './catalog.js'
import { takeBackPurchase } from './purchase-grants.js'

export type RefundRequest =
  | { status: 'requested' | 'existing'; outRefundNo: string; refundStatus: string }
  | { status: 'not_found' | 'not_paid' | 'too_much'; refundable?: number }

/** Records a refund of an order (partial allowed) and sends it. */
export async function requestRefund(
  db: Kysely<Database>,
  gateway: PayGateway,
  s: ShopSettings,
  r: {
    outTradeNo: string
    amountFen: number
    reason: string
    /** The refund's number: the same number is the same refund (the caller's idempotency key). */
    outRefundNo: string
    now: Date
  },
  logger?: Logger,
): Promise<RefundRequest> {
  const decided = await db.transaction().execute(async (trx) => {
    const order = await trx
      .selectFrom('orders')
      .selectAll()
      .where('appid', '=', s.appid)
      .where('out_trade_no', '=', r.outTradeNo)
      .forUpdate()
      .executeTakeFirst()
    if (!order) return { status: 'not_found' as const }
    const outRefundNo = r.outRefundNo
    const existing = await trx
      .selectFrom('refunds')
      .select(['out_refund_no', 'status', 'order_id'])
      .where('out_refund_no', '=', outRefundNo)
      .executeTakeFirst()
    if (existing) {
      if (existing.order_id !== order.id) return { status: 'not_found' as const }
      return { status: 'existing' as const, outRefundNo, refundStatus: existing.status }
    }
    if (!order.transaction_id || (order.status !== 'paid' && order.status !== 'flagged'))
      return { status: 'not_paid' as const }
    const live = await trx
      .selectFrom('refunds')
      .select((eb) => eb.fn.coalesce(eb.fn.sum<number>('amount_fen'), eb.lit(0)).as('n'))
      .where('order_id', '=', order.id)
      .where('status', 'in', ['requested', 'processing', 'success'])
      .executeTakeFirstOrThrow()
    // What was really paid (a flagged order's payment may differ from the order).
    const refundable = (order.paid_total_fen ?? order.amount_fen) - Number(live.n)
    if (r.amountFen > refundable) return { status: 'too_much' as const, refundable }
    await trx
      .insertInto('refunds')
      .values({
        order_id: order.id,
        out_refund_no: outRefundNo,
        amount_fen: r.amountFen,
        reason: r.reason,
        status: 'requested',
        next_attempt_at: r.now,
        created_at: r.now,
        updated_at: r.now,
      })
      .execute()
    return { status: 'requested' as const, outRefundNo, refundStatus: 'requested' }
  })
  if (decided.status !== 'requested' && decided.status !== 'existing') return decided
  if (decided.refundStatus !== 'requested') return decided
  const sent = await sendRefund(db, gateway, s, decided.outRefundNo, r.now, logger)
  return { ...decided, refundStatus: sent }
}

/** Tries before a refund WeChat Pay keeps refusing ends `failed` (an operator is alerted). */
export const REFUND_MAX_ATTEMPTS = 10

/** Wait after `attempts` failed sends: 1 min, 2, 4 … capped at 6 h (≈ 1.5 days for all ten). */
export const refundRetryDelayMs = (attempts: number) =>
  Math.min(6 * 3600_000, 60_000 * 2 ** Math.max(0, attempts - 1))

/** Sends one requested refund (same number every time); returns its status afterwards. */
export async function sendRefund(
  db: Kysely<Database>,
  gateway: PayGateway,
  s: ShopSettings,
  outRefundNo: string,
  now: Date,
  logger?: Logger,
): Promise<string> {
  const row = await db
    .selectFrom('refunds')
    .innerJoin('orders', 'orders.id', 'refunds.order_id')
    .select([
      'refunds.amount_fen as refund_fen',
      'refunds.reason',
      'refunds.status',
      'refunds.attempts',
      'orders.out_trade_no',
      'orders.amount_fen',
      'orders.paid_total_fen',
    ])
    .where('refunds.out_refund_no', '=', outRefundNo)
    .executeTakeFirstOrThrow()
  if (row.status !== 'requested') return row.status
  let answer: Refund
  try {
    answer = await gateway.refund({
      outTradeNo: row.out_trade_no,
      outRefundNo,
      refundFen: row.refund_fen,
      totalFen: row.paid_total_fen ?? row.amount_fen,
      reason: row.reason.slice(0, 80),
      notifyUrl: s.notifyUrl,
    })
  } catch (error) {
    const message = error instanceof PayApiError ? `${error.code} ${error.message}` : String(error)
    const attempts = row.attempts + 1
    const last = attempts >= REFUND_MAX_ATTEMPTS
    if (last)
      logger?.warn('refund failed: WeChat Pay never accepted it', {
        code: 'REFUND_FAILED',
        outRefundNo,
        attempts,
        error: message,
      })
    else logger?.warn('refund not accepted yet', { outRefundNo, attempts, error: message })
    await db
      .updateTable('refunds')
      .set({
        error: message.slice(0, 500),
        attempts,
        status: last ? 'failed' : 'requested',
        next_attempt_at: last ? null : new Date(now.getTime() + refundRetryDelayMs(attempts)),
        updated_at: now,
      })
      .where('out_refund_no', '=', outRefundNo)
      .where('status', '=', 'requested')
      .execute()
    return last ? 'failed' : 'requested'
  }
  // Accepted: processing. An answer that is already final (SUCCESS, CLOSED, ABNORMAL) settles it
  // at once through the same path as a REFUND.* notification, so the order is updated once — and
  // the notification that follows is a duplicate.
  await db
    .updateTable('refunds')
    .set({
      status: 'processing',
      refund_id: answer.refund_id,
      error: null,
      next_attempt_at: new Date(now.getTime() + REFUND_POLL_AFTER_MS),
      updated_at: now,
    })
    .where('out_refund_no', '=', outRefundNo)
    .where('status', '=', 'requested')
    .execute()
  const final = answer.status ?? answer.refund_status
  if (final === 'SUCCESS' || final === 'CLOSED' || final === 'ABNORMAL') {
    await settleRefund(db, outRefundNo, final, now)
    return final === 'SUCCESS' ? 'success' : final === 'CLOSED' ? 'closed' : 'abnormal'
  }
  return 'processing'
}

/** A refund WeChat Pay accepted and has not settled is first asked about 10 minutes later. */
export const REFUND_POLL_AFTER_MS = 10 * 60_000

/**
 * Asks WeChat Pay about one processing refund (its REFUND.* notification may have been lost) and
 * settles it through the same path as the notification when the answer is final. A refund WeChat
 * Pay does not know (it accepted it, so this should not happen) goes back to the refund queue,
 * which sends it again with the same number. Returns what became of it.
 */
export async function pollRefund(
  db: Kysely<Database>,
  gateway: PayGateway,
  outRefundNo: string,
  now: Date,
  logger?: Logger,
): Promise<'settled' | 'processing' | 'requeued' | 'duplicate'> {
  const answer = await gateway.refundQuery(outRefundNo)
  if (!answer) {
    logger?.warn('WeChat Pay does not know a refund it accepted: sending it again', {
      code: 'REFUND_UNKNOWN',
      outRefundNo,
    })
    await db
      .updateTable('refunds')
      .set({ status: 'requested', next_attempt_at: now, updated_at: now })
      .where('out_refund_no', '=', outRefundNo)
      .where('status', '=', 'processing')
      .execute()
    return 'requeued'
  }
  const status = answer.status ?? answer.refund_status
  if (status !== 'SUCCESS' && status !== 'CLOSED' && status !== 'ABNORMAL') return 'processing'
  if (status !== 'SUCCESS')
    logger?.warn(`refund ${status}: an operator must act`, {
      code: status === 'CLOSED' ? 'REFUND_CLOSED' : 'REFUND_ABNORMAL',
      outRefundNo,
    })
  const settled = await settleRefund(db, outRefundNo, status, now)
  return settled === 'settled' ? 'settled' : 'duplicate'
}

/**
 * Settles a refund from a REFUND.* notification: processing|requested → success|closed|abnormal,
 * and on success the order's refunded amount grows (→ refunded when all of it) and, in the same
 * transaction, what the purchase granted follows the money ({@link takeBackPurchase}: the refunded
 * share of its points, the membership days at a full refund). Once only. The member is locked
 * first (the house lock order: member, then refund and order).
 */
export async function settleRefund(
  db: Kysely<Database>,
  outRefundNo: string,
  refundStatus: string,
  now: Date,
): Promise<'settled' | 'duplicate' | 'unknown_refund'> {
  const status =
    refundStatus === 'SUCCESS' ? 'success' : refundStatus === 'CLOSED' ? 'closed' : 'abnormal'
  return db.transaction().execute(async (trx) => {
    const owner = await trx
      .selectFrom('refunds')
      .innerJoin('orders', 'orders.id', 'refunds.order_id')
      .select('orders.member_id')
      .where('refunds.out_refund_no', '=', outRefundNo)
      .executeTakeFirst()
    if (owner)
      await trx
        .selectFrom('members')
        .select('id')
        .where('id', '=', owner.member_id)
        .forUpdate()
        .execute()
    const refund = await trx
      .updateTable('refunds')
      .set({ status, updated_at: now })
      .where('out_refund_no', '=', outRefundNo)
      // failed: we gave up sending it, but WeChat Pay says it went after all
      .where('status', 'in', ['requested', 'processing', 'failed'])
      .returning(['id', 'order_id', 'amount_fen'])
      .executeTakeFirst()
    if (!refund) {
      const known = await trx
        .selectFrom('refunds')
        .select('id')
        .where('out_refund_no', '=', outRefundNo)
        .executeTakeFirst()
      return known ? 'duplicate' : 'unknown_refund'
    }
    if (status === 'success') {
      const order = await trx
        .updateTable('orders')
        .set((eb) => ({
          refunded_fen: eb('refunded_fen', '+', refund.amount_fen),
          status: eb
            .case()
            .when(
              eb('refunded_fen', '+', refund.amount_fen),
              '>=',
              eb.fn.coalesce('paid_total_fen', 'amount_fen'),
            )
            .then('refunded' as const)
            .else(eb.ref('status'))
            .end(),
        }))
        .where('id', '=', refund.order_id)
        .returning(['refunded_fen', 'paid_total_fen', 'amount_fen'])
        .executeTakeFirstOrThrow()
      await takeBackPurchase(trx, {
        orderId: refund.order_id,
        refundId: refund.id,
        outRefundNo,
        refundedFen: order.refunded_fen,
        paidFen: order.paid_total_fen ?? order.amount_fen,
        now,
      })
    }
    return 'settled'
  })
}
