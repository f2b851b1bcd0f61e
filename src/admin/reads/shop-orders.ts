/**
 * The shop's orders as the console pages through them (newest first, by a `before` id cursor,
 * filtered by status or found by number), and one order with everything that happened to it: its
 * product, member, group buy, refunds, WeChat Pay notifications and what the purchase granted.
 */
import type { Kysely } from 'kysely'
import type { Database, OrderStatus } from '../../db/schema.js'
import { REFUNDS_HOLDING } from '../../shop/refunds.js'

/** How many WeChat Pay notifications an order page shows (newest first). */
export const ORDER_EVENTS_SHOWN = 20

/**
 * A page of the account's orders, newest first: of one status, older than the id `before`, or the
 * one whose out_trade_no or transaction_id is `number` (exact). `more` says an older page exists.
 */
export async function pageOrders(
  db: Kysely<Database>,
  appid: string,
  q: { status?: OrderStatus; number?: string; before?: number; limit: number },
) {
  let query = db
    .selectFrom('orders as o')
    .leftJoin('members as m', 'm.id', 'o.member_id')
    .select([
      'o.id',
      'o.out_trade_no',
      'o.kind',
      'o.description',
      'o.amount_fen',
      'o.refunded_fen',
      'o.status',
      'o.created_at',
      'o.paid_at',
      'm.openid',
    ])
    .where('o.appid', '=', appid)
    .orderBy('o.id', 'desc')
    .limit(q.limit + 1)
  if (q.status) query = query.where('o.status', '=', q.status)
  if (q.before) query = query.where('o.id', '<', q.before)
  if (q.number) {
    const number = q.number
    query = query.where((eb) =>
      eb.or([eb('o.out_trade_no', '=', number), eb('o.transaction_id', '=', number)]),
    )
  }
  const rows = await query.execute()
  return { orders: rows.slice(0, q.limit), more: rows.length > q.limit }
}

/** One order of the account by its number, with its refunds, notifications and grant; or undefined. */
export async function orderDetail(db: Kysely<Database>, appid: string, outTradeNo: string) {
  const order = await db
    .selectFrom('orders as o')
    .innerJoin('products as p', 'p.id', 'o.product_id')
    .leftJoin('members as m', 'm.id', 'o.member_id')
    .selectAll('o')
    // the member's appid: the account's (a follower) or its mini program's (account-members.ts)
    .select(['p.sku', 'p.name as product_name', 'm.openid', 'm.appid as member_appid'])
    .where('o.appid', '=', appid)
    .where('o.out_trade_no', '=', outTradeNo)
    .executeTakeFirst()
  if (!order) return undefined
  const [refunds, events, grant, groupBuy] = await Promise.all([
    db
      .selectFrom('refunds')
      .selectAll()
      .where('order_id', '=', order.id)
      .orderBy('id', 'desc')
      .execute(),
    // One order's newest notifications (pay_events_reference_idx).
    db
      .selectFrom('pay_events')
      .selectAll()
      .where('reference', '=', order.out_trade_no)
      .orderBy('received_at', 'desc')
      .limit(ORDER_EVENTS_SHOWN)
      .execute(),
    db
      .selectFrom('purchase_grants')
      .selectAll()
      .where('order_id', '=', order.id)
      .executeTakeFirst(),
    order.group_buy_id === null
      ? undefined
      : db
          .selectFrom('group_buys')
          .selectAll()
          .where('id', '=', order.group_buy_id)
          .executeTakeFirst(),
  ])
  const live = refunds
    // the refunds that count against what it may still refund, as the refund itself counts them
    .filter((r) => (REFUNDS_HOLDING as readonly string[]).includes(r.status))
    .reduce((n, r) => n + r.amount_fen, 0)
  const refundable =
    order.transaction_id && (order.status === 'paid' || order.status === 'flagged')
      ? Math.max(0, (order.paid_total_fen ?? order.amount_fen) - live)
      : 0
  return { order, refunds, events, grant, groupBuy, refundable }
}

export type OrderDetail = NonNullable<Awaited<ReturnType<typeof orderDetail>>>
