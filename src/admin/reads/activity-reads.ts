/** Activities as an operator sees them: the list and an occurrence's sign-ups. */
import type { Kysely } from 'kysely'
import { ensureDefaultActivities, occurrenceOf, periodOf } from '../../community/activities.js'
import type { Database } from '../../db/schema.js'
import type { Activity } from '../actions/activity-actions.js'

/** The account's activities in order of creation (seeded with the defaults). */
export async function listActivities(db: Kysely<Database>, appid: string, now: Date) {
  await ensureDefaultActivities(db, appid, now)
  return db.selectFrom('activities').selectAll().where('appid', '=', appid).orderBy('id').execute()
}

/**
 * The confirmed and waitlisted sign-ups of an occurrence, in order (`period`: any day of it;
 * default the current one).
 */
export async function activitySignups(
  db: Kysely<Database>,
  a: Activity,
  q: { period?: string; now: Date; timeZone: string },
) {
  const period = q.period
    ? occurrenceOf(a.cadence, q.period)
    : periodOf(a.cadence, q.now, q.timeZone)
  const signups = await db
    .selectFrom('activity_signups')
    .innerJoin('members', 'members.id', 'activity_signups.member_id')
    .select(['members.openid', 'activity_signups.status', 'activity_signups.created_at'])
    .where('activity_signups.activity_id', '=', a.id)
    .where('activity_signups.period', '=', period)
    .where('activity_signups.status', '!=', 'cancelled')
    .orderBy('activity_signups.created_at')
    .orderBy('activity_signups.member_id')
    .execute()
  return { activity: a.key, period, capacity: a.capacity, signups }
}
