import { type Kysely, sql } from 'kysely'

/**
 * Every lifecycle segment change, written by the nightly recompute in the same statement that moves
 * the member (src/community/segments.ts): from (null on a member's first segment), to, and when.
 * Indexed for analytics by account and time and by member and time.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const segment = (column: string) =>
    sql.raw(`${column} in ('new', 'active', 'loyal', 'at_risk', 'dormant', 'churned')`)
  await db.schema
    .createTable('segment_transitions')
    .addColumn('id', 'bigint', (col) => col.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('appid', 'text', (col) => col.notNull())
    .addColumn('member_id', 'bigint', (col) => col.notNull().references('members.id'))
    .addColumn('from_segment', 'text', (col) => col.check(segment('from_segment')))
    .addColumn('to_segment', 'text', (col) => col.notNull().check(segment('to_segment')))
    .addColumn('at', 'timestamptz', (col) => col.notNull())
    .addCheckConstraint(
      'segment_transitions_changes',
      sql`from_segment is distinct from to_segment`,
    )
    .execute()
  await db.schema
    .createIndex('segment_transitions_appid_at_idx')
    .on('segment_transitions')
    .columns(['appid', 'at'])
    .execute()
  await db.schema
    .createIndex('segment_transitions_member_at_idx')
    .on('segment_transitions')
    .columns(['member_id', 'at'])
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('segment_transitions').execute()
}
