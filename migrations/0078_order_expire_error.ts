import { type Kysely, sql } from 'kysely'

/**
 * `orders.expire_error`: what went wrong the last time shop maintenance tried to expire the pending
 * order (its query or close at WeChat Pay — an unsigned 404 is `UNVERIFIED_NOT_FOUND` — or the
 * local close), so the `orders_stuck` alert (src/analytics/alert-checks.ts) can say why orders stay
 * pending, their stock held. The alert reads through `orders_pending_expiry_idx` (0008): pending
 * orders only, by expiry — no index of its own.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table orders add column expire_error text`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table orders drop column expire_error`.execute(db)
}
