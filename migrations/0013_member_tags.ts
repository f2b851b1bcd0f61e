import type { Kysely } from 'kysely'

/** The WeChat user tags members carry, as far as this server set them (campaign audiences). */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('member_tags')
    .addColumn('member_id', 'bigint', (col) => col.notNull().references('members.id'))
    .addColumn('tagid', 'integer', (col) => col.notNull())
    .addColumn('tagged_at', 'timestamptz', (col) => col.notNull())
    .addPrimaryKeyConstraint('member_tags_pkey', ['member_id', 'tagid'])
    .execute()
  await db.schema.createIndex('member_tags_tagid_idx').on('member_tags').column('tagid').execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('member_tags').execute()
}
