/**
 * What the shop does on a schedule (jobs/shop-maintenance.ts), each step safe to run in several
 * processes at once because every change is a conditional update:
 *   1. unpaid orders past their expiry: asked about (a payment whose notification was lost is
 *      applied), else closed at WeChat Pay and locally, releasing stock and group-buy seats; one
 *      whose query failed is asked again a minute later, after the others, its error kept
 *      (`expire_error`, for the `orders_stuck` alert);
 *   2. group buys past their deadline without enough paid participants: failed, and in the same
 *      transaction a refund of what remains refundable recorded for each paid order and the units
 *      of stock its paid and refunded orders took given back;
 *   3. the refund queue: refunds WeChat Pay has not accepted yet and that are due (those just
 *      recorded included), sent with the same number, backing off, until accepted or failed —
 *      each claimed first by moving its `next_attempt_at` to a lease's end with SKIP LOCKED, so
 *      one process sends it;
 *   4. refunds WeChat Pay accepted but that are still open when their poll is due: `processing`
 *      ones (10 minutes after acceptance, then less often) and `abnormal` ones waiting on an
 *      operator (hourly): asked about and settled like a notification, each claimed by a
 *      conditional update of `next_attempt_at` with SKIP LOCKED;
 *   5. cashback transfers (src/shop/transfers.ts): due ones created at WeChat Pay (same bill number
 *      and body every time), those whose notification may be lost asked about, bills unconfirmed
 *      for 24 hours cancelled — claimed the same way.
 */
import { type Kysely, sql } from 'kysely'
import type { Translate } from '../bot/i18n.js'
import type { Database } from '../db/schema.js'
import type { Logger } from '../logger.js'
import type { PayGateway } from '../pay/gateway.js'
import type { ShopSettings } from './catalog.js'
import { applyTransaction, closeOrder, releaseStock } from './orders.js'
import { errorText, pollRefund, refundableFen, runRefundQueue } from './refunds.js'
import { runTransferQueue } from './transfers.js'

/** The shop's services: settings and the payment gateway. */
export interface Shop {
  settings: ShopSettings
  gateway: PayGateway
}

/** One maintenance pass (see above); returns what it did, errors counted and logged, not thrown. */
export async function runShopMaintenance(
  db: Kysely<Database>,
  shop: Shop,
  o: { now: Date; timeZone: string; logger: Logger; t?: Translate },
) {
  const { gateway, settings } = shop
  const summary = {
    paidLate: 0,
    closed: 0,
    groupsFailed: 0,
    refundsSent: 0,
    refundsPolled: 0,
    errors: 0,
  }

  // Claimed by stamping `queried_at` (several processes never ask about the same order at once);
  // an order asked about within the last minute waits, so orders whose query keeps failing go to
  // the back of the line instead of holding the newer ones back. The order page's poll stamps it
  // too, and takes the same expiry step for an expired order (routes/shop.ts): polled, it closes.
  const expired = await db
    .updateTable('orders')
    .set({ queried_at: o.now })
    .where(
      'id',
      'in',
      db
        .selectFrom('orders')
        .select('id')
        .where('status', '=', 'pending')
        .where('expires_at', '<=', o.now)
        .where((eb) =>
          eb.or([
            eb('queried_at', 'is', null),
            eb('queried_at', '<=', new Date(o.now.getTime() - 60_000)),
          ]),
        )
        .orderBy('queried_at', (ob) => ob.nullsFirst())
        .orderBy('expires_at')
        .limit(200)
        .forUpdate()
        .skipLocked(),
    )
    .returning(['id', 'out_trade_no'])
    .execute()
  for (const order of expired) {
    try {
      const became = await expireOrder(db, shop, order, o)
      if (became === 'paid') summary.paidLate++
      if (became === 'closed') summary.closed++
    } catch (error) {
      summary.errors++
      o.logger.warn('could not expire an order', { outTradeNo: order.out_trade_no, error })
    }
  }

  const due = await db
    .selectFrom('group_buys')
    .select('id')
    .where('status', '=', 'open')
    .where('expires_at', '<=', o.now)
    .orderBy('expires_at')
    .limit(200)
    .execute()
  for (const group of due) {
    try {
      if (await failGroupBuy(db, group.id, o.now)) summary.groupsFailed++
    } catch (error) {
      summary.errors++
      o.logger.warn('could not fail a group buy', { groupBuyId: group.id, error })
    }
  }

  // The refund queue: due ones only, each claimed by one process (refunds.ts).
  const queue = await runRefundQueue(db, gateway, settings, o.now, o.logger)
  summary.refundsSent += queue.refundsSent
  summary.errors += queue.errors

  // Processing refunds whose poll is due, claimed by moving their next poll (several processes
  // never ask about the same refund at once; one whose query fails waits its turn again). The
  // next poll is half the refund's age away, between 10 minutes and an hour: a refund to the
  // balance settles in minutes, to a bank card in 1–3 working days. Abnormal refunds too (an
  // operator completes them at WeChat Pay): pollRefund moves their next poll an hour away.
  const polls = await db
    .updateTable('refunds')
    .set({
      next_attempt_at: sql<Date>`${o.now}::timestamptz + make_interval(secs =>
        least(3600, greatest(600, extract(epoch from (${o.now}::timestamptz - created_at)) / 2)))`,
    })
    .where(
      'id',
      'in',
      db
        .selectFrom('refunds')
        .select('id')
        .where('status', 'in', ['processing', 'abnormal'])
        .where('next_attempt_at', '<=', o.now)
        .orderBy('next_attempt_at')
        .limit(200)
        .forUpdate()
        .skipLocked(),
    )
    .returning('out_refund_no')
    .execute()
  for (const r of polls) {
    try {
      const became = await pollRefund(db, gateway, r.out_refund_no, o.now, o.logger)
      if (became === 'settled' || became === 'requeued') summary.refundsPolled++
    } catch (error) {
      summary.errors++
      o.logger.warn('could not ask about a refund', { outRefundNo: r.out_refund_no, error })
    }
  }

  const transfers = await runTransferQueue(
    { db, shop, timeZone: o.timeZone, logger: o.logger, t: o.t },
    o.now,
  )
  return { ...summary, ...transfers }
}

