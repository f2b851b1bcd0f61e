import { type Kysely, sql } from 'kysely'

/**
 * What holds a member's later outbox items (src/community/outbox.ts `claim`):
 *
 * - `retrying`: the item is back from a failed attempt and waits for its retry (set with a
 *   `retry` result, cleared by every other result and when a paused API puts the item off). Only
 *   such an item, besides a due one and one being sent, holds the member's later items of its lane:
 *   one that failed once and was then put off unsent — to a paused API's midnight, quiet hours'
 *   end, a rate token — no longer does (`attempts > 0` alone did, until midnight). Items waiting
 *   for a retry when this runs are marked, as they held before.
 * - `push_outbox_blocking_idx (appid, openid)` over the items that can hold others without being
 *   due — being sent, or waiting for a retry — so a claim reads them at once instead of probing the
 *   member of every due item it passes. Partial: small (what is in flight or retrying). Built
 *   without CONCURRENTLY (the migration runs in a transaction): it blocks the outbox's writes while
 *   it reads the table, as 0071 and 0085.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table push_outbox add column retrying boolean not null default false`.execute(db)
  await sql`update push_outbox set retrying = true
    where status = 'pending' and attempts > 0`.execute(db)
  await sql`create index push_outbox_blocking_idx on push_outbox (appid, openid)
    where status = 'sending' or (status = 'pending' and retrying)`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index push_outbox_blocking_idx`.execute(db)
  await sql`alter table push_outbox drop column retrying`.execute(db)
}
