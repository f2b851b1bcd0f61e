import { type Kysely, sql } from 'kysely'

/**
 * `redemptions.stock_taken`: whether the redemption took a unit of its reward's stock — set when
 * `redeem` takes one (only for a reward with limited stock); a cancellation gives a unit back only
 * then (src/community/rewards.ts `returnRedemption`). A cancellation used to give one back whenever
 * the reward's stock was limited *now*: a redemption of an unlimited reward, cancelled after an
 * operator set a stock, added a unit it never took (as orders did: migrations/0068).
 *
 * Backfill: issued redemptions of a reward whose stock is limited now, as the old code assumed
 * (only an issued one can still be cancelled; a cancelled one gave its unit back already).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table redemptions add column stock_taken boolean not null default false`.execute(
    db,
  )
  await sql`
    update redemptions d set stock_taken = true
    from rewards r
    where r.id = d.reward_id and r.stock is not null and d.status = 'issued'`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table redemptions drop column stock_taken`.execute(db)
}
