import { type Kysely, sql } from 'kysely'

/**
 * A member's queued outbox items, in queued order: a dispatcher claims an item only when none of
 * the member's items is being sent and no earlier item of its lane is waiting
 * (src/community/outbox.ts `claim`), one probe of this index per item claimed. Partial: only
 * queued and claimed items (the backlog), so it stays small however many rows are kept sent.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create index push_outbox_member_queue_idx on push_outbox (appid, openid, id)
    where status in ('pending', 'sending')`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index push_outbox_member_queue_idx`.execute(db)
}
