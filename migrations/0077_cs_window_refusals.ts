import { type Kysely, sql } from 'kysely'

/**
 * WeChat counts each customer-service window apart (a member's message: 48 h, 5 messages; a
 * follow, scan or click: 1 minute, 3 — src/community/cs-window.ts), so a 45015 / 45047 refusal
 * closes the window the send was counted in, not the other kind's.
 *
 * - `member_reachability.window_opened_at`: for channel `custom`, the start of the refused window;
 *   its kind is the row's `scope` (`message` / `event`), one row per kind. Existing rows closed
 *   every window opened before they were recorded, and the outbox only then used message windows:
 *   they become message refusals of the windows opened until `recorded_at` (the same answer for
 *   message windows; an event's minute is no longer closed by them).
 * - `cs_window_sends.kind`: what opened the counted window, so a send counted in a newer window
 *   than the one tried (the member acted meanwhile) knows which kind it refused. Existing rows: an
 *   event's by their quota of 3, else a message's.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table member_reachability add column window_opened_at timestamptz`.execute(db)
  await sql`update member_reachability set scope = 'message', window_opened_at = recorded_at
    where channel = 'custom'`.execute(db)
  await sql`alter table cs_window_sends add column kind text not null default 'message'
    check (kind in ('message', 'event'))`.execute(db)
  await sql`update cs_window_sends set kind = 'event' where quota = 3`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table cs_window_sends drop column kind`.execute(db)
  await sql`delete from member_reachability where channel = 'custom' and scope = 'event'`.execute(
    db,
  )
  await sql`update member_reachability set scope = '' where channel = 'custom'`.execute(db)
  await sql`alter table member_reachability drop column window_opened_at`.execute(db)
}
