/**
 * A day's moves between segments, as the nightly rollup stored them (`segments.flow`, one figure
 * per `from>to` dim; `none>…` is a member's first segment): for the console's Sankey chart.
 */
import type { Kysely } from 'kysely'
import type { Database } from '../../db/schema.js'

/** Members who moved from one segment (`none`: no segment yet) to another on a day. */
export interface SegmentMove {
  from: string
  to: string
  members: number
}

/** The moves of community day `day`, largest first (empty when the day is not built). */
export async function segmentFlow(
  db: Kysely<Database>,
  q: { appid: string; day: string },
): Promise<SegmentMove[]> {
  const rows = await db
    .selectFrom('analytics_daily')
    .select(['dim', 'value'])
    .where('appid', '=', q.appid)
    .where('metric', '=', 'segments.flow')
    .where('day', '=', q.day)
    .execute()
  return rows
    .map((r) => {
      const [from = '', to = ''] = r.dim.split('>')
      return { from, to, members: Number(r.value) }
    })
    .filter((m) => m.from && m.to && m.members > 0)
    .sort((a, b) => b.members - a.members || (a.from + a.to < b.from + b.to ? -1 : 1))
}
