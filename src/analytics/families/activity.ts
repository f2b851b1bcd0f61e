/**
 * Activity: daily actives and messages (`activity`), and the distinct actives over 7 and 30 days
 * (`reach`, the costly part, its own family so a live DAU does not pay for it).
 */
import { sql } from 'kysely'
import { ACTIVITY, activeDays, activeOn } from '../facts.js'
import { count, type DailyFigure, dayWindow, type Family, ratio } from './day-scope.js'

/**
 * The messages are counted from `inbound_events`, which prune-inbound-events deletes after a week
 * (nothing is added to a day once it is over): a rebuild that finds fewer than the day was built
 * with keeps these as built (rollup.ts `KEPT_WHEN_LOWER`; the count first).
 */
export const MESSAGE_METRICS = ['activity.messages', 'activity.messages_per_active'] as const

export const activity: Family = {
  metrics: {
    'activity.dau': count('members active that day (any action but an unfollow)', 'avg'),
    'activity.messages': count('ordinary messages received (not events)'),
    'activity.messages_per_active': ratio('messages ÷ members who sent any', [
      'activity.messages',
      null,
    ]),
  },
  query: (s) => {
    const w = dayWindow(s)
    return sql<DailyFigure>`
    with d as (
      select count(*) as dau,
        count(*) filter (where kinds & ${ACTIVITY.message} <> 0) as messaging
      from (${activeOn(s.appid, s.timeZone, s.day)}) a
    ), msg as (
      select count(*) as n from inbound_events
      where appid = ${s.appid} and received_at >= ${w.start} and received_at < ${w.end}
        and msg_type <> 'event'
    )
    select 'activity.dau' as metric, '' as dim, dau::float8 as value from d
    union all select 'activity.messages', '', n::float8 from msg
    union all select 'activity.messages_per_active', '',
      case when d.messaging = 0 then 0 else msg.n::float8 / d.messaging end from d, msg`
  },
}

/** The largest gap counted by its days; longer ones (and none in the 30 days before) are `>30`. */
const MAX_GAP = 30
const OVER = `>${MAX_GAP}`

export const reach: Family = {
  metrics: {
    'activity.wau': count('distinct members active in the 7 days ending that day', 'last'),
    'activity.mau': count('distinct members active in the 30 days ending that day', 'last'),
    'activity.stickiness': ratio('DAU ÷ MAU', ['activity.dau', 'activity.mau']),
    'activity.returning': count(
      "members active that day by days since their previous active day ('1' … '30'; '>30': none in the 30 days before; '': all)",
    ),
  },
  /*
   * WAU and MAU from the days' gap histograms instead of a distinct count over 7 and 30 days of
   * member_days (6M rows at 1M members): a member active in the window counts once, on their first
   * active day e in it — the day whose gap (e − previous active day) exceeds e − window start. The
   * day's own histogram costs one index probe per active member; the 29 days before are read from
   * `activity.returning`. Where one of those days was not built with it (the first month after
   * this metric existed, a gap in the builds), the distinct count is used; its subquery runs only
   * then. A day's histogram is as of its build: rebuilding past days after their member_days
   * changed leaves the 30 days after them summing old histograms until those are rebuilt too.
   */
  query: (s) => {
    const day = sql`${s.day}::date`
    const histogram = (from: number) => sql`(select coalesce(sum(n), 0) from h
      where day >= ${day} - ${from}::int and gap > day - (${day} - ${from}::int))`
    const distinct = (from: number) => sql`(select count(*) from (
        select member_id from member_days
        where appid = ${s.appid} and day between ${day} - ${from}::int and ${day} - 1
        union select member_id from unbuilt where day >= ${day} - ${from}::int
        union select member_id from today) u)`
    return sql<DailyFigure>`
    with today as (${activeOn(s.appid, s.timeZone, s.day)}),
    -- The days before this one not built yet (a live read after the job's lag; none when the day
    -- before is built) hold no kinds from check-ins, orders and sign-ups in member_days yet: read
    -- them through the same definition of an active member as the day's own.
    unbuilt as (${activeDays(
      s.appid,
      s.timeZone,
      sql`greatest(${day} - ${MAX_GAP}::int, coalesce((select max(b.day) from analytics_days b
        where b.appid = ${s.appid} and b.day < ${day}), ${day} - ${MAX_GAP + 1}::int) + 1)`,
      sql`(${day} - 1)`,
    )}),
    cur as (
      select coalesce(least(${day} - greatest(p.prev, u.prev), ${MAX_GAP + 1}::int),
          ${MAX_GAP + 1}::int) as gap,
        count(*)::float8 as n
      from today m
      left join lateral (select max(x.day) as prev from member_days x
        where x.member_id = m.member_id and x.appid = ${s.appid}
          and x.day between ${day} - ${MAX_GAP}::int and ${day} - 1) p on true
      left join (select member_id, max(day) as prev from unbuilt group by member_id) u
        on u.member_id = m.member_id
      group by 1
    ), stored as (
      select day, dim, value from analytics_daily
      where appid = ${s.appid} and metric = 'activity.returning'
        and day between ${day} - 29 and ${day} - 1
    ), h as (
      select ${day} as day, gap, n from cur
      union all
      select day, case dim when ${OVER} then ${MAX_GAP + 1}::int else dim::int end,
        value
      from stored where dim <> ''
    ), built as (
      select count(*) filter (where day >= ${day} - 6) as week, count(*) as month
      from stored where dim = ''
    ), r as (
      select case when week = 6 then ${histogram(6)} else ${distinct(6)} end::float8 as wau,
        case when month = 29 then ${histogram(29)} else ${distinct(29)} end::float8 as mau
      from built
    )
    select 'activity.wau' as metric, '' as dim, wau as value from r
    union all select 'activity.mau', '', mau from r
    union all select 'activity.stickiness', '',
      case when mau = 0 then 0 else ${s.dau}::float8 / mau end from r
    union all select 'activity.returning', '', ${s.dau}::float8
    union all select 'activity.returning',
      case when gap > ${MAX_GAP}::int then ${OVER} else gap::text end, n
    from cur`
  },
}
