import type { Kysely } from 'kysely'

/** Each inviter's WeCom group join way (QR), reused for every share: the quota is per corp. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('wecom_join_ways')
    .addColumn('member_id', 'bigint', (col) => col.primaryKey().references('members.id'))
    .addColumn('config_id', 'text', (col) => col.notNull())
    .addColumn('qr_code', 'text', (col) => col.notNull())
    .addColumn('state', 'text', (col) => col.notNull())
    .addColumn('created_at', 'timestamptz', (col) => col.notNull())
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('wecom_join_ways').execute()
}