/**
 * The expiry step of one unpaid order past its expiry, which the caller has claimed by stamping
 * its `queried_at` (maintenance, above, or the order page's poll, routes/shop.ts — one conditional
 * update each, so one process at a time asks about it): WeChat Pay is asked; a payment is applied
 * (a lost notification), else the order is closed there (unless WeChat Pay has no such order) and
 * here — its stock and group-buy seat released by {@link closeOrder}'s conditional update, once.
 * An error is stored in `expire_error` (for the `orders_stuck` alert; the order stays pending and
 * is asked about again) and thrown.
 */
export async function expireOrder(
  db: Kysely<Database>,
  shop: Shop,
  order: { id: number; out_trade_no: string },
  o: { now: Date; timeZone: string; logger: Logger; t?: Translate },
): Promise<'paid' | 'closed' | 'unchanged'> {
  const { gateway, settings } = shop
  try {
    const t = await gateway.query(order.out_trade_no)
    if (t?.trade_state === 'SUCCESS') {
      const outcome = await applyTransaction(db, gateway, settings, t, {
        eventId: `query:${t.transaction_id ?? order.out_trade_no}`,
        eventType: 'QUERY.SUCCESS',
        now: o.now,
        timeZone: o.timeZone,
        t: o.t,
      })
      return outcome === 'paid' ? 'paid' : 'unchanged'
    }
    if (t) await gateway.close(order.out_trade_no)
    return (await closeOrder(db, order.id, o.now)) ? 'closed' : 'unchanged'
  } catch (error) {
    // Kept for the `orders_stuck` alert: a query that keeps failing leaves the order pending.
    await db
      .updateTable('orders')
      .set({ expire_error: errorText(error).slice(0, 500) })
      .where('id', '=', order.id)
      .where('status', '=', 'pending')
      .execute()
      .catch((storeError: unknown) =>
        o.logger.warn('could not store why an order did not expire', {
          outTradeNo: order.out_trade_no,
          error: storeError,
        }),
      )
    throw error
  }
}

/**
 * Fails one expired group buy and, in the same transaction, records a refund of what remains
 * refundable on each of its paid orders (`R-<out_trade_no>-group`, status `requested`), so the
 * refund queue sends them even if this process dies right after. No network call inside. The
 * house lock order (orders.ts): the group's orders, in id order, before the group — as a 绑定
 * moving its leader's orders and then the group (mp-link.ts), or a close, takes them. Every one of
 * them is locked, pending ones too: a payment then waits on its order and, once the group has
 * failed, is refunded ("paid after the group buy failed", orders.ts), so none becomes paid unseen.
 * The units of stock its paid (and already refunded) orders took come back in the same transaction,
 * each once (`releaseStock`, the product's row last); a pending order's comes back when it closes,
 * or when its late payment is refunded (orders.ts). False, and nothing changed, when the group is
 * no longer open (another process, or it filled) or not yet expired.
 */
export async function failGroupBuy(
  db: Kysely<Database>,
  groupBuyId: number,
  now: Date,
): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    // Unlocked: a group already settled, or not due, costs no lock on its orders.
    const due = await trx
      .selectFrom('group_buys')
      .select('id')
      .where('id', '=', groupBuyId)
      .where('status', '=', 'open')
      .where('expires_at', '<=', now)
      .executeTakeFirst()
    if (!due) return false
    const orders = await trx
      .selectFrom('orders')
      .select(['id', 'status', 'out_trade_no', 'amount_fen', 'paid_total_fen'])
      .where('group_buy_id', '=', groupBuyId)
      .orderBy('id')
      .forUpdate()
      .execute()
    // Decided again under the lock: a payment may have filled it meanwhile.
    const failed = await trx
      .updateTable('group_buys')
      .set({ status: 'failed', settled_at: now })
      .where('id', '=', groupBuyId)
      .where('status', '=', 'open')
      .where('expires_at', '<=', now)
      .returning('id')
      .executeTakeFirst()
    if (!failed) return false
    for (const order of orders) {
      if (order.status !== 'paid') continue
      const remaining = await refundableFen(trx, order)
      if (remaining <= 0) continue
      await trx
        .insertInto('refunds')
        .values({
          order_id: order.id,
          out_refund_no: `R-${order.out_trade_no}-group`,
          amount_fen: remaining,
          reason: '拼团未成团，退款',
          status: 'requested',
          next_attempt_at: now,
          created_at: now,
          updated_at: now,
        })
        .onConflict((oc) => oc.column('out_refund_no').doNothing())
        .execute()
    }
    await releaseStock(trx, { groupBuyId, statuses: ['paid', 'refunded'] })
    return true
  })
}
