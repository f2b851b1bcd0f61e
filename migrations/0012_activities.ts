import { type Kysely, sql } from 'kysely'

/**
 * Community activities as data: each with a cron (reminders), a cadence (its sign-ups are per day,
 * week or month), points for taking part, an optional capacity with a waitlist, and whether a
 * verified purchase is required.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('activities')
    .addColumn('id', 'bigint', (col) => col.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('appid', 'text', (col) => col.notNull())
    .addColumn('key', 'text', (col) => col.notNull())
    .addColumn('name', 'text', (col) => col.notNull())
    .addColumn('description', 'text', (col) => col.notNull())
    .addColumn('cron', 'text', (col) => col.notNull())
    .addColumn('cadence', 'text', (col) =>
      col.notNull().check(sql`cadence in ('daily', 'weekly', 'monthly')`),
    )
    .addColumn('points', 'integer', (col) => col.notNull().defaultTo(0).check(sql`points >= 0`))
    .addColumn('signup', 'boolean', (col) => col.notNull().defaultTo(true))
    .addColumn('capacity', 'integer', (col) => col.check(sql`capacity > 0`))
    .addColumn('requires_purchase', 'boolean', (col) => col.notNull().defaultTo(false))
    .addColumn('status', 'text', (col) => col.notNull().check(sql`status in ('open', 'closed')`))
    .addColumn('created_at', 'timestamptz', (col) => col.notNull())
    .addUniqueConstraint('activities_appid_key', ['appid', 'key'])
    .execute()
  await db.schema
    .createTable('activity_signups')
    .addColumn('activity_id', 'bigint', (col) => col.notNull().references('activities.id'))
    // The occurrence: its first community day (the day, the week's Monday, the month's 1st).
    .addColumn('period', 'date', (col) => col.notNull())
    .addColumn('member_id', 'bigint', (col) => col.notNull().references('members.id'))
    .addColumn('status', 'text', (col) =>
      col.notNull().check(sql`status in ('confirmed', 'waitlisted', 'cancelled')`),
    )
    .addColumn('created_at', 'timestamptz', (col) => col.notNull())
    .addColumn('updated_at', 'timestamptz', (col) => col.notNull())
    .addPrimaryKeyConstraint('activity_signups_pkey', ['activity_id', 'period', 'member_id'])
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('activity_signups').execute()
  await db.schema.dropTable('activities').execute()
}
