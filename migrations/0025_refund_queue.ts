import { type Kysely, sql } from 'kysely'

/**
 * The refund queue (issue #15): a refund WeChat Pay did not accept is retried with exponential
 * backoff (`next_attempt_at`, `attempts`) and ends `failed` after its last try, so refunds that keep
 * failing neither retry forever nor hold newer ones back. A `failed` refund no longer counts against
 * what an order may still refund; a late REFUND.SUCCESS still settles it. Orders keep what WeChat
 * Pay reported as paid (`paid_total_fen`, `payer_total_fen`): refunds of an order whose payment
 * did not match it (flagged) are made against what was really paid. `queried_at`: when a member's
 * poll of a pending order last asked WeChat Pay (at most one query per order every few seconds).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table refunds
    add column attempts integer not null default 0,
    add column next_attempt_at timestamptz`.execute(db)
  await sql`update refunds set next_attempt_at = updated_at where status = 'requested'`.execute(db)
  await sql`alter table orders add column paid_total_fen integer, add column payer_total_fen integer,
    add column queried_at timestamptz`.execute(db)
  await sql`alter table refunds drop constraint if exists refunds_status_check`.execute(db)
  await sql`alter table refunds add constraint refunds_status_check
    check (status in ('requested', 'processing', 'success', 'closed', 'abnormal', 'failed'))`.execute(
    db,
  )
  await sql`create index refunds_due_idx on refunds (next_attempt_at) where status = 'requested'`.execute(
    db,
  )
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index refunds_due_idx`.execute(db)
  await sql`update refunds set status = 'abnormal' where status = 'failed'`.execute(db)
  await sql`alter table refunds drop constraint refunds_status_check`.execute(db)
  await sql`alter table refunds add constraint refunds_status_check
    check (status in ('requested', 'processing', 'success', 'closed', 'abnormal'))`.execute(db)
  await sql`alter table refunds drop column attempts, drop column next_attempt_at`.execute(db)
  await sql`alter table orders drop column paid_total_fen, drop column payer_total_fen,
    drop column queried_at`.execute(db)
}
