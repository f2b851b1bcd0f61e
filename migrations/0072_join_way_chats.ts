import { type Kysely, sql } from 'kysely'

/**
 * `wecom_join_ways.chat_ids`: the groups a stored join way leads into (a JSON array, as WeCom
 * reports them), so a join way made for groups no longer configured (WECOM_JOIN_CHATS changed) is
 * pointed at the configured ones in place (update_join_way: its shared QRs keep working) rather
 * than leading into the old groups for ever (src/community/group-joins.ts). Null for the rows
 * stored before: their groups are read once from get_join_way.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table wecom_join_ways add column chat_ids text`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table wecom_join_ways drop column chat_ids`.execute(db)
}
