import { type Kysely, sql } from 'kysely'

/**
 * When the mini-program authorisation of a check-in reminder was last granted
 * (`checkin_reminders.mp_granted_at`), so that a refusal drops only the credits it answers.
 *
 * A 43101/40003 for a mini-program subscribe message answers the authorisation consumed when the
 * item was enqueued. The member may accept again (a new one-time authorisation) between that
 * enqueue and WeChat's answer: that credit must survive. The refusal
 * (`recordMiniProgramRefusal`, src/community/reachability.ts) therefore zeroes `mp_credits` only
 * when the last grant is no later than the refused item's `created_at`. Null: granted before this
 * migration (counted as older than any item).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table checkin_reminders add column mp_granted_at timestamptz`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table checkin_reminders drop column mp_granted_at`.execute(db)
}
