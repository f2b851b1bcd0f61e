/**
 * Refunds: recorded first (unique `out_refund_no`, so a retry is the same refund), capped so that
 * all refunds holding an order's money ({@link REFUNDS_HOLDING}) never exceed what was paid, then
 * sent to WeChat Pay with the same number until it accepts. One ends `failed` only when WeChat Pay
 * says it has no such refund. REFUND.* notifications (and polls, when one is lost) settle them once.
 */
import type { ExpressionBuilder, Kysely } from 'kysely'
import type { Database } from '../db/schema.js'
import type { Logger } from '../logger.js'
import { PayApiError, type PayGateway, type Refund } from '../pay/gateway.js'
import type { ShopSettings } from './catalog.js'
import { releaseStock } from './orders.js'
import { takeBackPurchase } from './purchase-grants.js'

export type RefundRequest =
  | { status: 'requested' | 'existing'; outRefundNo: string; refundStatus: string }
  | { status: 'not_found' | 'not_paid' | 'refunded' | 'too_much'; refundable?: number }

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
    if (order.status === 'refunded') return { status: 'refunded' as const }
    if (!order.transaction_id || (order.status !== 'paid' && order.status !== 'flagged'))
      return { status: 'not_paid' as const }
    const refundable = await refundableFen(trx, order)
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
  // The same number asked for at once: another request may be sending it (even the one that
  // recorded it may find it claimed) — each is answered with the result of that send
  if (sent === 'requested')
    return { ...decided, refundStatus: await firstSendOutcome(db, decided.outRefundNo) }
  return { ...decided, refundStatus: sent }
}

/** How long a repeated refund request waits for the first send another request is making. */
export const FIRST_SEND_WAIT_MS = 15_000

/**
 * The status of a `requested` refund once the first send of it, which another request (or the
 * queue) is making, has ended — accepted, or failed once (`attempts` grows: queued for a retry) —
 * read every 100 ms, at most {@link FIRST_SEND_WAIT_MS} (longer than a send takes); a refund
 * backing off after a failed send (or whose sender died) answers its status at once.
 */
