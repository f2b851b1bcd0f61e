import { type Kysely, sql } from 'kysely'

/**
 * The earn rules that had no trigger (issue #19, part 6): product reviews (`product_review`),
 * per-member share links and the distinct people who opened them (`content_share`), and the profile
 * fields `complete_profile` asks for (birthday month and city; the nickname is `display_name`).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table members
    add column birth_month smallint check (birth_month between 1 and 12),
    add column city text check (char_length(city) between 1 and 20)`.execute(db)

  // One review per order (an order is one product); hiding it takes its points back.
  await sql`create table product_reviews (
    id bigint generated always as identity primary key,
    appid text not null,
    member_id bigint not null references members (id),
    order_id bigint not null references orders (id),
    product_id bigint not null references products (id),
    rating smallint not null check (rating between 1 and 5),
    body text not null,
    status text not null default 'visible' check (status in ('visible', 'hidden')),
    points integer not null default 0 check (points >= 0),
    reversed_points integer not null default 0 check (reversed_points >= 0),
    created_at timestamptz not null,
    hidden_at timestamptz,
    constraint product_reviews_order_key unique (order_id)
  )`.execute(db)
  await sql`create index product_reviews_product_idx on product_reviews (product_id, status, id)`.execute(
    db,
  )
  await sql`create index product_reviews_appid_idx on product_reviews (appid, id)`.execute(db)

  // A member's link for one article, activity or product: asking again gives the same link.
  await sql`create table share_links (
    id bigint generated always as identity primary key,
    appid text not null,
    code text not null,
    member_id bigint not null references members (id),
    kind text not null check (kind in ('article', 'activity', 'product')),
    ref text not null,
    target_url text,
    sharer_address text,
    clicks integer not null default 0,
    created_at timestamptz not null,
    constraint share_links_code_key unique (code),
    constraint share_links_member_target_key unique (member_id, kind, ref)
  )`.execute(db)
  // Each distinct opener of a link once: the key decides under concurrency.
  await sql`create table share_opens (
    link_id bigint not null references share_links (id),
    opener text not null,
    outcome text not null check (outcome in ('awarded', 'capped')),
    created_at timestamptz not null,
    primary key (link_id, opener)
  )`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table share_opens`.execute(db)
  await sql`drop table share_links`.execute(db)
  await sql`drop table product_reviews`.execute(db)
  await sql`alter table members drop column birth_month, drop column city`.execute(db)
}
