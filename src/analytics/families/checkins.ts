/**
 * Check-ins: participants, their rate among the day's actives, and streak lengths. Check-ins made
 * on the day only: a make-up (补签, `made_up_at` set) fills a missed day later and is neither a
 * participant nor activity that day (rollup.ts), so the figures do not change when one is made and
 * the rate stays a share of DAU; make-ups show as their cost, `points.spent` `checkin_makeup`.
 */
import { sql } from 'kysely'
import { count, type DailyFigure, type Family, ratio } from './day-scope.js'

export const checkins: Family = {
  metrics: {
    'checkins.participants': count(
      'members who checked in on the day (a make-up of the day, made later, is not counted)',
    ),
    'checkins.rate': ratio('participants ÷ DAU', ['checkins.participants', 'activity.dau']),
    'checkins.streak': count('participants by streak length [1, 2-6, 7-29, 30+]'),
  },
  query: (s) => sql<DailyFigure>`
    with c as (
      select streak from checkins
      where appid = ${s.appid} and day = ${s.day}::date and made_up_at is null
    ), d as (
      select ${s.dau}::float8 as dau
    )
    select 'checkins.participants' as metric, '' as dim, count(*)::float8 as value from c
    union all select 'checkins.rate', '',
      case when d.dau = 0 then 0 else (select count(*) from c)::float8 / d.dau end from d
    union all select 'checkins.streak', b, count(*)::float8 from (
      select case when streak >= 30 then '30+' when streak >= 7 then '7-29'
        when streak >= 2 then '2-6' else '1' end as b from c) x group by b`,
}
