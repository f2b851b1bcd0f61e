/**
 * Daily rollups: every figure an operator reads by day, as rows of `analytics_daily` (account,
 * metric, community day, dimension, value). One mechanism: each metric family is a SELECT over the
 * durable facts returning `(metric, dim, value)` rows for one community day; building a day runs
 * them all and replaces that day's rows in one transaction (idempotent, re-runnable for a past
 * day); today's partial figures are the same SELECTs read live, never stored.
 *
 * Money is integer fen; rates are fractions (0–1). Dimensions: '' is the total; others are named
 * per metric (a follow's source, a ledger rule, a streak bucket, a segment, `from>to`).
 *
 * Snapshot metrics (members' level and segment now) describe the moment of the build: they are
 * written when yesterday or today is built and kept as they were when an older day is rebuilt.
 * Followers in total and points outstanding are exact for any day (today's value minus what
 * changed after the day).
 */
import { type Kysely, type RawBuilder, sql } from 'kysely'
import { addDays } from '../community/community-time.js'
import type { Database } from '../db/schema.js'
import { ACTIVITY } from './facts.js'

/** One rolled-up figure. */
export interface DailyFigure {
  metric: string
  dim: string
  value: number
}

interface DayScope {
  appid: string
  /** The community day, `YYYY-MM-DD`. */
  day: string
  timeZone: string
  /**
   * Today's live read: stocks (followers in total, points outstanding) are yesterday's rolled-up
   * figure plus today's change when yesterday is built — two index probes instead of a pass over
   * every member.
   */
  live?: boolean
}

/** A family reads the day's scope and its DAU, counted once per computation. */
type Family = (s: DayScope & { dau: number }) => RawBuilder<DailyFigure>

/** The half-open instant range [start, end) of a community day. */
const window = (s: DayScope) => ({
  start: sql`(${s.day}::date::timestamp at time zone ${s.timeZone})`,
  end: sql`((${s.day}::date + 1)::timestamp at time zone ${s.timeZone})`,
})

/**
 * A stock at the end of the day: exact (`full`: today's state minus what changed after the day),
 * or, read live, yesterday's rolled-up figure plus the day's change when yesterday is built.
 */
const stock = (
  s: DayScope,
  metric: string,
  change: RawBuilder<unknown>,
  full: RawBuilder<unknown>,
) =>
  s.live
    ? sql`coalesce((select value from analytics_daily where appid = ${s.appid} and metric = ${metric}
        and day = ${s.day}::date - 1 and dim = '') + ${change}, ${full})::float8`
    : sql`(${full})::float8`

/** Metrics whose value is the state at build time (not rebuilt for older days). */
export const SNAPSHOT_METRICS = ['members.level', 'segments.size'] as const

