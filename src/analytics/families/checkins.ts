/** Check-ins: participants, their rate among the day's actives, and streak lengths. */
import { sql } from 'kysely'
import { count, type DailyFigure, type Family, ratio } from './day-scope.js'

export const checkins: Family = {
  metrics: {
    'checkins.participants': count('members who checked in'),
    'checkins.rate': ratio('participants ÷ DAU'),
    'checkins.streak': count('participants by streak length [1, 2-6, 7-29, 30+]'),
  },
  query: (s) => sql<DailyFigure>`
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
}
