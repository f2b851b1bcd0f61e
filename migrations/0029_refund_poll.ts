import { type Kysely, sql } from 'kysely'

/**
 * Refund status polling (issue #15): a refund WeChat Pay accepted but has not settled is asked
 * about when its `next_attempt_at` comes (10 minutes after acceptance, then less often), so a
 * lost REFUND.* notification cannot leave it `processing` forever. The partial index serves the
 * poll and the refund queue's /metrics gauge (unfinished and operator-bound refunds only).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`update refunds set next_attempt_at = updated_at + interval '10 minutes'
    where status = 'processing'`.execute(db)
  await sql`create index refunds_open_idx on refunds (status, next_attempt_at)
    where status in ('requested', 'processing', 'failed', 'abnormal')`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index refunds_open_idx`.execute(db)
}
