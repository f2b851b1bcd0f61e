import { type Kysely, sql } from 'kysely'

/** Points: cached balances on members, rules as data, the append-only ledger, check-ins. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('members')
    .addColumn('points_balance', 'integer', (col) =>
      col.notNull().defaultTo(0).check(sql`points_balance >= 0`),
    )
    .addColumn('points_lifetime', 'integer', (col) => col.notNull().defaultTo(0))
    .addColumn('level', 'text', (col) => col.notNull().defaultTo('bronze'))
    .execute()

  // appid '*' holds the defaults; a row for an account overrides its rule.
  await db.schema
    .createTable('point_rules')
    .addColumn('appid', 'text', (col) => col.notNull())
    .addColumn('rule', 'text', (col) => col.notNull())
    .addColumn('points', 'integer', (col) => col.notNull())
    .addColumn('cap_count', 'integer')
    .addColumn('cap_period', 'text', (col) => col.check(sql`cap_period in ('day', 'week', 'ever')`))
    .addColumn('enabled', 'boolean', (col) => col.notNull().defaultTo(true))
    .addPrimaryKeyConstraint('point_rules_pkey', ['appid', 'rule'])
    .execute()
  const defaults: [string, number, number | null, string | null][] = [
    ['daily_login', 10, 1, 'day'],
    ['checkin', 5, 1, 'day'],
    ['first_purchase', 100, 1, 'ever'],
    ['product_review', 20, 3, 'day'],
    ['friend_invite', 50, 10, 'ever'],
    ['content_share', 5, 5, 'day'],
    ['complete_profile', 30, 1, 'ever'],
  ]
  await sql`insert into point_rules (appid, rule, points, cap_count, cap_period) values ${sql.join(
    defaults.map(
      ([rule, points, count, period]) => sql`('*', ${rule}, ${points}, ${count}, ${period})`,
    ),
  )}`.execute(db)

  await db.schema
    .createTable('points_ledger')
    .addColumn('id', 'bigint', (col) => col.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('appid', 'text', (col) => col.notNull())
    .addColumn('member_id', 'bigint', (col) => col.notNull().references('members.id'))
    .addColumn('delta', 'integer', (col) => col.notNull().check(sql`delta <> 0`))
    .addColumn('rule', 'text', (col) => col.notNull())
    .addColumn('reference', 'text')
    .addColumn('idempotency_key', 'text', (col) => col.notNull())
    .addColumn('balance_after', 'integer', (col) => col.notNull().check(sql`balance_after >= 0`))
    // What this entry added to lifetime earnings (0 for spends and refunds).
    .addColumn('earned', 'integer', (col) => col.notNull().defaultTo(0).check(sql`earned >= 0`))
    .addColumn('day', 'date', (col) => col.notNull())
    .addColumn('created_at', 'timestamptz', (col) => col.notNull())
    .addColumn('expires_at', 'timestamptz')
    .addUniqueConstraint('points_ledger_idempotency_key', ['appid', 'idempotency_key'])
    .execute()
  await db.schema
    .createIndex('points_ledger_member_rule_day_idx')
    .on('points_ledger')
    .columns(['member_id', 'rule', 'day'])
    .execute()

  await db.schema
    .createTable('checkins')
    .addColumn('member_id', 'bigint', (col) => col.notNull().references('members.id'))
    .addColumn('day', 'date', (col) => col.notNull())
    .addColumn('appid', 'text', (col) => col.notNull())
    .addColumn('streak', 'integer', (col) => col.notNull())
    .addColumn('points', 'integer', (col) => col.notNull())
    .addColumn('created_at', 'timestamptz', (col) => col.notNull())
    .addPrimaryKeyConstraint('checkins_pkey', ['member_id', 'day'])
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('checkins').execute()
  await db.schema.dropTable('points_ledger').execute()
  await db.schema.dropTable('point_rules').execute()
  await db.schema
    .alterTable('members')
    .dropColumn('points_balance')
    .dropColumn('points_lifetime')
    .dropColumn('level')
    .execute()
}
