import { type Kysely, sql } from 'kysely'

/**
 * The two transfer alert rules read `transfers` per account every minute
 * (src/analytics/alert-checks.ts): `transfers_failed` the bills that ended `fail` in its window,
 * `transfers_stuck` the open ones. Without these, each evaluation read the whole table once per
 * account. Partial: failed bills by account and when they failed, open bills by account — both a
 * small share of the table.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create index transfers_failed_idx on transfers (appid, settled_at)
    where state = 'fail'`.execute(db)
  await sql`create index transfers_open_appid_idx on transfers (appid, created_at)
    where state in ('pending', 'accepted', 'processing')`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index transfers_open_appid_idx`.execute(db)
  await sql`drop index transfers_failed_idx`.execute(db)
}
