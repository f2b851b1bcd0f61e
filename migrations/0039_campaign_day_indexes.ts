import { type Kysely, sql } from 'kysely'

/**
 * A day's campaign events found by index, not by walking every recipient of the runs in the
 * day's window (issue #16: the campaigns family read live for today, and built nightly):
 * - campaign pushes by when they settled — sent (`sent_at`), or failed / skipped (the result's
 *   `next_attempt_at`) — and by when their delivery was confirmed (`delivered_at`); receipts that
 *   raced the send are found by `push_receipts_received_idx`;
 * - recipients by their first click and by their conversion.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create index push_outbox_campaign_settled_idx on push_outbox (appid,
      (case when status = 'sent' then sent_at else next_attempt_at end))
    where lane = 2 and status in ('sent', 'failed', 'skipped')`.execute(db)
  await sql`create index push_outbox_campaign_delivered_idx on push_outbox (appid, delivered_at)
    where lane = 2 and delivered_at is not null`.execute(db)
  await sql`create index campaign_recipients_clicked_idx on campaign_recipients (clicked_at)
    where clicked_at is not null`.execute(db)
  await sql`create index campaign_recipients_converted_idx on campaign_recipients (converted_at)
    where converted_at is not null`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const index of [
    'campaign_recipients_converted_idx',
    'campaign_recipients_clicked_idx',
    'push_outbox_campaign_delivered_idx',
    'push_outbox_campaign_settled_idx',
  ])
    await sql`drop index ${sql.id(index)}`.execute(db)
}
