import { type Kysely, sql } from 'kysely'

/**
 * The replay cache: one row per (door, key, timestamp, nonce) a signed request was accepted with,
 * and the digest of its body — the same request again is a retry, another body with the same
 * (timestamp, nonce) a replay (src/community/replay-claims.ts). Rows are pruned once their
 * timestamp is outside the freshness window. The audit log also keeps the client's address
 * (refused operator calls).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('replay_claims')
    .addColumn('door', 'text', (col) => col.notNull())
    .addColumn('key', 'text', (col) => col.notNull())
    .addColumn('ts', 'bigint', (col) => col.notNull())
    .addColumn('nonce', 'text', (col) => col.notNull())
    .addColumn('body_digest', 'text', (col) => col.notNull())
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('replay_claims_pkey', ['door', 'key', 'ts', 'nonce'])
    .execute()
  await db.schema.createIndex('replay_claims_ts_idx').on('replay_claims').column('ts').execute()
  await db.schema.alterTable('audit_log').addColumn('client_address', 'text').execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('audit_log').dropColumn('client_address').execute()
  await db.schema.dropTable('replay_claims').execute()
}
