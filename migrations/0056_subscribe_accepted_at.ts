import { type Kysely, sql } from 'kysely'

/**
 * When the member last accepted an account subscribe-message template
 * (`member_reachability.accepted_at`, channel `subscribe`), so that a refusal closes the template
 * only when it answers an authorisation given before that accept.
 *
 * A 43101 for an account subscribe message (outbox kind `subscribe`) answers the authorisation the
 * item was enqueued with. The member may accept again between that enqueue and WeChat's answer:
 * the template must stay open. An accept no longer deletes the refusal row: it sets `accepted_at`
 * on it (one row per member and template, so the accept and a refusal are serialised by its unique
 * key), and a subscribe row closes its template only while `accepted_at` is null. The outbox's
 * refusal (`recordUnreachable` with the item's `created_at`) clears `accepted_at` only when it is
 * no later than the item's enqueue; a `reject` receipt always does. Existing rows: null (closed, as
 * before).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table member_reachability add column accepted_at timestamptz`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table member_reachability drop column accepted_at`.execute(db)
}
