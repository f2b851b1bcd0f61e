import { type Kysely, sql } from 'kysely'

/**
 * The check-in reminder job now also expires a reminder held by a dispatcher that died before
 * sending it (`sending`, its lease over: src/community/checkin-reminders.ts `expireReminders`).
 * 0071's index covered queued items only, so the sweep fell back to the whole due backlog (a
 * campaign's 600k due items: 140–380 ms a sweep, every minute, measured on PostgreSQL): the index
 * now covers claimed items with a deadline too — still only the few reminders.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`drop index push_outbox_expiring_idx`.execute(db)
  await sql`create index push_outbox_expiring_idx on push_outbox (expires_at)
    where status in ('pending', 'sending') and expires_at is not null`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index push_outbox_expiring_idx`.execute(db)
  await sql`create index push_outbox_expiring_idx on push_outbox (expires_at)
    where status = 'pending' and expires_at is not null`.execute(db)
}
