import { type Kysely, sql } from 'kysely'

/**
 * The campaign report's reach (distinct members, src/community/campaign-reach.ts) as last counted,
 * per campaign: counting it reads every kept recipient (≈ 2.5 s for 1,000,000 on PostgreSQL), so
 * a large campaign's report shows these figures with the time they were counted (`computed_at`)
 * and recounts them in the background when they are older than a minute. `refreshing_since`: the
 * recount under way, claimed by one conditional upsert of this row (the primary key: one per
 * campaign, however many instances), so two never run at once for the same campaign; a claim
 * older than the lease is taken over (the process counting died).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create table campaign_reach (
    campaign_id bigint primary key references campaigns (id) on delete cascade,
    reach text,
    computed_at timestamptz,
    refreshing_since timestamptz,
    check ((reach is null) = (computed_at is null))
  )`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table campaign_reach`.execute(db)
}
