import { type Kysely, sql } from 'kysely'

/**
 * What holds a member's later outbox items (src/community/outbox.ts `claim`):
 *
 * - `retrying`: the item is back from a failed attempt and waits for its retry (set with a
 *   `retry` result, cleared by every other result, when a paused API puts the item off and when
 *   quiet hours defer its lane). Only
 *   such an item, besides a due one and one being sent, holds the member's later items of its lane:
 *   one that failed once and was then put off unsent — to a paused API's midnight, quiet hours'
 *   end, a rate token — no longer does (`attempts > 0` alone did, until midnight). Items waiting
 *   for a retry when this runs are marked, as they held before.
 * - `push_outbox_blocking_idx (appid, openid)` over the items that can hold others without being
 *   due — being sent, or waiting for a retry — so a claim reads them at once instead of probing the
 *   member of every due item it passes. Partial: small (what is in flight or retrying).
 *
 * Deploying: adding the column takes an ACCESS EXCLUSIVE lock on `push_outbox`, held until the
 * migration commits — through the backfill's scan and the index build (not CONCURRENTLY: the
 * migration runs in a transaction) — so the outbox's reads wait too, not only its writes.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table push_outbox add column retrying boolean not null default false`.execute(db)
  // held too: a paused campaign's item waiting for its retry holds again once the campaign resumes
  await sql`update push_outbox set retrying = true
    where status in ('pending', 'held') and attempts > 0`.execute(db)
  await sql`create index push_outbox_blocking_idx on push_outbox (appid, openid)
    where status = 'sending' or (status = 'pending' and retrying)`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index push_outbox_blocking_idx`.execute(db)
  await sql`alter table push_outbox drop column retrying`.execute(db)
}
