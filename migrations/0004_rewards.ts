import { type Kysely, sql } from 'kysely'

/** The reward catalog and redemptions. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('rewards')
    .addColumn('id', 'bigint', (col) => col.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('appid', 'text', (col) => col.notNull())
    .addColumn('code', 'integer', (col) => col.notNull().check(sql`code > 0`))
    .addColumn('name', 'text', (col) => col.notNull())
    .addColumn('cost', 'integer', (col) => col.notNull().check(sql`cost > 0`))
    .addColumn('stock', 'integer', (col) => col.check(sql`stock >= 0`))
    .addColumn('per_member_limit', 'integer', (col) => col.check(sql`per_member_limit > 0`))
    .addColumn('enabled', 'boolean', (col) => col.notNull().defaultTo(true))
    .addColumn('created_at', 'timestamptz', (col) => col.notNull())
    .addUniqueConstraint('rewards_appid_code_key', ['appid', 'code'])
    .execute()
  await db.schema
    .createTable('redemptions')
    .addColumn('id', 'bigint', (col) => col.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('appid', 'text', (col) => col.notNull())
    .addColumn('member_id', 'bigint', (col) => col.notNull().references('members.id'))
    .addColumn('reward_id', 'bigint', (col) => col.notNull().references('rewards.id'))
    .addColumn('cost', 'integer', (col) => col.notNull())
    .addColumn('code', 'text', (col) => col.notNull().unique())
    .addColumn('status', 'text', (col) =>
      col.notNull().check(sql`status in ('issued', 'cancelled')`),
    )
    .addColumn('created_at', 'timestamptz', (col) => col.notNull())
    .addColumn('cancelled_at', 'timestamptz')
    .execute()
  await db.schema
    .createIndex('redemptions_member_reward_idx')
    .on('redemptions')
    .columns(['member_id', 'reward_id'])
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('redemptions').execute()
  await db.schema.dropTable('rewards').execute()
}
