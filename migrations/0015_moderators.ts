import { type Kysely, sql } from 'kysely'

/**
 * Moderators per channel identity, for one group (`scope` = chat id) or everywhere (`*`), seeded
 * from configuration; and which linked members have been seen in which group (announcements reach
 * a group's followers through the OA).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('moderators')
    .addColumn('channel', 'text', (col) => col.notNull())
    .addColumn('external_id', 'text', (col) => col.notNull())
    .addColumn('scope', 'text', (col) => col.notNull())
    .addColumn('role', 'text', (col) => col.notNull().check(sql`role in ('moderator', 'admin')`))
    .addColumn('source', 'text', (col) => col.notNull())
    .addPrimaryKeyConstraint('moderators_pkey', ['channel', 'external_id', 'scope'])
    .execute()
  await db.schema
    .createTable('group_members')
    .addColumn('channel', 'text', (col) => col.notNull())
    .addColumn('chat_id', 'text', (col) => col.notNull())
    .addColumn('member_id', 'bigint', (col) => col.notNull().references('members.id'))
    .addColumn('last_seen_at', 'timestamptz', (col) => col.notNull())
    .addPrimaryKeyConstraint('group_members_pkey', ['channel', 'chat_id', 'member_id'])
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('group_members').execute()
  await db.schema.dropTable('moderators').execute()
}
