import { type Kysely, sql } from 'kysely'

/**
 * Retention cohorts (issue #16 item 3), built nightly by src/analytics/cohorts.ts:
 *
 *   cohort_members    a member's cohort: the community day of their first follow and its
 *                     acquisition source (one row per member; re-follows start no new cohort).
 *   cohort_days       bookkeeping per account and community day: the day's cohort is in
 *                     cohort_members, and (cells_built_at) the cells known on that day are built.
 *   cohort_retention  the cells: per (account, grain, cohort start, source, age) the cohort's size
 *                     and how many of it were active at that age. Grain `day`: age k = active on
 *                     the follow day + k. Grain `week`: cohort = follows in a Monday-to-Sunday
 *                     week, age k = active on any of days 7k … 7k + 6 after the member's own
 *                     follow day. A cell is written once its age is over for every member of the
 *                     cohort; the read path sums a primary-key range.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create table cohort_members (
    member_id bigint primary key references members (id),
    appid text not null,
    cohort_day date not null,
    source text not null check (source in ('invite', 'qr', 'organic'))
  )`.execute(db)
  await sql`create index cohort_members_day_idx
    on cohort_members (appid, cohort_day, source, member_id)`.execute(db)
  await sql`create table cohort_days (
    appid text not null,
    day date not null,
    cells_built_at timestamptz,
    primary key (appid, day)
  )`.execute(db)
  await sql`create table cohort_retention (
    appid text not null,
    grain text not null check (grain in ('day', 'week')),
    cohort_start date not null,
    source text not null check (source in ('invite', 'qr', 'organic')),
    age integer not null check (age >= 0),
    cohort_size integer not null,
    retained integer not null,
    primary key (appid, grain, cohort_start, source, age)
  )`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table cohort_retention, cohort_days, cohort_members`.execute(db)
}
