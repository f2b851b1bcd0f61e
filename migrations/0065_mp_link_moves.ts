import { type Kysely, sql } from 'kysely'

/**
 * What a 绑定 moves besides commerce (src/shop/member-moves.ts): a mini-program member's share
 * links go to the follower they link to, and the codes already sent out keep working.
 *
 * - `share_links.address_salt`: the member whose id salted `sharer_address` (the self-click guard,
 *   src/community/shares.ts), when that is not `member_id` — a link the 绑定 moved keeps the hash
 *   made for the member who asked for it. Null: `member_id` (every link before this migration).
 * - `share_link_aliases`: a code whose link was merged into the follower's own link for the same
 *   article, activity or product (both had one): its opens count for that link from then on.
 * - `mp_users (member_id)`: the mini-program users linked to a member — `complete_profile` looks
 *   for one whose own member earned it before the 绑定 (src/community/profile.ts).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table share_links add column address_salt bigint`.execute(db)
  await sql`create table share_link_aliases (
    code text primary key,
    link_id bigint not null references share_links (id),
    created_at timestamptz not null
  )`.execute(db)
  await sql`create index share_link_aliases_link_idx on share_link_aliases (link_id)`.execute(db)
  await sql`create index mp_users_member_idx on mp_users (member_id)`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index mp_users_member_idx`.execute(db)
  await sql`drop table share_link_aliases`.execute(db)
  await sql`alter table share_links drop column address_salt`.execute(db)
}
