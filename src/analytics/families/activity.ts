/**
 * Activity: daily actives and messages (`activity`), and the distinct actives over 7 and 30 days
 * (`reach`, the costly part, its own family so a live DAU does not pay for it).
 */
import { sql } from 'kysely'
import { ACTIVITY } from '../facts.js'
import { count, type DailyFigure, dayWindow, type Family, ratio } from './day-scope.js'

export const activity: Family = {
  metrics: {
    'activity.dau': count('members active that day (any action but an unfollow)', 'avg'),
    'activity.messages': count('ordinary messages received (not events)'),
    'activity.messages_per_active': ratio('messages ÷ members who sent any'),
  },
  query: (s) => {
    const w = dayWindow(s)
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
}

export const reach: Family = {
  metrics: {
    'activity.wau': count('distinct members active in the 7 days ending that day', 'last'),
    'activity.mau': count('distinct members active in the 30 days ending that day', 'last'),
    'activity.stickiness': ratio('DAU ÷ MAU'),
  },
  query: (s) => sql<DailyFigure>`
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
}
