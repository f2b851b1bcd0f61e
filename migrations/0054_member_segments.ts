import { type Kysely, sql } from 'kysely'

/**
 * Lifecycle segments move out of `members` into a narrow table of their own (issue #20, target 5:
 * the first recompute over 1,000,000 members in ≤ 5 s).
 *
 * Writing a segment into `members` rewrote the whole wide row and, the page being full and the
 * segment indexed, added an entry to each of its six indexes: the first recompute (every member
 * changes) cost 2.2–3.8× a plain `update members` of every row (bench/README.md). A `member_segments` row is 4 columns
 * with one index (its key), so the first recompute inserts 1,000,000 small rows instead.
 *
 * - `member_segments`: one row per member that has a segment (none until the first recompute),
 *   `since` = when the member entered it. Written only by the recompute (src/community/segments.ts).
 *   No index on (appid, segment): readers probe it by member (campaign audiences, journeys) or
 *   count a whole account (a scan of narrow rows); each index is one more entry per member moved.
 * - No foreign key to `members` here nor (dropped) on `segment_transitions.member_id`: the check
 *   runs once per inserted row (a trigger and an index probe each, 1,000,000 on the first
 *   recompute: a third of its time) and members are never deleted. Both tables are written only by
 *   the recompute, from ids it just read from `members`.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create table member_segments (
    member_id bigint primary key,
    appid text not null,
    segment text not null
      check (segment in ('new', 'active', 'loyal', 'at_risk', 'dormant', 'churned')),
    since timestamptz not null
  )`.execute(db)
  await sql`insert into member_segments (member_id, appid, segment, since)
    select id, appid, segment, coalesce(segment_since, now()) from members
    where segment is not null`.execute(db)
  await sql`alter table members drop column segment, drop column segment_since`.execute(db)
  await sql`alter table segment_transitions drop constraint segment_transitions_member_id_fkey`.execute(
    db,
  )
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table segment_transitions add constraint segment_transitions_member_id_fkey
    foreign key (member_id) references members (id)`.execute(db)
  await sql`alter table members add column segment text
      check (segment in ('new', 'active', 'loyal', 'at_risk', 'dormant', 'churned')),
    add column segment_since timestamptz`.execute(db)
  await sql`update members m set segment = s.segment, segment_since = s.since
    from member_segments s where s.member_id = m.id`.execute(db)
  await sql`create index members_appid_segment_idx on members (appid, segment)`.execute(db)
  await sql`drop table member_segments`.execute(db)
}
