import { type Kysely, sql } from 'kysely'

/**
 * Badges (徽章, issue #19 part 5): rules as data and the badges members hold.
 *
 * `badge_rules`: appid '*' holds the defaults, an account's row with the same key overrides one
 * (another name, another predicate, or `enabled = false` to switch a default off). `predicate` is
 * a small JSON language over counters (src/community/badges.ts validates it): `{ counter, atLeast }`,
 * `{ all: [...] }`, `{ any: [...] }`.
 *
 * `member_badges`: one row per member and badge key — the primary key is what makes an award
 * happen once, whichever instance or transaction gets there first.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('badge_rules')
    .addColumn('appid', 'text', (col) => col.notNull())
    .addColumn('key', 'text', (col) => col.notNull())
    .addColumn('name', 'text', (col) => col.notNull())
    .addColumn('description', 'text', (col) => col.notNull().defaultTo(''))
    .addColumn('predicate', 'jsonb', (col) => col.notNull())
    .addColumn('enabled', 'boolean', (col) => col.notNull().defaultTo(true))
    .addColumn('position', 'integer', (col) => col.notNull().defaultTo(100))
    .addColumn('updated_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('badge_rules_pkey', ['appid', 'key'])
    .execute()
  const defaults: [string, string, string, string, number, number][] = [
    ['streak_7', '坚持一周', '连续签到 7 天', 'streak', 7, 10],
    ['streak_30', '月度坚持', '连续签到 30 天', 'streak', 30, 20],
    ['checkins_100', '百日签到', '累计签到 100 天', 'checkins', 100, 30],
    ['first_invite', '初次邀请', '成功邀请 1 位好友', 'invites', 1, 40],
    ['invites_10', '邀请达人', '成功邀请 10 位好友', 'invites', 10, 50],
    ['first_purchase', '首次购买', '完成第一笔订单', 'purchases', 1, 60],
    ['activity_champion', '活动达人', '获得 5 次活动奖励', 'activity_awards', 5, 70],
  ]
  await sql`insert into badge_rules (appid, key, name, description, predicate, position)
    values ${sql.join(
      defaults.map(
        ([key, name, description, counter, atLeast, position]) =>
          sql`('*', ${key}, ${name}, ${description},
            ${JSON.stringify({ counter, atLeast })}::jsonb, ${position})`,
      ),
    )}`.execute(db)

  await db.schema
    .createTable('member_badges')
    .addColumn('member_id', 'bigint', (col) => col.notNull().references('members.id'))
    .addColumn('badge_key', 'text', (col) => col.notNull())
    .addColumn('appid', 'text', (col) => col.notNull())
    .addColumn('awarded_at', 'timestamptz', (col) => col.notNull())
    .addPrimaryKeyConstraint('member_badges_pkey', ['member_id', 'badge_key'])
    .execute()
  // How many members hold each badge (the console's rule list).
  await sql`create index member_badges_appid_key_idx on member_badges (appid, badge_key)`.execute(
    db,
  )
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('member_badges').execute()
  await db.schema.dropTable('badge_rules').execute()
}
