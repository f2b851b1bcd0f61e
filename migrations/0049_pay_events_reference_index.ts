import { type Kysely, sql } from 'kysely'

/**
 * Pay notifications by the order they name (issue #17): the console's order page lists an
 * order's notifications, newest first — without an index, a scan of every notification the
 * merchant account ever received.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create index pay_events_reference_idx on pay_events (reference, received_at desc)`.execute(
    db,
  )
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index pay_events_reference_idx`.execute(db)
}
