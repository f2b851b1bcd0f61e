import { type Kysely, sql } from 'kysely'

/**
 * `checkin_reminders.cancelled`: the member turned check-in reminders off themself (`取消提醒`, or
 * `DELETE /api/mp/reminders`). The community's 09:00 check-in reminder (an activity's,
 * src/community/activities.ts) skips members whose own reminder is on and members who chose off —
 * not every member with a row: a row that is off is also made without that choice (an accepted
 * reminder template whose time was refused for quiet hours keeps the send for later, the reminder
 * left off), and such a member still gets the 09:00 one. `提醒` or an accept that turns the
 * reminder on clears it; a reminder that is on is never `cancelled` (checked).
 *
 * Backfill: a row that is off now cannot be told apart (取消提醒, or an accept refused for quiet
 * hours): it counts as the member's choice, so nobody who may have opted out is messaged.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table checkin_reminders
    add column cancelled boolean not null default false`.execute(db)
  await sql`update checkin_reminders set cancelled = true where not enabled`.execute(db)
  await sql`alter table checkin_reminders add constraint checkin_reminders_cancelled_off
    check (not (enabled and cancelled))`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table checkin_reminders drop column cancelled`.execute(db)
}
