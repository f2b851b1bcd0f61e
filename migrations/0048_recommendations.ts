import { type Kysely, sql } from 'kysely'

/**
 * Recommendations (issue #19, part 8):
 * - `item_similarities`: per account, item → similar item with its score (cosine over the members
 *   who redeemed or bought both), the top N per item, rebuilt nightly by `recompute-recommendations`.
 *   An item is a reward (`reward`, rewards.id) or a product (`product`, products.id).
 * - `item_popularity`: per account, each item's distinct members, all time and recent — the
 *   fallback when a member has nothing to be similar to (and the similarity's denominators).
 * - `campaign_recipients.redeemed_at` / `campaign_rollups.redeemed`: a recipient who redeemed a reward
 *   within the campaign's conversion window (the A/B report's redemption uplift), marked
 *   incrementally from redemptions by their creation time, like conversions; found by day by index.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create table item_similarities (
      appid text not null,
      item_kind text not null check (item_kind in ('reward', 'product')),
      item_id bigint not null,
      similar_kind text not null check (similar_kind in ('reward', 'product')),
      similar_id bigint not null,
      score double precision not null check (score > 0),
      together integer not null check (together > 0),
      rank integer not null check (rank > 0),
      computed_at timestamptz not null,
      primary key (appid, item_kind, item_id, similar_kind, similar_id)
    )`.execute(db)
  await sql`create table item_popularity (
      appid text not null,
      item_kind text not null check (item_kind in ('reward', 'product')),
      item_id bigint not null,
      members integer not null check (members > 0),
      recent_members integer not null check (recent_members >= 0),
      computed_at timestamptz not null,
      primary key (appid, item_kind, item_id)
    )`.execute(db)
  await sql`alter table campaign_recipients add column redeemed_at timestamptz`.execute(db)
  await sql`alter table campaign_rollups add column redeemed integer not null default 0`.execute(db)
  await sql`create index redemptions_created_idx on redemptions (created_at)`.execute(db)
  await sql`create index campaign_recipients_unredeemed_idx on campaign_recipients
    (member_id, enqueued_at) where outcome = 'enqueued' and redeemed_at is null`.execute(db)
  await sql`create index campaign_recipients_redeemed_idx on campaign_recipients (redeemed_at)
    where redeemed_at is not null`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index campaign_recipients_redeemed_idx`.execute(db)
  await sql`drop index campaign_recipients_unredeemed_idx`.execute(db)
  await sql`drop index redemptions_created_idx`.execute(db)
  await sql`alter table campaign_rollups drop column redeemed`.execute(db)
  await sql`alter table campaign_recipients drop column redeemed_at`.execute(db)
  await sql`drop table item_popularity`.execute(db)
  await sql`drop table item_similarities`.execute(db)
}
