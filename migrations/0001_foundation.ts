import { type Kysely, sql } from 'kysely'

/** Members and the inbound dedupe table with stored replies. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('members')
    .addColumn('id', 'bigint', (col) => col.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('appid', 'text', (col) => col.notNull())
    .addColumn('openid', 'text', (col) => col.notNull())
    .addColumn('unionid', 'text')
    .addColumn('subscribed', 'boolean', (col) => col.notNull().defaultTo(false))
    .addColumn('subscribed_at', 'timestamptz')
    .addColumn('unsubscribed_at', 'timestamptz')
    .addColumn('subscribe_scene', 'text')
    .addColumn('subscribe_event_key', 'text')
    .addColumn('first_seen_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('last_active_at', 'timestamptz')
    .addColumn('last_inbound_at', 'timestamptz')
    .addUniqueConstraint('members_appid_openid_key', ['appid', 'openid'])
    .execute()
  await db.schema
    .createIndex('members_unionid_idx')
    .on('members')
    .column('unionid')
    .where(sql.ref('unionid'), 'is not', null)
    .execute()

  await db.schema
    .createTable('inbound_events')
    .addColumn('appid', 'text', (col) => col.notNull())
    .addColumn('dedupe_key', 'text', (col) => col.notNull())
    .addColumn('openid', 'text', (col) => col.notNull())
    .addColumn('msg_type', 'text', (col) => col.notNull())
    .addColumn('event', 'text')
    .addColumn('status', 'text', (col) =>
      col
        .notNull()
        .check(sql`status in ('processing', 'replied', 'deferred', 'follow_up', 'failed')`),
    )
    .addColumn('reply', 'text')
    .addColumn('follow_up', 'text')
    .addColumn('error', 'text')
    .addColumn('received_at', 'timestamptz', (col) => col.notNull())
    .addColumn('completed_at', 'timestamptz')
    .addPrimaryKeyConstraint('inbound_events_pkey', ['appid', 'dedupe_key'])
    .execute()
  await db.schema
    .createIndex('inbound_events_received_at_idx')
    .on('inbound_events')
    .column('received_at')
    .execute()
  await db.schema
    .createIndex('inbound_events_follow_up_idx')
    .on('inbound_events')
    .columns(['appid', 'received_at'])
    .where(sql.ref('status'), '=', 'follow_up')
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('inbound_events').execute()
  await db.schema.dropTable('members').execute()
}
