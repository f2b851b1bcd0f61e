import { type Kysely, sql } from 'kysely'

/**
 * Lifecycle segments on members (recomputed nightly in one set-based UPDATE) with the time each
 * member entered its segment, and the purchase figures they are computed from (kept by the shop in
 * the payment's transaction).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('members')
    .addColumn('purchase_count', 'integer', (col) => col.notNull().defaultTo(0))
    .addColumn('last_purchased_at', 'timestamptz')
    .addColumn('segment', 'text', (col) =>
      col.check(sql`segment in ('new', 'active', 'loyal', 'at_risk', 'dormant', 'churned')`),
    )
    .addColumn('segment_since', 'timestamptz')
    .execute()
  await db.schema
    .createIndex('members_appid_segment_idx')
    .on('members')
    .columns(['appid', 'segment'])
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('members_appid_segment_idx').execute()
  await db.schema
    .alterTable('members')
    .dropColumn('segment_since')
    .dropColumn('segment')
    .dropColumn('last_purchased_at')
    .dropColumn('purchase_count')
    .execute()
}
