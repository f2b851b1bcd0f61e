import { type Kysely, sql } from 'kysely'

/**
 * A deadline for outbox items (`push_outbox.expires_at`): an item claimed at or after it is not
 * sent but stored `skipped` (errmsg `expired`), and a one-time authorisation it consumed when it
 * was enqueued is given back. Check-in reminders set it (the earliest of 2 h after their time, the
 * start of the quiet hours and the end of the community day), so a reminder held by a 45009
 * pause — released at midnight — or pushed late by a retry's back-off is never sent late, inside
 * quiet hours or on the next day. Null (every other item, and the existing ones): no deadline.
 * Nullable without a default, so adding it rewrites nothing.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table push_outbox add column expires_at timestamptz`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table push_outbox drop column expires_at`.execute(db)
}
