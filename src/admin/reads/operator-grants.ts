/** How many points a console operator has granted today (the per-day grant limit counts these). */
import { type Kysely, sql } from 'kysely'
import { localDay, localDayStart } from '../../community/community-time.js'
import type { Database } from '../../db/schema.js'

/**
 * The points `operator` granted since the start of the community's day (all accounts): the sum of
 * the `delta` of their `points.grant` audit entries, which are written in the same transaction as
 * the grant itself — so a committed grant is always counted and a rolled-back one never is.
 * Deductions do not count.
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
    .select(sql<string>`coalesce(sum((details::jsonb ->> 'delta')::bigint), 0)`.as('granted'))
    .where('actor', '=', operator)
    .where('action', '=', 'points.grant')
    .where('created_at', '>=', since)
    .executeTakeFirstOrThrow()
  return Number(row.granted)
}
