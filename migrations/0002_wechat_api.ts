import { type Kysely, sql } from 'kysely'

/** Shared access tokens, per-member reachability, the push outbox and its rate buckets. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('wechat_tokens')
    .addColumn('appid', 'text', (col) => col.primaryKey())
    .addColumn('access_token', 'varchar(1024)', (col) => col.notNull())
    .addColumn('expires_at', 'timestamptz', (col) => col.notNull())
    .addColumn('updated_at', 'timestamptz', (col) => col.notNull())
    .execute()

  await db.schema
    .createTable('member_reachability')
    .addColumn('appid', 'text', (col) => col.notNull())
    .addColumn('openid', 'text', (col) => col.notNull())
    .addColumn('channel', 'text', (col) =>
      col.notNull().check(sql`channel in ('template', 'custom', 'subscribe', 'any')`),
    )
    .addColumn('scope', 'text', (col) => col.notNull().defaultTo(''))
    .addColumn('errcode', 'integer', (col) => col.notNull())
    .addColumn('recorded_at', 'timestamptz', (col) => col.notNull())
    .addPrimaryKeyConstraint('member_reachability_pkey', ['appid', 'openid', 'channel', 'scope'])
    .execute()

  await db.schema
    .createTable('push_outbox')
    .addColumn('id', 'bigint', (col) => col.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('appid', 'text', (col) => col.notNull())
    .addColumn('source', 'text', (col) => col.notNull())
    .addColumn('openid', 'text', (col) => col.notNull())
    .addColumn('kind', 'text', (col) =>
      col.notNull().check(sql`kind in ('template', 'custom', 'subscribe')`),
    )
    .addColumn('payload', 'text', (col) => col.notNull())
    .addColumn('status', 'text', (col) =>
      col
        .notNull()
        .defaultTo('pending')
        .check(sql`status in ('pending', 'sending', 'sent', 'failed', 'skipped')`),
    )
    .addColumn('attempts', 'integer', (col) => col.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'timestamptz', (col) => col.notNull())
    .addColumn('lease_until', 'timestamptz')
    .addColumn('errcode', 'integer')
    .addColumn('errmsg', 'text')
    .addColumn('wechat_msgid', 'text')
    .addColumn('delivery', 'text')
    .addColumn('created_at', 'timestamptz', (col) => col.notNull())
    .addColumn('sent_at', 'timestamptz')
    .addColumn('delivered_at', 'timestamptz')
    .addUniqueConstraint('push_outbox_source_member_key', ['appid', 'source', 'openid'])
    .execute()
  await db.schema
    .createIndex('push_outbox_due_idx')
    .on('push_outbox')
    .columns(['appid', 'next_attempt_at'])
    .where(sql.ref('status'), 'in', ['pending', 'sending'])
    .execute()
  await db.schema
    .createIndex('push_outbox_msgid_idx')
    .on('push_outbox')
    .columns(['appid', 'wechat_msgid'])
    .where(sql.ref('wechat_msgid'), 'is not', null)
    .execute()

  await db.schema
    .createTable('rate_buckets')
    .addColumn('appid', 'text', (col) => col.primaryKey())
    .addColumn('tokens', 'double precision', (col) => col.notNull())
    .addColumn('updated_at', 'timestamptz', (col) => col.notNull())
    .addColumn('paused_until', 'timestamptz')
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of ['rate_buckets', 'push_outbox', 'member_reachability', 'wechat_tokens']) {
    await db.schema.dropTable(t).execute()
  }
}
