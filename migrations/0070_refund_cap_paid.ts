import { type Kysely, sql } from 'kysely'

/**
 * `orders_refund_cap` follows what was paid: an order may be refunded up to what WeChat Pay says
 * was paid (`paid_total_fen`, as src/shop/refunds.ts `refundableFen` caps every refund), not only
 * up to its own amount. A flagged order paid more than it asked could be refunded in full at WeChat
 * Pay, but settling that refund here broke the check — its notification and every poll failed,
 * and the order never became `refunded`.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table orders drop constraint orders_refund_cap`.execute(db)
  await sql`alter table orders add constraint orders_refund_cap
    check (refunded_fen between 0 and coalesce(paid_total_fen, amount_fen))`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table orders drop constraint orders_refund_cap`.execute(db)
  await sql`alter table orders add constraint orders_refund_cap
    check (refunded_fen between 0 and amount_fen)`.execute(db)
}
