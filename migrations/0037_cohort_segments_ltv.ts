import { type Kysely, sql } from 'kysely'

/**
 * Segment-filtered retention and lifetime value by cohort (issue #16), built nightly with the
 * retention cells by src/analytics/cohorts.ts:
 *
 *   cohort_segment_retention  the retention cells per current segment: per (account, grain,
 *                     segment, cohort start, source, age) how many of the cohort's members are in
 *                     that segment now and how many of them were active at that age. Kept equal
 *                     to cohort_members: each build writes the cells that became known that day
 *                     from the members' current segments, and moves the members whose segment
 *                     changed from their old segment's cells to the new one's (a signed delta on
 *                     every cell of their cohort). Reads are primary-key ranges; no '' source
 *                     (a filter without source sums the three).
 *   cohort_ltv        per (account, grain, source, cohort start, age): the cohort's size, its
 *                     members' net revenue (paid orders' GMV minus successful refunds of those
 *                     orders, in fen) from their follow day through age k (grain week: through
 *                     their own day 7k + 6), and how many of them had paid by then. A cell exists
 *                     where the retention cell does; source '' = all sources.
 *
 * Both are filled here from what is already built: segment cells from cohort_members (the
 * template is the existing retention cells), LTV cells from orders and refunds.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create table cohort_segment_retention (
    appid text not null,
    grain text not null check (grain in ('day', 'week')),
    segment text not null,
    cohort_start date not null,
    source text not null check (source in ('invite', 'qr', 'organic')),
    age integer not null check (age >= 0),
    cohort_size integer not null,
    retained integer not null,
    primary key (appid, grain, segment, cohort_start, source, age)
  )`.execute(db)
  await sql`create table cohort_ltv (
    appid text not null,
    grain text not null check (grain in ('day', 'week')),
    source text not null check (source in ('', 'invite', 'qr', 'organic')),
    cohort_start date not null,
    age integer not null check (age >= 0),
    cohort_size integer not null,
    revenue_fen bigint not null,
    payers integer not null,
    primary key (appid, grain, source, cohort_start, age)
  )`.execute(db)
  await sql`create index cohort_ltv_age_idx
    on cohort_ltv (appid, grain, source, age, cohort_start)`.execute(db)
  await fillCohortCells(db)
}

/**
 * Fills both tables (empty) from everything the retention cells cover: the segment cells from
 * cohort_members, the LTV cells from orders and refunds — a full count, where the nightly build
 * adds what each day made known (tests compare the two).
 */
export async function fillCohortCells(
  db: Kysely<unknown>,
  timeZone = 'Asia/Shanghai',
): Promise<void> {
  // Segment cells of what is built: each member in every built cell of its cohort.
  await sql`
    insert into cohort_segment_retention
      (appid, grain, segment, cohort_start, source, age, cohort_size, retained)
    select t.appid, t.grain, c.segment, t.cohort_start, c.source, t.age, count(*)::int,
      (count(*) filter (where case t.grain
        when 'day' then get_bit(c.days, t.age) = 1
        else substring(c.days from 7 * t.age + 1 for 7) <> B'0000000' end))::int
    from cohort_retention t
    join cohort_members c on c.appid = t.appid and c.segment is not null
      and (case t.grain when 'day' then c.cohort_day = t.cohort_start
        else c.cohort_day between t.cohort_start and t.cohort_start + 6 end)
    where t.source = ''
    group by t.appid, t.grain, c.segment, t.cohort_start, c.source, t.age`.execute(db)
  // LTV cells of what is built, in the community's time zone (by default the nightly build's).
  await sql`
    with net as (
      select o.member_id, (o.paid_at at time zone ${timeZone})::date as day,
        coalesce(o.paid_total_fen, o.amount_fen) as fen, null::date as refund_day
      from orders o where o.status in ('paid', 'refunded') and o.paid_at is not null
      union all
      select o.member_id, (o.paid_at at time zone ${timeZone})::date, -r.amount_fen,
        (r.updated_at at time zone ${timeZone})::date
      from refunds r join orders o on o.id = r.order_id
      where r.status = 'success' and o.status in ('paid', 'refunded') and o.paid_at is not null
    ), v as (
      select t.appid, t.grain, t.source, t.cohort_start, t.age,
        coalesce(sum(n.fen), 0) as fen, count(distinct n.member_id) filter (where n.fen > 0) as payers
      from cohort_retention t
      join cohort_members c on c.appid = t.appid
        and (t.source = '' or c.source = t.source)
        and (case t.grain when 'day' then c.cohort_day = t.cohort_start
          else c.cohort_day between t.cohort_start and t.cohort_start + 6 end)
      join net n on n.member_id = c.member_id and n.day >= c.cohort_day
        and greatest(n.day, coalesce(n.refund_day, n.day))
          <= c.cohort_day + (case t.grain when 'day' then t.age else 7 * t.age + 6 end)
      group by t.appid, t.grain, t.source, t.cohort_start, t.age
    )
    insert into cohort_ltv (appid, grain, source, cohort_start, age, cohort_size, revenue_fen, payers)
    select t.appid, t.grain, t.source, t.cohort_start, t.age, t.cohort_size,
      coalesce(v.fen, 0), coalesce(v.payers, 0)
    from cohort_retention t left join v using (appid, grain, source, cohort_start, age)`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table cohort_ltv, cohort_segment_retention`.execute(db)
}
