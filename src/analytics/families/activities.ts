/**
 * Activities: the day's sign-ups by their status now (confirmed, waitlisted, cancelled). The
 * participation awards are read with the rest of the ledger (`activities.awarded` and
 * `activities.points_awarded`, in the points family).
 */
import { sql } from 'kysely'
import { count, type DailyFigure, dayWindow, type Family } from './day-scope.js'

export const activities: Family = {
  metrics: {
    'activities.signups': count('sign-ups made that day and confirmed'),
    'activities.waitlisted': count('sign-ups made that day and on the waitlist'),
    'activities.cancelled': count('sign-ups made that day and cancelled since'),
  },
  query: (s) => {
    const w = dayWindow(s)
    return sql<DailyFigure>`
    select 'activities.' || case su.status when 'confirmed' then 'signups'
        when 'waitlisted' then 'waitlisted' else 'cancelled' end as metric,
      '' as dim, count(*)::float8 as value
    from activity_signups su join activities a on a.id = su.activity_id
    where a.appid = ${s.appid} and su.created_at >= ${w.start} and su.created_at < ${w.end}
    group by su.status`
  },
}