const FAMILIES: Record<string, Family> = {
  followers: (s) => sql<DailyFigure>`
    with f as (
      select kind, source from follow_events where appid = ${s.appid} and day = ${s.day}::date
    ), after as (
      select coalesce(sum(case kind when 'follow' then 1 else -1 end), 0) as net
      from follow_events where appid = ${s.appid} and day > ${s.day}::date
    )
    select 'followers.' || case kind when 'follow' then 'new' else 'unfollowed' end as metric,
      coalesce(source, '') as dim, count(*)::float8 as value
    from f group by grouping sets ((kind), (kind, source))
    union all
    select 'followers.net', '', (count(*) filter (where kind = 'follow')
      - count(*) filter (where kind = 'unfollow'))::float8 from f
    union all
    select 'followers.total', '', ${stock(
      s,
      'followers.total',
      sql`(select count(*) filter (where kind = 'follow') - count(*) filter (where kind = 'unfollow') from f)`,
      sql`(select count(*) from members where appid = ${s.appid} and subscribed) - (select net from after)`,
    )}`,

  activity: (s) => {
    const w = window(s)
    return sql<DailyFigure>`
    with d as (
      select count(*) as dau,
        count(*) filter (where kinds & ${ACTIVITY.message} <> 0) as messaging
      from member_days where appid = ${s.appid} and day = ${s.day}::date
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

  /** Distinct members over 7 and 30 days (the costly part of activity: its own family). */
  reach: (s) => sql<DailyFigure>`
    with d as (
      select ${s.dau}::float8 as dau
    ), wau as (
      select count(distinct member_id) as n from member_days
      where appid = ${s.appid} and day between ${s.day}::date - 6 and ${s.day}::date
    ), mau as (
      select count(distinct member_id) as n from member_days
      where appid = ${s.appid} and day between ${s.day}::date - 29 and ${s.day}::date
    )
    select 'activity.wau' as metric, '' as dim, n::float8 as value from wau
    union all select 'activity.mau', '', n::float8 from mau
    union all select 'activity.stickiness', '',
      case when mau.n = 0 then 0 else d.dau::float8 / mau.n end from d, mau`,

  checkins: (s) => sql<DailyFigure>`
    with c as (
      select streak from checkins where appid = ${s.appid} and day = ${s.day}::date
    ), d as (
      select ${s.dau}::float8 as dau
    )
    select 'checkins.participants' as metric, '' as dim, count(*)::float8 as value from c
    union all select 'checkins.rate', '',
      case when d.dau = 0 then 0 else (select count(*) from c)::float8 / d.dau end from d
    union all select 'checkins.streak', b, count(*)::float8 from (
      select case when streak >= 30 then '30+' when streak >= 7 then '7-29'
        when streak >= 2 then '2-6' else '1' end as b from c) x group by b`,

  // Available entries only: frozen purchase points (待到账) are issued when released, and the
  // outstanding stock is Σ points_balance, which frozen points are not part of.
  points: (s) => sql<DailyFigure>`
    with l as (
      select rule, delta from points_ledger
      where appid = ${s.appid} and day = ${s.day}::date and state = 'available'
    ), after as (
      select coalesce(sum(delta), 0) as n from points_ledger
      where appid = ${s.appid} and day > ${s.day}::date and state = 'available'
    )
    select 'points.issued' as metric, coalesce(rule, '') as dim, sum(delta)::float8 as value
    from l where delta > 0 group by grouping sets ((), (rule))
    having count(*) > 0
    union all
    select 'points.spent', coalesce(rule, ''), sum(-delta)::float8
    from l where delta < 0 group by grouping sets ((), (rule))
    having count(*) > 0
    union all
    select 'points.outstanding', '', ${stock(
      s,
      'points.outstanding',
      sql`(select coalesce(sum(delta), 0) from l)`,
      sql`(select coalesce(sum(points_balance), 0) from members where appid = ${s.appid})
        - (select n from after)`,
    )}`,

  /**
   * The invite funnel of the day and the K-factor as the operations plan defines it,
   * K = i × conv × c: c = share rate (members who fetched their invite QR or code / DAU),
   * i = invites per sharer (invitees attributed that day / sharers), conv = conversion (invites
   * qualified that day — the invitee's first check-in — / invitees attributed that day). Same-day
   * figures: an invite attributed today and qualified tomorrow counts tomorrow. Attributed and
   * qualified are also split by invite campaign (dim).
   */
  invites: (s) => {
    const w = window(s)
    return sql<DailyFigure>`
    with sh as (
      select count(distinct member_id)::float8 as n from invite_shares
      where appid = ${s.appid} and day = ${s.day}::date
    ), qr as (
      select count(*)::float8 as n from invite_qr q join members m on m.id = q.member_id
      where m.appid = ${s.appid} and q.issued_at >= ${w.start} and q.issued_at < ${w.end}
    ), fo as (
      select count(*)::float8 as n from follow_events
      where appid = ${s.appid} and day = ${s.day}::date and kind = 'follow' and source = 'invite'
    ), i as (
      select campaign, created_at >= ${w.start} and created_at < ${w.end} as attributed,
        qualified_at is not null and qualified_at >= ${w.start} and qualified_at < ${w.end}
          as qualified
      from invites where appid = ${s.appid}
        and ((created_at >= ${w.start} and created_at < ${w.end})
          or (qualified_at >= ${w.start} and qualified_at < ${w.end}))
    ), t as (
      select count(*) filter (where attributed)::float8 as attributed,
        count(*) filter (where qualified)::float8 as qualified from i
    ), d as (
      select ${s.dau}::float8 as dau
    ), k as (
      select case when d.dau = 0 then 0 else sh.n / d.dau end as c,
        case when sh.n = 0 then 0 else t.attributed / sh.n end as i,
        case when t.attributed = 0 then 0 else t.qualified / t.attributed end as conv
      from d, sh, t
    )
    select 'invites.sharers' as metric, '' as dim, n as value from sh
    union all select 'invites.qr_issued', '', n from qr
    union all select 'invites.follows', '', n from fo
    union all select 'invites.attributed', '', attributed from t
    union all select 'invites.qualified', '', qualified from t
    union all select 'invites.attributed', campaign, count(*)::float8 from i
      where attributed and campaign <> '' group by campaign
    union all select 'invites.qualified', campaign, count(*)::float8 from i
      where qualified and campaign <> '' group by campaign
    union all select 'invites.share_rate', '', c from k
    union all select 'invites.per_sharer', '', i from k
    union all select 'invites.conversion', '', conv from k
    union all select 'invites.k_factor', '', i * conv * c from k`
  },

  commerce: (s) => {
    const w = window(s)
    return sql<DailyFigure>`
    with o as (
      select member_id, coalesce(paid_total_fen, amount_fen) as fen from orders
      where appid = ${s.appid} and paid_at >= ${w.start} and paid_at < ${w.end}
        and status in ('paid', 'refunded')
    ), r as (
      select r.amount_fen from refunds r join orders o on o.id = r.order_id
      where o.appid = ${s.appid} and r.status = 'success'
        and r.updated_at >= ${w.start} and r.updated_at < ${w.end}
    ), repeat as (
      select count(distinct o.member_id) as n from o
      where exists (select 1 from orders p where p.member_id = o.member_id
        and p.status in ('paid', 'refunded') and p.paid_at < ${w.start})
    ), d as (
      select ${s.dau}::float8 as dau
    ), t as (
      select count(*) as orders, coalesce(sum(fen), 0) as gmv, count(distinct member_id) as payers
      from o
    )
    select 'commerce.orders' as metric, '' as dim, orders::float8 as value from t
    union all select 'commerce.gmv_fen', '', gmv::float8 from t
    union all select 'commerce.paying_members', '', payers::float8 from t
    union all select 'commerce.aov_fen', '', case when orders = 0 then 0 else gmv::float8 / orders end from t
    union all select 'commerce.arppu_fen', '', case when payers = 0 then 0 else gmv::float8 / payers end from t
    union all select 'commerce.arpu_fen', '', case when d.dau = 0 then 0 else t.gmv::float8 / d.dau end from t, d
    union all select 'commerce.repeat_rate', '',
      case when t.payers = 0 then 0 else repeat.n::float8 / t.payers end from t, repeat
    union all select 'commerce.refunds', '', count(*)::float8 from r
    union all select 'commerce.refunds_fen', '', coalesce(sum(amount_fen), 0)::float8 from r`
  },

  segments: (s) => {
    const w = window(s)
    return sql<DailyFigure>`
    select 'segments.flow' as metric, coalesce(from_segment, 'none') || '>' || to_segment as dim,
      count(*)::float8 as value
    from segment_transitions
    where appid = ${s.appid} and at >= ${w.start} and at < ${w.end}
    group by 2`
  },

  activities: (s) => {
    const w = window(s)
    return sql<DailyFigure>`
    select 'activities.' || case su.status when 'confirmed' then 'signups'
        when 'waitlisted' then 'waitlisted' else 'cancelled' end as metric,
      '' as dim, count(*)::float8 as value
    from activity_signups su join activities a on a.id = su.activity_id
    where a.appid = ${s.appid} and su.created_at >= ${w.start} and su.created_at < ${w.end}
    group by su.status`
  },
}

const SNAPSHOTS: Record<string, Family> = {
  levels: (s) => sql<DailyFigure>`
    select 'members.level' as metric, level as dim, count(*)::float8 as value
    from members where appid = ${s.appid} and subscribed group by level`,
  segmentSizes: (s) => sql<DailyFigure>`
    select 'segments.size' as metric, segment as dim, count(*)::float8 as value
    from members where appid = ${s.appid} and segment is not null group by segment`,
}

/** The family that computes a metric (`activity.wau` → reach, `segments.size` → segmentSizes …). */
export function familyOf(metric: string): string {
  if (metric === 'activity.wau' || metric === 'activity.mau' || metric === 'activity.stickiness')
    return 'reach'
  if (metric === 'members.level') return 'levels'
  if (metric === 'segments.size') return 'segmentSizes'
  return metric.slice(0, metric.indexOf('.'))
}

/**
 * The figures of one community day, read from the facts: all families, or only `families` (a
 * live read computes only what is asked for). `snapshots: false` leaves out the state-now metrics.
 */
export async function computeDay(
  db: Kysely<Database>,
  s: DayScope,
  o: { snapshots?: boolean; families?: readonly string[] } = {},
): Promise<DailyFigure[]> {
  const all: Record<string, Family> = { ...FAMILIES, ...(o.snapshots === false ? {} : SNAPSHOTS) }
  const names = o.families ? o.families.filter((f) => f in all) : Object.keys(all)
  const out: DailyFigure[] = []
  // DAU is the denominator of several families' rates: counted once here, not in each of them.
  const { count } = await db
    .selectFrom('member_days')
    .select((eb) => eb.fn.countAll<number>().as('count'))
    .where('appid', '=', s.appid)
    .where('day', '=', s.day)
    .executeTakeFirstOrThrow()
  const scope = { ...s, dau: Number(count) }
  for (const name of names) {
    const { rows } = await all[name]!(scope).execute(db)
    for (const r of rows) out.push({ metric: r.metric, dim: r.dim, value: Number(r.value) })
  }
  return out
}

/**
 * Builds (or rebuilds) one community day's rollup: activity kinds known only from other tables
 * (check-ins, paid orders, activity sign-ups) are OR-ed into `member_days`, then every family's
 * rows replace the day's in `analytics_daily`, in one transaction. Snapshot metrics are written
 * only when `day` is yesterday or today relative to `now`.
 */
export async function buildDay(
  db: Kysely<Database>,
  s: DayScope & { now: Date; today: string },
): Promise<{ figures: number }> {
  const snapshots = s.day >= addDays(s.today, -1)
  return db.transaction().execute(async (trx) => {
    const w = window(s)
    await sql`insert into member_days as d (appid, day, member_id, kinds)
      select appid, day, member_id, ${ACTIVITY.checkin}::smallint from checkins
      where appid = ${s.appid} and day = ${s.day}::date
      on conflict (appid, day, member_id) do update set kinds = d.kinds | excluded.kinds
      where d.kinds & excluded.kinds = 0`.execute(trx)
    await sql`insert into member_days as d (appid, day, member_id, kinds)
      select distinct ${s.appid}, ${s.day}::date, member_id, ${ACTIVITY.purchase}::smallint
      from orders where appid = ${s.appid} and paid_at >= ${w.start} and paid_at < ${w.end}
        and status in ('paid', 'refunded')
      on conflict (appid, day, member_id) do update set kinds = d.kinds | excluded.kinds
      where d.kinds & excluded.kinds = 0`.execute(trx)
    await sql`insert into member_days as d (appid, day, member_id, kinds)
      select distinct a.appid, ${s.day}::date, su.member_id, ${ACTIVITY.signup}::smallint
      from activity_signups su join activities a on a.id = su.activity_id
      where a.appid = ${s.appid} and su.created_at >= ${w.start} and su.created_at < ${w.end}
      on conflict (appid, day, member_id) do update set kinds = d.kinds | excluded.kinds
      where d.kinds & excluded.kinds = 0`.execute(trx)
    const figures = await computeDay(trx, s, { snapshots })
    let del = trx
      .deleteFrom('analytics_daily')
      .where('appid', '=', s.appid)
      .where('day', '=', s.day)
    if (!snapshots) del = del.where('metric', 'not in', [...SNAPSHOT_METRICS])
    await del.execute()
    if (figures.length > 0)
      await trx
        .insertInto('analytics_daily')
        .values(figures.map((f) => ({ appid: s.appid, day: s.day, ...f })))
        .execute()
    await trx
      .insertInto('analytics_days')
      .values({ appid: s.appid, day: s.day, built_at: s.now })
      .onConflict((oc) => oc.columns(['appid', 'day']).doUpdateSet({ built_at: s.now }))
      .execute()
    return { figures: figures.length }
  })
}
