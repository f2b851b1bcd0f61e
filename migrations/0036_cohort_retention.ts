import { type Kysely, sql } from 'kysely'

/**
 * Retention cohorts (issue #16 item 3), built nightly by src/analytics/cohorts.ts:
 *
 *   cohort_members    a member's cohort: the community day of their first follow and its
 *                     acquisition source (one row per member; re-follows start no new cohort);
 *                     `days`, bit k = active on cohort day + k (k = 0 … 188, enough for week
 *                     26); `segment`, the member's segment as of the last build (synced from
 *                     segment_transitions), so the segment filter is an index range.
 *   cohort_days       per account and community day: the day's cohort is in cohort_members, and
 *                     (cells_built_at) the cells known on that day are built.
 *   cohort_syncs      per account: segment transitions up to this instant are in cohort_members.
 *   cohort_retention  the cells: per (account, grain, source, cohort start, age) the cohort's
 *                     size and how many of it were active at that age; source '' = all sources.
 *                     Grain `day`: age k = active on the follow day + k. Grain `week`: cohort =
 *                     follows in a Monday-to-Sunday week, age k = active on any of days
 *                     7k … 7k + 6 after the member's own follow day. A cell is written once its
 *                     age is over for every member of the cohort; reads are primary-key ranges,
 *                     d1/d7/d30 a range of the (…, age, cohort_start) index.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create table cohort_members (
    member_id bigint primary key references members (id),
    appid text not null,
    cohort_day date not null,
    source text not null check (source in ('invite', 'qr', 'organic')),
    segment text,
    days bit(189) not null
  )`.execute(db)
  await sql`create index cohort_members_day_idx on cohort_members (appid, cohort_day)`.execute(db)
  await sql`create index cohort_members_segment_idx
    on cohort_members (appid, segment, cohort_day)`.execute(db)
  await sql`create table cohort_days (
    appid text not null,
    day date not null,
    cells_built_at timestamptz,
    primary key (appid, day)
  )`.execute(db)
  await sql`create table cohort_syncs (
    appid text primary key,
    transitions_through timestamptz not null
  )`.execute(db)
  await sql`create table cohort_retention (
    appid text not null,
    grain text not null check (grain in ('day', 'week')),
    source text not null check (source in ('', 'invite', 'qr', 'organic')),
    cohort_start date not null,
    age integer not null check (age >= 0),
    cohort_size integer not null,
    retained integer not null,
    primary key (appid, grain, source, cohort_start, age)
  )`.execute(db)
  await sql`create index cohort_retention_age_idx
    on cohort_retention (appid, grain, source, age, cohort_start)`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table cohort_retention, cohort_syncs, cohort_days, cohort_members`.execute(db)
}
