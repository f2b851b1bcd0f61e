import { type Kysely, sql } from 'kysely'

/**
 * Check-ins by account and community day (issue #16): the nightly build marks the day's check-ins
 * in member_days and counts them by streak, and the overview reads today's live; the primary key
 * (member_id, day) could not serve either, so each was a full scan of every check-in ever made
 * (≈ 0.3 s at 3.5M rows in bench:analytics, growing by the day).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create index checkins_appid_day_idx on checkins (appid, day)`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index checkins_appid_day_idx`.execute(db)
}
