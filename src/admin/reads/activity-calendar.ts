/**
 * The activity calendar: each open activity's occurrences over the next weeks, as the engine
 * schedules them — its cron's slots in the community time zone ({@link cronSlots}), grouped into
 * occurrences by its cadence ({@link periodOf}), the current occurrence always included (members
 * sign up for it whether or not a reminder is still to come) — and the sign-up counts of each.
 */
import type { Kysely } from 'kysely'
import { periodOf } from '../../community/activities.js'
import { addDays, localDay, localDayStart } from '../../community/community-time.js'
import { cronSlots } from '../../cron.js'
import type { Database } from '../../db/schema.js'
import type { Activity } from '../actions/activity-actions.js'

/** One occurrence of an activity: its first day and its reminder slots still to come. */
export interface Occurrence {
  activity: Activity
  /** The occurrence's first community day (`YYYY-MM-DD`), as sign-ups and awards name it. */
  period: string
  /** Its cron's slots from now to the calendar's end, oldest first (none: all have passed). */
  slots: Date[]
  /** The occurrence in progress now. */
  current: boolean
}

/**
 * The open activities' occurrences from now to the end of the `days`-th community day ahead,
 * ordered by their next slot (current occurrences without one first, by period).
 */
export function activityCalendar(
  activities: Activity[],
  o: { now: Date; timeZone: string; days: number },
): Occurrence[] {
  const end = localDayStart(addDays(localDay(o.now, o.timeZone), o.days + 1), o.timeZone)
  const out: Occurrence[] = []
  for (const activity of activities.filter((a) => a.status === 'open')) {
    const current = periodOf(activity.cadence, o.now, o.timeZone)
    const byPeriod = new Map<string, Date[]>([[current, []]])
    for (const slot of cronSlots(
      activity.cron,
      new Date(o.now.getTime() - 60_000),
      end,
      o.timeZone,
    )) {
      const period = periodOf(activity.cadence, slot, o.timeZone)
      byPeriod.set(period, [...(byPeriod.get(period) ?? []), slot])
    }
    for (const [period, slots] of byPeriod)
      out.push({ activity, period, slots, current: period === current })
  }
  const key = (x: Occurrence) => x.slots[0]?.getTime() ?? 0
  return out.sort((a, b) => key(a) - key(b) || a.period.localeCompare(b.period))
}

/** Confirmed and waitlisted counts of an occurrence. */
export interface SignupCount {
  confirmed: number
  waitlisted: number
}

/**
 * The sign-up counts of the given activities' occurrences from `fromPeriod` on, by
 * `${activityId}:${period}` (occurrences nobody signed up for are absent).
 */
export async function signupCounts(
  db: Kysely<Database>,
  activityIds: number[],
  fromPeriod: string,
): Promise<Map<string, SignupCount>> {
  const counts = new Map<string, SignupCount>()
  if (activityIds.length === 0) return counts
  const rows = await db
    .selectFrom('activity_signups')
    .select(['activity_id', 'period', 'status', (eb) => eb.fn.countAll<number>().as('n')])
    .where('activity_id', 'in', activityIds)
    .where('period', '>=', fromPeriod)
    .where('status', 'in', ['confirmed', 'waitlisted'])
    .groupBy(['activity_id', 'period', 'status'])
    .execute()
  for (const r of rows) {
    const key = `${r.activity_id}:${r.period}`
    const c = counts.get(key) ?? { confirmed: 0, waitlisted: 0 }
    c[r.status as keyof SignupCount] = Number(r.n)
    counts.set(key, c)
  }
  return counts
}