async function firstSendOutcome(db: Kysely<Database>, outRefundNo: string): Promise<string> {
  const until = Date.now() + FIRST_SEND_WAIT_MS
  for (;;) {
    const row = await db
      .selectFrom('refunds')
      .select(['status', 'attempts'])
      .where('out_refund_no', '=', outRefundNo)
      .executeTakeFirstOrThrow()
    if (row.status !== 'requested' || row.attempts > 0 || Date.now() >= until) return row.status
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/**
 * The refunds that hold part of what an order paid: being sent, accepted, done, or `abnormal`
 * (WeChat Pay keeps the money until an operator completes that same refund — never a second one).
 * `closed` and `failed` (WeChat Pay has no such refund) hold nothing: the money may be refunded
 * again under a new number.
 */
export const REFUNDS_HOLDING = ['requested', 'processing', 'success', 'abnormal'] as const

/**
 * What an order may still refund: what WeChat Pay says was paid (a flagged order's payment may
 * differ from the order) less its {@link REFUNDS_HOLDING}. The one cap of every refund (operator
 * refunds, group buys that fail); call it in the transaction that holds the order's row lock.
 */
export async function refundableFen(
  trx: Kysely<Database>,
  order: { id: number; amount_fen: number; paid_total_fen: number | null },
): Promise<number> {
  const holding = await trx
    .selectFrom('refunds')
    .select((eb) => eb.fn.coalesce(eb.fn.sum<number>('amount_fen'), eb.lit(0)).as('n'))
    .where('order_id', '=', order.id)
    .where('status', 'in', REFUNDS_HOLDING)
    .executeTakeFirstOrThrow()
  return (order.paid_total_fen ?? order.amount_fen) - Number(holding.n)
}

/**
 * Tries before a refund WeChat Pay keeps refusing is given up — after a refund query: it ends
 * `failed` (an operator is alerted) only if WeChat Pay has no such refund.
 */
export const REFUND_MAX_ATTEMPTS = 10

/** Wait after `attempts` failed sends: 1 min, 2, 4 … capped at 6 h (≈ 1.5 days for all ten). */
export const refundRetryDelayMs = (attempts: number) =>
  Math.min(6 * 3600_000, 60_000 * 2 ** Math.max(0, attempts - 1))

/**
 * How long a refund claimed for a send is left to its sender — longer than a send and a refund
 * query take — before another process may take it over (a sender that died): the same number
 * again, which WeChat Pay takes as the same refund.
 */
export const REFUND_SEND_LEASE_MS = 2 * 60_000

/**
 * Claims one due `requested` refund for a send — `outRefundNo`, or else the queue's next one,
 * skipping rows another process is claiming (FOR UPDATE SKIP LOCKED) — by one conditional update
 * that moves its `next_attempt_at` to the end of a lease ({@link REFUND_SEND_LEASE_MS}): of several
 * processes (two runs of the queue, an operator's retry) exactly one sends it; the others find it
 * not due. Returns the refund claimed.
 */
async function claimRefund(
  db: Kysely<Database>,
  now: Date,
  outRefundNo?: string,
): Promise<string | undefined> {
  const due = (eb: ExpressionBuilder<Database, 'refunds'>) =>
    eb.and([
      eb('status', '=', 'requested'),
      eb.or([eb('next_attempt_at', 'is', null), eb('next_attempt_at', '<=', now)]),
    ])
  const claim = db
    .updateTable('refunds')
    .set({ next_attempt_at: new Date(now.getTime() + REFUND_SEND_LEASE_MS) })
  // The queue's pick is its locking subquery's alone: with `due` checked again on the update, a
  // pass stopped early when an operator's send had just claimed the row (seen on PostgreSQL).
  const row = await (outRefundNo !== undefined
    ? claim.where(due).where('out_refund_no', '=', outRefundNo)
    : claim.where(
        'id',
        'in',
        db
          .selectFrom('refunds')
          .select('id')
          .where(due)
          .orderBy('next_attempt_at')
          .limit(1)
          .forUpdate()
          .skipLocked(),
      )
  )
    .returning('out_refund_no')
    .executeTakeFirst()
  return row?.out_refund_no
}

/**
 * The refund queue, one pass (shop maintenance): up to `limit` due `requested` refunds (failed
 * sends back off, so refunds that keep failing never hold newer ones back), each claimed just
 * before it is sent ({@link claimRefund}), so each is sent by one process: a batch claimed at
 * once would outlive its leases while its sends queue up behind a slow WeChat Pay (10 s a send),
 * and the next run would send its tail again. `now` moves on with the
 * time the pass has taken. Errors are counted and logged.
 */
export async function runRefundQueue(
  db: Kysely<Database>,
  gateway: PayGateway,
  s: ShopSettings,
  now: Date,
  logger?: Logger,
  limit = 200,
): Promise<{ refundsSent: number; errors: number }> {
  const started = Date.now()
  const summary = { refundsSent: 0, errors: 0 }
  for (let i = 0; i < limit; i++) {
    const at = new Date(now.getTime() + (Date.now() - started))
    const claimed = await claimRefund(db, at)
    if (!claimed) break
    try {
      const status = await sendClaimed(db, gateway, s, claimed, at, logger)
      if (status !== 'requested') summary.refundsSent++
    } catch (error) {
      // still claimed: sent again when the lease ends
      summary.errors++
      logger?.warn('could not send a refund', { outRefundNo: claimed, error })
    }
  }
  return summary
}

/**
 * Sends one requested refund (same number every time) if it is due, claiming it first (one
 * conditional update: of several callers at once, one sends); returns its status afterwards — a
 * refund not due, or being sent by another process, is `requested`. A send that
 * errors may still have been accepted (a timeout, a 200 whose signature does not verify): when the
 * tries run out WeChat Pay is asked first, and a refund it knows is applied as its notification
 * would be; only "no such refund" (404) after WeChat Pay itself refused the last send (a 4xx
 * answer: {@link refusedByWechatPay}) ends it `failed` — a failed refund stops holding the order's
 * money, so ending one WeChat Pay has, or is still creating, would let a re-issue pay twice. If
 * the last send had no such answer, or the query errors, the refund stays `requested` and is sent
 * (and asked about) again later.
 */
export async function sendRefund(
  db: Kysely<Database>,
  gateway: PayGateway,
  s: ShopSettings,
  outRefundNo: string,
  now: Date,
  logger?: Logger,
): Promise<string> {
  if ((await claimRefund(db, now, outRefundNo)) === undefined) {
    const current = await db
      .selectFrom('refunds')
      .select('status')
      .where('out_refund_no', '=', outRefundNo)
      .executeTakeFirstOrThrow()
    return current.status
  }
  return sendClaimed(db, gateway, s, outRefundNo, now, logger)
}

/** Sends a refund this process has claimed ({@link sendRefund}). */
async function sendClaimed(
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
  let attempts = row.attempts
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
    const message = errorText(error)
    attempts += 1
    /** Still `requested`: tried again after the back-off. */
    const later = async (why: string) => {
      await db
        .updateTable('refunds')
        .set({
          error: why.slice(0, 500),
          attempts,
          next_attempt_at: new Date(now.getTime() + refundRetryDelayMs(attempts)),
          updated_at: now,
        })
        .where('out_refund_no', '=', outRefundNo)
        .where('status', '=', 'requested')
        .execute()
      return 'requested' as const
    }
    if (attempts < REFUND_MAX_ATTEMPTS) {
      logger?.warn('refund not accepted yet', { outRefundNo, attempts, error: message })
      return later(message)
    }
    // Out of tries: was one of them accepted after all?
    let known: Refund | null
    try {
      known = await gateway.refundQuery(outRefundNo)
    } catch (queryError) {
      const asked = errorText(queryError)
      logger?.warn(
        'refund unconfirmed: WeChat Pay could not be asked about it; trying again later',
        {
          code: 'REFUND_UNCONFIRMED',
          outRefundNo,
          attempts,
          error: message,
          queryError: asked,
        },
      )
      return later(`${message} (refund query: ${asked})`)
    }
    if (!known && !refusedByWechatPay(error)) {
      // The last send got no answer of WeChat Pay's own (a timeout, a 5xx, a 200 that did not
      // verify): it may still be creating that refund, and a 404 now does not prove it never
      // will. Sent again (same number) later — the send itself then finds it — never failed.
      logger?.warn(
        'refund unconfirmed: its last send had no answer and WeChat Pay has no such refund yet; sending it again later',
        {
          code: 'REFUND_UNCONFIRMED',
          outRefundNo,
          attempts,
          error: message,
        },
      )
      return later(`${message} (refund query: not found yet)`)
    }
    if (!known) {
      logger?.warn('refund failed: WeChat Pay never accepted it', {
        code: 'REFUND_FAILED',
        outRefundNo,
        attempts,
        error: message,
      })
      await db
        .updateTable('refunds')
        .set({
          error: message.slice(0, 500),
          attempts,
          status: 'failed',
          next_attempt_at: null,
          updated_at: now,
        })
        .where('out_refund_no', '=', outRefundNo)
        .where('status', '=', 'requested')
        .execute()
      return 'failed'
    }
    logger?.warn('refund accepted after all: WeChat Pay has it, its answers were lost', {
      outRefundNo,
      attempts,
      error: message,
    })
    answer = known
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
      attempts,
      next_attempt_at: new Date(now.getTime() + REFUND_POLL_AFTER_MS),
      updated_at: now,
    })
    .where('out_refund_no', '=', outRefundNo)
    .where('status', '=', 'requested')
    .execute()
  // settled meanwhile by its notification (which came first): its id all the same
  await recordRefundId(db, outRefundNo, answer.refund_id)
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
 * Whether a send's error is WeChat Pay's own refusal of it (an error answer with a 4xx code: the
 * request was decided, and not created). Anything else — a timeout, a transport error, a 5xx
 * (SYSTEM_ERROR: WeChat Pay asks for the same number again), an answer whose signature did not
 * verify — leaves open whether it created the refund.
 */
/** WeChat Pay's own refusal: a 4xx answer it signed (a proxy's unsigned page is no answer). */
const refusedByWechatPay = (error: unknown) =>
  error instanceof PayApiError && error.verified && error.status >= 400 && error.status < 500

/**
 * An `abnormal` refund waits on a person (apply-abnormal-refund, or 商户平台), who may take days:
 * it is asked about hourly, so that its completion is applied even if the notification is lost.
 */
export const REFUND_ABNORMAL_POLL_MS = 60 * 60_000

/**
 * Asks WeChat Pay about one `processing` or `abnormal` refund (its REFUND.* notification may have
 * been lost) and settles it through the same path as the notification when the answer is final.
 * A processing refund WeChat Pay does not know (it accepted it, so this should not happen) goes
 * back to the refund queue, which sends it again with the same number. An abnormal one holds the
 * order's money until WeChat Pay answers SUCCESS or CLOSED; while it answers ABNORMAL it is asked
 * about again in {@link REFUND_ABNORMAL_POLL_MS}; PROCESSING (an operator re-applied it:
 * apply-abnormal-refund) makes it `processing` again, polled as such. A status WeChat Pay does not
 * document changes nothing (logged). Returns what became of it: `processing` when it is still
 * open (processing or abnormal).
 */
export async function pollRefund(
  db: Kysely<Database>,
  gateway: PayGateway,
  outRefundNo: string,
  now: Date,
  logger?: Logger,
): Promise<'settled' | 'processing' | 'requeued' | 'duplicate'> {
  const answer = await gateway.refundQuery(outRefundNo)
  if (answer) await recordRefundId(db, outRefundNo, answer.refund_id)
  if (!answer) {
    const requeued = await db
      .updateTable('refunds')
      .set({ status: 'requested', next_attempt_at: now, updated_at: now })
      .where('out_refund_no', '=', outRefundNo)
      .where('status', '=', 'processing')
      .executeTakeFirst()
    logger?.warn(
      requeued.numUpdatedRows > 0n
        ? 'WeChat Pay does not know a refund it accepted: sending it again'
        : 'WeChat Pay does not know an abnormal refund: left abnormal for an operator',
      { code: 'REFUND_UNKNOWN', outRefundNo },
    )
    return requeued.numUpdatedRows > 0n ? 'requeued' : 'processing'
  }
  const status = String(answer.status ?? answer.refund_status)
  if (status !== 'SUCCESS' && status !== 'CLOSED' && status !== 'ABNORMAL') {
    // PROCESSING: still (or again) under way; anything else: logged, the refund left as it is
    await settleRefund(db, outRefundNo, status, now, logger)
    return 'processing'
  }
  const settled = await settleRefund(db, outRefundNo, status, now, logger)
  if (settled !== 'settled' && status === 'ABNORMAL')
    // still waiting on an operator: asked about again in an hour
    await db
      .updateTable('refunds')
      .set({ next_attempt_at: new Date(now.getTime() + REFUND_ABNORMAL_POLL_MS) })
      .where('out_refund_no', '=', outRefundNo)
      .where('status', '=', 'abnormal')
      .execute()
  if (settled === 'settled' && status !== 'SUCCESS')
    logger?.warn(`refund ${status}: an operator must act`, {
      code: status === 'CLOSED' ? 'REFUND_CLOSED' : 'REFUND_ABNORMAL',
      outRefundNo,
    })
  return settled === 'settled' ? 'settled' : 'duplicate'
}

/** WeChat Pay's refund statuses (`status` / `refund_status`, protocol §4), as ours. */
const REFUND_STATUSES = {
  SUCCESS: 'success',
  CLOSED: 'closed',
  ABNORMAL: 'abnormal',
  PROCESSING: 'processing',
} as const

/**
 * Settles a refund from a REFUND.* notification (or a poll's answer): requested, processing or
 * failed → success|closed|abnormal, and abnormal → success|closed (an operator completed that
 * same refund at WeChat Pay). PROCESSING moves an abnormal refund (an operator re-applied it:
 * apply-abnormal-refund) or a failed one (WeChat Pay has it after all) back to `processing`
 * (`reopened`, polled again in {@link REFUND_POLL_AFTER_MS}); any other refund it leaves as it is.
 * A status WeChat Pay does not document changes nothing (`unknown_status`, logged): it proves
 * nothing about the money. On success the order's refunded amount grows (→ refunded when all of
 * it) and, in the same transaction, what the purchase granted follows the money
 * ({@link takeBackPurchase}: the refunded share of its points, the membership days at a full
 * refund); a flagged order refunded in full gives back the unit of stock it took and the
 * group-buy seat it still held (it bought nothing). Once only: a conditional update of the
 * refund's status. The member is locked first (the house lock order: member, then refund and
 * order, then group buy and product).
 */
export async function settleRefund(
  db: Kysely<Database>,
  outRefundNo: string,
  refundStatus: string,
  now: Date,
  logger?: Logger,
  /** WeChat Pay's `refund_id` (the notification's or the query's): recorded if not yet known. */
  refundId?: string,
): Promise<'settled' | 'reopened' | 'duplicate' | 'unknown_refund' | 'unknown_status'> {
  await recordRefundId(db, outRefundNo, refundId)
  const status = Object.hasOwn(REFUND_STATUSES, refundStatus)
    ? REFUND_STATUSES[refundStatus as keyof typeof REFUND_STATUSES]
    : undefined
  if (!status) {
    logger?.warn('refund status unknown: the refund is left as it is', {
      code: 'REFUND_STATUS_UNKNOWN',
      outRefundNo,
      refundStatus,
    })
    return 'unknown_status'
  }
  if (status === 'processing') {
    // Nothing granted or taken back: no member lock, one conditional update.
    const reopened = await db
      .updateTable('refunds')
      .set({
        status,
        updated_at: now,
        next_attempt_at: new Date(now.getTime() + REFUND_POLL_AFTER_MS),
      })
      .where('out_refund_no', '=', outRefundNo)
      .where('status', 'in', ['abnormal', 'failed'])
      .returning('id')
      .executeTakeFirst()
    if (reopened) {
      logger?.info('refund processing again at WeChat Pay', { outRefundNo })
      return 'reopened'
    }
    const known = await db
      .selectFrom('refunds')
      .select('id')
      .where('out_refund_no', '=', outRefundNo)
      .executeTakeFirst()
    return known ? 'duplicate' : 'unknown_refund'
  }
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
      .set({
        status,
        updated_at: now,
        // asked about again while it waits on an operator (a lost notification: pollRefund)
        ...(status === 'abnormal'
          ? { next_attempt_at: new Date(now.getTime() + REFUND_ABNORMAL_POLL_MS) }
          : {}),
      })
      .where('out_refund_no', '=', outRefundNo)
      // failed: we gave up sending it, but WeChat Pay says it went after all; abnormal: an
      // operator completed it (success) or WeChat Pay closed it
      .where(
        'status',
        'in',
        status === 'abnormal'
          ? ['requested', 'processing', 'failed']
          : ['requested', 'processing', 'failed', 'abnormal'],
      )
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
      const before = await trx
        .selectFrom('orders')
        .select(['status', 'group_buy_id', 'closed_at'])
        .where('id', '=', refund.order_id)
        .forUpdate()
        .executeTakeFirstOrThrow()
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
        .returning(['status', 'refunded_fen', 'paid_total_fen', 'amount_fen'])
        .executeTakeFirstOrThrow()
      // A flagged order (its payment did not match it, or came after its order closed or its
      // group buy failed) granted nothing and never counted as paid in its group: refunded in
      // full, it sold nothing, and the unit of stock it took comes back — once (`releaseStock`;
      // one whose payment came after it closed gave it back already) — and so does its group-buy
      // seat (`joined`), if it still holds one: an order never closed does (a close gives the seat
      // back, closeOrder), and this flagged → refunded move happens once, under the order's lock.
      // A paid order's refund keeps it sold, and its seat.
      if (before.status === 'flagged' && order.status === 'refunded') {
        // the group's row (its seat back, or only locked) before the product's (the house lock
        // order, orders.ts)
        if (before.group_buy_id !== null)
          await trx
            .updateTable('group_buys')
            .set((eb) => ({ joined: eb('joined', '-', before.closed_at === null ? 1 : 0) }))
            .where('id', '=', before.group_buy_id)
            .execute()
        await releaseStock(trx, { orderId: refund.order_id })
      }
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

/**
 * Records WeChat Pay's `refund_id` of a refund that has none yet — a REFUND.* notification or a
 * query may come before the refund request's own answer (which may be lost) — so reconciliation
 * and the console see it whichever arrived first. One conditional update; nothing when unknown.
 */
export async function recordRefundId(
  db: Kysely<Database>,
  outRefundNo: string,
  refundId: unknown,
): Promise<void> {
  if (typeof refundId !== 'string' || !/^[\w-]{1,64}$/.test(refundId)) return
  await db
    .updateTable('refunds')
    .set({ refund_id: refundId })
    .where('out_refund_no', '=', outRefundNo)
    .where('refund_id', 'is', null)
    .execute()
}

/** A Pay API error as stored (`refunds.error`, `orders.expire_error`): its code first. */
export const errorText = (error: unknown) =>
  error instanceof PayApiError ? `${error.code} ${error.message}` : String(error)
