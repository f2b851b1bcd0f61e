/**
 * Daily check-in: once per member per community day, inside an optional daily window, with a streak,
 * streak bonuses and cumulative monthly rewards (累计签到). One statement (`quanzi_checkin_day`,
 * migrations/0042, around `quanzi_checkin` of 0007) with the member locked: the check-in row, the
 * `checkin` rule's award, any streak bonus and any monthly reward land together or not at all. The
 * OA chat and (later) group channels call this. A first check-in also qualifies a pending invite.
 * Make-ups (补签) are in checkin-makeup.ts.
 */
import { type Kysely, sql } from 'kysely'
import type { Translate } from '../bot/i18n.js'
import type { Database } from '../db/schema.js'
import { awardBadges, type Badge } from './badges.js'
import type { ReminderSettings } from './checkin-reminders.js'
import { addDays, localDay, localMinutes, weekStart } from './community-time.js'
import { type InviteSettings, qualifyInvite } from './invites.js'
import { type Level, levelByKey } from './levels.js'
import { LEVELS_JSON, type RawLedgerOutcome } from './points-ledger.js'

/** Check-in settings (from configuration). */
export interface CheckinSettings {
  /** Minutes after local midnight: check-ins allowed in [from, to). Undefined → all day. */
  window?: { from: number; to: number }
  /** Streak length → bonus points on the day that length is reached. */
  streakBonuses: Record<number, number>
  /**
   * Check-ins in a calendar month → bonus points, paid once per month when the count is reached
   * (make-ups count). Absent or empty → none.
   */
  monthlyRewards?: Record<number, number>
  /** Make-ups (补签); absent → {@link DEFAULT_MAKEUP}. */
  makeup?: MakeupSettings
  /** Check-in reminders (提醒); absent → the defaults. */
  reminders?: ReminderSettings
}

/** Make-up check-in settings. */
export interface MakeupSettings {
  /** How many days back a missed day may be filled (yesterday is 1); 0 disables make-ups. */
  days: number
  /** Make-ups per calendar month (of the filled day); 0 disables make-ups. */
  perMonth: number
  /** Points the n-th make-up of a month costs; past the list the last amount; 0 or [] → free. */
  costs: number[]
}

/** The make-up defaults: the last 7 days, twice a month, 20 then 40 points. */
export const DEFAULT_MAKEUP: MakeupSettings = { days: 7, perMonth: 2, costs: [20, 40] }

/** Monthly rewards paid by a check-in or make-up: the month's check-ins and the thresholds paid. */
export interface MonthlyOutcome {
  days: number
  bonus: number
  paid: { days: number; points: number }[]
}

/** What a check-in did. */
export type CheckinResult =
  | {
      status: 'checked_in'
      day: string
      streak: number
      /** Points from the `checkin` rule (after the level multiplier). */
      points: number
      bonus: number
      /** Monthly rewards this check-in reached (null when none are configured). */
      monthly: MonthlyOutcome | null
      balance: number
      level: Level
      levelUp: { from: Level; to: Level } | null
      /** Badges this check-in earned (src/community/badges.ts), for the reply. */
      badges: Badge[]
    }
  | { status: 'already'; day: string; streak: number; balance: number; level: Level }
  | { status: 'closed'; window: { from: number; to: number } }

/** Who checks in (or makes a day up), when, and under which settings. */
export interface CheckinInput {
  appid: string
  memberId: number
  now: Date
  timeZone: string
  settings: CheckinSettings
}

/**
 * Checks a member in for the community day of `now`.
 * @example await checkIn(db, { appid, memberId, now: clock.now(), timeZone, settings })
 */
export async function checkIn(
  db: Kysely<Database>,
  input: CheckinInput & {
    /** Qualifies a pending invite on the member's first check-in (when invites pay on check-in). */
    invites?: { settings: InviteSettings; t: Translate }
  },
): Promise<CheckinResult> {
  const { appid, memberId, now, timeZone, settings } = input
  const window = settings.window
  if (window) {
    const minutes = localMinutes(now, timeZone)
    if (minutes < window.from || minutes >= window.to) return { status: 'closed', window }
  }
  const day = localDay(now, timeZone)
  const { rows } = await sql<{ result: RawCheckin }>`select quanzi_checkin_day(
    ${appid}::text, ${memberId}::bigint, ${now}::timestamptz, ${day}::date,
    ${weekStart(day)}::date, ${JSON.stringify(settings.streakBonuses)}::jsonb,
    ${JSON.stringify(settings.monthlyRewards ?? {})}::jsonb, ${LEVELS_JSON}::jsonb) as result`.execute(
    db,
  )
  const r = rows[0]!.result
  const level = levelByKey(r.level)
  if (r.status === 'already') {
    return { status: 'already', day, streak: r.streak, balance: r.balance, level }
  }
  // The level before today's awards: the check-in award's answer holds it, applied or not.
  const before = r.award?.previous_level ?? r.award?.level ?? r.level
  const from = levelByKey(before)
  // quanzi_checkin says whether an invite waits; qualifying it pays the inviters (its own
  // transaction, once: a conditional update). Only on a member's first check-ins, so rare.
  if (r.invite_pending && input.invites)
    await qualifyInvite(db, memberId, { now, timeZone, ...input.invites })
  const badges = await awardBadges(db, memberId, { streak: r.streak, checkins: null }, { now })
  return {
    status: 'checked_in',
    day,
    streak: r.streak,
    points: r.points,
    bonus: r.bonus,
    monthly: r.monthly ?? null,
    balance: r.balance,
    level,
    levelUp: level.min > from.min ? { from, to: level } : null,
    badges,
  }
}

/** What `quanzi_checkin` returns (jsonb). */
interface RawCheckin {
  status: 'checked_in' | 'already'
  streak: number
  points: number
  bonus: number
  balance: number
  level: string
  award?: RawLedgerOutcome | null
  extra?: RawLedgerOutcome | null
  invite_pending?: boolean
  monthly?: MonthlyOutcome
}

/**
 * The member's current streak (0 when the last check-in was before yesterday), total check-ins,
 * and this calendar month's check-ins and make-ups.
 */
export async function checkinStats(
  db: Kysely<Database>,
  memberId: number,
  now: Date,
  timeZone: string,
) {
  const day = localDay(now, timeZone)
  const month = monthStart(day)
  const last = await db
    .selectFrom('checkins')
    .select([sql<string>`day::text`.as('day'), 'streak'])
    .where('member_id', '=', memberId)
    .orderBy('day', 'desc')
    .limit(1)
    .executeTakeFirst()
  const counts = await db
    .selectFrom('checkins')
    .select((eb) => [
      eb.fn.countAll<number>().as('n'),
      sql<number>`count(*) filter (where day >= ${month}::date)`.as('month'),
      sql<number>`count(*) filter (where day >= ${month}::date and made_up_at is not null)`.as(
        'madeUp',
      ),
    ])
    .where('member_id', '=', memberId)
    .executeTakeFirstOrThrow()
  const current = last && (last.day === day || last.day === addDays(day, -1)) ? last.streak : 0
  return {
    streak: current,
    total: Number(counts.n),
    checkedInToday: last?.day === day,
    monthDays: Number(counts.month),
    monthMadeUp: Number(counts.madeUp),
  }
}

/** The first day of the calendar month of `day` (`YYYY-MM-01`). */
export function monthStart(day: string): string {
  return `${day.slice(0, 7)}-01`
}
