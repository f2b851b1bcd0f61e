/**
 * How many points a console operator has caused today (the per-day grant limit counts these):
 * their grants and their activity awards.
 */
import { type Kysely, sql } from 'kysely'
import { localDay, localDayStart } from '../../community/community-time.js'
import type { Database } from '../../db/schema.js'

/**
 * The points `operator` granted since the start of the community's day (all accounts): the sum of
 * the `delta` of their `points.grant` audit entries and the `granted` of their `activity.award`
 * entries (the activity's points × the members it reached), each written in the same transaction
 * as the points themselves — so a committed grant or award is always counted and a rolled-back one
 * never is. Deductions do not count.
 */
export async function grantedToday(
  db: Kysely<Database>,
  operator: string,
  now: Date,
  timeZone: string,
): Promise<number> {
  const since = localDayStart(localDay(now, timeZone), timeZone)
  const row = await db
    .selectFrom('audit_log')
    .select(
      sql<string>`coalesce(sum(case action when 'points.grant' then (details::jsonb ->> 'delta')::bigint
        else (details::jsonb ->> 'granted')::bigint end), 0)`.as('granted'),
    )
    .where('actor', '=', operator)
    .where('action', 'in', ['points.grant', 'activity.award'])
    .where('created_at', '>=', since)
    .executeTakeFirstOrThrow()
  return Number(row.granted)
}
