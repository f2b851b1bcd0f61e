import { type Kysely, sql } from 'kysely'

/**
 * `wecom_join_ways.chat_ids`: the groups a stored join way leads into (a JSON array: what this app
 * last sent WeCom), so a join way made for groups no longer configured (WECOM_JOIN_CHATS changed) is
 * pointed at the configured ones in place (update_join_way: its shared QRs keep working) rather
 * than leading into the old groups for ever (src/community/group-joins.ts). Null for the rows
 * stored before: their groups are read once from get_join_way.
 *
 * `sync_failed_at`: when moving it (or reading its groups) last failed; null once it succeeded. The
 * nightly sweep takes the join ways that never failed first and the failed ones last, oldest failure
 * first, so a few join ways WeCom refuses for good cannot stop it before the rest. The partial index
 * keeps that second pass (the few failed rows, in that order) off the whole table.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table wecom_join_ways add column chat_ids text`.execute(db)
  await sql`alter table wecom_join_ways add column sync_failed_at timestamptz`.execute(db)
  await sql`create index wecom_join_ways_sync_failed_idx on wecom_join_ways (sync_failed_at, member_id)
    where sync_failed_at is not null`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index wecom_join_ways_sync_failed_idx`.execute(db)
  await sql`alter table wecom_join_ways drop column sync_failed_at`.execute(db)
  await sql`alter table wecom_join_ways drop column chat_ids`.execute(db)
}
