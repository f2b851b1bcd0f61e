/** Followers: the day's follows and unfollows by source, the net change and the total. */
import { sql } from 'kysely'
import {
  changeRange,
  count,
  type DailyFigure,
  type Family,
  type Stock,
  stock,
} from './day-scope.js'

/** Subscribed followers: counted now, or follows − unfollows over days. */
const total: Stock = {
  now: (s) => sql`count(*) filter (where appid = ${s.appid} and subscribed)`,
  accountOnly: true,
  change: (
    s,
    from,
    through,
  ) => sql`(select coalesce(sum(case kind when 'follow' then 1 else -1 end), 0)
    from follow_events where appid = ${s.appid} and ${changeRange(from, through)})`,
}

export const followers: Family = {
  metrics: {
    'followers.new': count('follows of the day [source: invite, qr, organic]'),
    'followers.unfollowed': count('unfollows of the day [the source they came by]'),
    'followers.net': count('follows − unfollows'),
    'followers.total': count('subscribed followers at the end of the day', 'last'),
  },
  query: (s) => sql<DailyFigure>`
    with f as (
      select kind, source from follow_events where appid = ${s.appid} and day = ${s.day}::date
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
      total,
      sql`(select count(*) filter (where kind = 'follow') - count(*) filter (where kind = 'unfollow') from f)`,
    )}`,
  stocks: { 'followers.total': total },
}
