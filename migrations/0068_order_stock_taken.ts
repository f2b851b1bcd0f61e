import { type Kysely, sql } from 'kysely'

/**
 * `orders.stock_taken`: whether the order holds a unit of its product's stock — set when the order
 * takes one (src/shop/orders.ts `reserveOrder`, only for a product with limited stock) and cleared by
 * the very statement that gives the unit back (`releaseStock`: closing an unpaid order, a failed
 * group buy, a payment refunded because the group had failed). A close used to give a unit back
 * whenever the product's stock was limited *now*: an order placed while it was unlimited, closed
 * after an operator set a stock, added a unit it never took (oversold).
 *
 * Backfill: the orders a release can still reach, by what the old code assumed — they took a unit
 * when their product's stock is limited now: pending orders, and paid or refunded orders of a group
 * buy still open. Closed orders gave theirs back; other paid, refunded and flagged orders are never
 * released (a refund does not return stock), so false is what they are read as.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table orders add column stock_taken boolean not null default false`.execute(db)
  await sql`
    update orders o set stock_taken = true
    from products p
    where p.id = o.product_id and p.stock is not null
      and (o.status = 'pending'
        or (o.status in ('paid', 'refunded') and exists (select 1 from group_buys g
          where g.id = o.group_buy_id and g.status = 'open')))`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table orders drop column stock_taken`.execute(db)
}
