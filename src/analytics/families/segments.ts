/** Segments: the day's transitions between segments (a flow matrix) and their sizes now. */
import { sql } from 'kysely'
import { count, type DailyFigure, dayWindow, type Family } from './day-scope.js'

export const segments: Family = {
  metrics: {
    'segments.flow': count('members who moved between segments [from>to, none>… for a first one]'),
  },
  query: (s) => {
    const w = dayWindow(s)
    return sql<DailyFigure>`
    select 'segments.flow' as metric, coalesce(from_segment, 'none') || '>' || to_segment as dim,
      count(*)::float8 as value
    from segment_transitions
    where appid = ${s.appid} and at >= ${w.start} and at < ${w.end}
    group by 2`
  },
}

export const segmentSizes: Family = {
  snapshot: true,
  metrics: {
    'segments.size': count('members in each segment when the day was built [segment]', 'last'),
  },
  query: (s) => sql<DailyFigure>`
    select 'segments.size' as metric, segment as dim, count(*)::float8 as value
    from member_segments where appid = ${s.appid} group by segment`,
}

export const levels: Family = {
  snapshot: true,
  metrics: {
    'members.level': count(
      'subscribed followers at each level when the day was built [level]',
      'last',
    ),
  },
  query: (s) => sql<DailyFigure>`
    select 'members.level' as metric, level as dim, count(*)::float8 as value
    from members where appid = ${s.appid} and subscribed group by level`,
}
