import type { Kysely } from 'kysely'

/**
 * Identities on other channels (a WeCom userid, a bridge contact …) linked to members, and the
 * short-lived binding codes that link them: a follower asks the OA for a code (绑定) and sends it
 * from the other channel.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('member_identities')
    .addColumn('channel', 'text', (col) => col.notNull())
    .addColumn('external_id', 'text', (col) => col.notNull())
    .addColumn('member_id', 'bigint', (col) => col.notNull().references('members.id'))
    .addColumn('linked_at', 'timestamptz', (col) => col.notNull())
    .addPrimaryKeyConstraint('member_identities_pkey', ['channel', 'external_id'])
    .execute()
  await db.schema
    .createTable('binding_codes')
    .addColumn('code', 'text', (col) => col.primaryKey())
    .addColumn('member_id', 'bigint', (col) => col.notNull().references('members.id'))
    .addColumn('expires_at', 'timestamptz', (col) => col.notNull())
    .addColumn('used_at', 'timestamptz')
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('binding_codes').execute()
  await db.schema.dropTable('member_identities').execute()
}
