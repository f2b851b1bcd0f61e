/**
 * What the shop does on a schedule (jobs/shop-maintenance.ts), each step safe to run in several
 * processes at once because every change is a conditional update:
 *   1. unpaid orders past their expiry: asked about (a payment whose notification was lost is
 *      applied), else closed at WeChat Pay and locally, releasing stock and group-buy seats;
 *   2. group buys past their deadline without enough paid participants: failed, paid orders
 *      refunded in full;
 *   3. refunds WeChat Pay has not accepted yet: sent again with the same number.
 */
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.js'
import type { Logger } from '../logger.js'
import type { PayGateway } from '../pay/gateway.js'
import type { ShopSettings } from './catalog.js'
import { applyTransaction, closeOrder } from './orders.js'
import { requestRefund, sendRefund } from './refunds.js'

/** The shop's services: settings and the payment gateway. */
export interface Shop {
  settings: ShopSettings
  gateway: PayGateway
}

export async function runShopMaintenance(
  db: Kysely<Database>,
  shop: Shop,
  o: { now: Date; timeZone: string; logger: Logger },
) {
  const { gateway, settings } = shop
  const summary = { paidLate: 0, closed: 0, groupsFailed: 0, refundsSent: 0, errors: 0 }

  const expired = await db
    .selectFrom('orders')
    .select(['id', 'out_trade_no'])
    .where('status', '=', 'pending')
    .where('expires_at', '<=', o.now)
    .orderBy('expires_at')
    .limit(200)
    .execute()
  for (const order of expired) {
    try {
      const t = await gateway.query(order.out_trade_no)
      if (t?.trade_state === 'SUCCESS') {
        const outcome = await applyTransaction(db, gateway, settings, t, {
          eventId: `query:${t.transaction_id ?? order.out_trade_no}`,
          eventType: 'QUERY.SUCCESS',
          now: o.now,
          timeZone: o.timeZone,
        })
        if (outcome === 'paid') summary.paidLate++
        continue
      }
      if (t) await gateway.close(order.out_trade_no)
      if (await closeOrder(db, order.id, o.now)) summary.closed++
    } catch (error) {
      summary.errors++
      o.logger.warn('could not expire an order', { outTradeNo: order.out_trade_no, error })
    }
  }

  const failed = await db
    .updateTable('group_buys')
    .set({ status: 'failed', settled_at: o.now })
    .where('status', '=', 'open')
    .where('expires_at', '<=', o.now)
    .returning('id')
    .execute()
  summary.groupsFailed = failed.length
  if (failed.length > 0) {
    const paid = await db
      .selectFrom('orders')
      .select(['out_trade_no', 'amount_fen'])
      .where(
        'group_buy_id',
        'in',
        failed.map((g) => g.id),
      )
      .where('status', '=', 'paid')
      .execute()
    for (const order of paid) {
      await requestRefund(
        db,
        gateway,
        settings,
        {
          outTradeNo: order.out_trade_no,
          amountFen: order.amount_fen,
          reason: '拼团未成团，全额退款',
          outRefundNo: `R-${order.out_trade_no}`,
          now: o.now,
        },
        o.logger,
      )
    }
  }

  const waiting = await db
    .selectFrom('refunds')
    .select('out_refund_no')
    .where('status', '=', 'requested')
    .orderBy('id')
    .limit(200)
    .execute()
  for (const r of waiting) {
    const status = await sendRefund(db, gateway, settings, r.out_refund_no, o.now, o.logger)
    if (status !== 'requested') summary.refundsSent++
  }
  return summary
}
