import { type Kysely, sql } from 'kysely'

/**
 * Queued outbox items with a deadline, by deadline: the check-in reminder job stores those past it
 * `skipped` (expired) every minute and gives back the one-time authorisation each used
 * (src/community/checkin-reminders.ts `expireReminders`), rather than waiting for a dispatcher to
 * claim them — which a 45009 pause can put off until after the member's next reminder. Partial:
 * only queued items with a deadline (the few reminders), so the index stays small.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create index push_outbox_expiring_idx on push_outbox (expires_at)
    where status = 'pending' and expires_at is not null`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index push_outbox_expiring_idx`.execute(db)
}
