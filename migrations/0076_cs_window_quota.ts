import { type Kysely, sql } from 'kysely'

/**
 * A customer-service window is its start, length and quota: a member's message opens 48 h with 5
 * messages, a follow, a QR scan or a menu click 1 minute with 3 (src/community/cs-window.ts).
 *
 * - `cs_window_sends.quota`: the count of a member's current window keeps that window's quota, so a
 *   count kept for an event's minute is never read against a message window's 5. Existing rows
 *   are message windows: 5.
 * - The event window's start is the member's last such push, read from its dedupe claim
 *   (`inbound_events`) when a reply is sent: a partial index over those events only. Its columns
 *   never change after the insert, so the claim's later updates stay HOT (migrations/0057).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table cs_window_sends add column quota smallint not null default 5`.execute(db)
  await sql`create index inbound_events_window_idx on inbound_events (appid, openid, received_at)
    where event in ('subscribe', 'SCAN', 'CLICK', 'scancode_push', 'scancode_waitmsg')`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index inbound_events_window_idx`.execute(db)
  await sql`alter table cs_window_sends drop column quota`.execute(db)
}
