/** A member's check-in calendar: the last weeks' days, the current and the best streak. */
import { type Kysely, sql } from 'kysely'
import { checkinStats } from '../../community/checkins.js'
import { addDays, localDay, weekStart } from '../../community/community-time.js'
import type { Database } from '../../db/schema.js'

/** How many whole weeks (Monday to Sunday, the current one last) the calendar shows. */
export const CALENDAR_WEEKS = 6

/** One day of the calendar: whether the member checked in (or made the day up), and the streak. */
export interface CalendarDay {
  day: string
  checkedIn: boolean
  /** Filled by a make-up (补签) rather than checked in on the day. */
  madeUp: boolean
  streak: number
  /** After today (the rest of the current week). */
  future: boolean
}

/**
 * The member's check-ins over the last {@link CALENDAR_WEEKS} weeks as weeks of seven days (from
 * Monday, in the community's time zone), the current streak (0 when the last check-in was before
 * yesterday), the best streak ever and the number of check-ins.
 */
export async function memberCheckins(
  db: Kysely<Database>,
  memberId: number,
  now: Date,
  timeZone: string,
) {
  const today = localDay(now, timeZone)
  const first = addDays(weekStart(today), -7 * (CALENDAR_WEEKS - 1))
  const [rows, best, stats] = await Promise.all([
    db
      .selectFrom('checkins')
      .select([
        sql<string>`day::text`.as('day'),
        'streak',
        sql<boolean>`made_up_at is not null`.as('madeUp'),
      ])
      .where('member_id', '=', memberId)
      .where('day', '>=', first)
      .execute(),
    db
      .selectFrom('checkins')
      .select((eb) => eb.fn.max<number | null>('streak').as('best'))
      .where('member_id', '=', memberId)
      .executeTakeFirstOrThrow(),
    checkinStats(db, memberId, now, timeZone),
  ])
  const byDay = new Map(rows.map((r) => [r.day, r]))
  const weeks: CalendarDay[][] = []
  for (let w = 0; w < CALENDAR_WEEKS; w++) {
    const week: CalendarDay[] = []
    for (let d = 0; d < 7; d++) {
      const day = addDays(first, w * 7 + d)
      const row = byDay.get(day)
      week.push({
        day,
        checkedIn: row !== undefined,
        madeUp: row?.madeUp === true,
        streak: row?.streak ?? 0,
        future: day > today,
      })
    }
    weeks.push(week)
  }
  return { weeks, current: stats.streak, best: Number(best.best ?? 0), total: stats.total }
}
