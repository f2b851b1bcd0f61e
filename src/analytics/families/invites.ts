/**
 * The invite funnel of the day and the K-factor as the operations plan defines it,
 * K = i × conv × c: c = share rate (members who fetched their invite QR or code / DAU),
 * i = invites per sharer (invitees attributed that day / sharers), conv = conversion (invites
 * qualified that day — the invitee's first check-in — / invitees attributed that day). Same-day
 * figures: an invite attributed today and qualified tomorrow counts tomorrow. Attributed and
 * qualified are also split by invite campaign (dim).
 */
import { sql } from 'kysely'
import { count, type DailyFigure, dayWindow, type Family, ratio } from './day-scope.js'

/**
 * QRs issued are counted by `invite_qr.issued_at`, one row per member and campaign that a re-issue
 * (before the QR expires, INVITE_QR_DAYS) overwrites — no log of issues is kept: a rebuild that
 * finds fewer than the day was built with keeps the figure as built (rollup.ts `KEPT_WHEN_LOWER`).
 */
export const QR_ISSUED_METRICS = ['invites.qr_issued'] as const

export const invites: Family = {
  metrics: {
    'invites.sharers': count('members who fetched their invite QR or code (shared)'),
    'invites.qr_issued': count('invite QR codes issued'),
    'invites.follows': count('follows through an invite QR'),
    'invites.attributed': count('invitees attributed to an inviter [invite campaign]'),
    'invites.qualified': count("invites qualified: the invitee's first check-in [invite campaign]"),
    'invites.share_rate': ratio('c = sharers ÷ DAU', ['invites.sharers', 'activity.dau']),
    'invites.per_sharer': ratio('i = invitees attributed ÷ sharers', [
      'invites.attributed',
      'invites.sharers',
    ]),
    'invites.conversion': ratio('conv = invites qualified ÷ invitees attributed', [
      'invites.qualified',
      'invites.attributed',
    ]),
    'invites.k_factor': ratio('K = i × conv × c', ['invites.qualified', 'activity.dau'], {
      nonzero: ['invites.sharers', 'invites.attributed'],
    }),
  },
  query: (s) => {
    const w = dayWindow(s)
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
}
