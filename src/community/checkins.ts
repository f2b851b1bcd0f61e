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
import { awardBadgesFrom, type Badge, type BadgeCandidate, badgeCandidates } from './badges.js'
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
      /** A streak of 1 that broke within the make-up window: what the next 补签 costs. */
      makeup: { cost: number; left: number } | null
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
  const makeup = settings.makeup ?? DEFAULT_MAKEUP
  const { rows } = await checkinStatement({ appid, memberId, now, day, settings }).execute(db)
  const row = rows[0]!
  const r = row.result
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
  const badges = await awardBadgesFrom(
    db,
    memberId,
    { streak: r.streak, checkins: row.checkins == null ? null : Number(row.checkins) },
    row.badges ?? [],
    { now },
  )
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
    makeup: row.makeup ? makeupOffer(makeup, Number(row.makeup.used), row.makeup.recent) : null,
  }
}

/**
 * The check-in's one statement (also what the check-in bench's pgbench script runs). One round
 * trip: the check-in, then — from the statement's snapshot, which the check-in's own writes do not
 * change for these reads — the badge rules the member may earn, the `checkins` counter when one of
 * them reads it (today's row is not visible here: the earlier days + 1), and, for a streak of 1,
 * what a make-up of the break would cost. The candidates (`b`) are materialized: two columns read
 * them, and an inlined CTE would be planned and run once per reference.
 */
export function checkinStatement(input: {
  appid: string
  memberId: number
  now: Date
  day: string
  settings: CheckinSettings
}) {
  const { appid, memberId, now, day, settings } = input
  const makeup = settings.makeup ?? DEFAULT_MAKEUP
  const offers = makeup.days > 0 && makeup.perMonth > 0
  const month = monthStart(addDays(day, -1))
  const earliest = addDays(day, -makeup.days)
  return sql<{
    result: RawCheckin
    badges: BadgeCandidate[] | null
    checkins: unknown
    makeup: { used: unknown; recent: boolean } | null
  }>`with c as materialized (select quanzi_checkin_day(
      ${appid}::text, ${memberId}::bigint, ${now}::timestamptz, ${day}::date,
      ${weekStart(day)}::date, ${JSON.stringify(settings.streakBonuses)}::jsonb,
      ${JSON.stringify(settings.monthlyRewards ?? {})}::jsonb, ${LEVELS_JSON}::jsonb) as result),
    b as materialized (select case when c.result->>'status' = 'checked_in'
      then ${badgeCandidates(memberId)} end as rules from c)
    select c.result, b.rules as badges,
      case when jsonb_path_exists(b.rules, '$[*].predicate.**.counter ? (@ == "checkins")')
        then (select count(*) + 1 from checkins
          where member_id = ${memberId} and day <> ${day}::date)
      end as checkins,
      case when ${offers}::boolean and c.result->>'status' = 'checked_in'
          and (c.result->>'streak')::integer = 1 then (
        select jsonb_build_object(
          'used', count(*) filter (where day >= ${month}::date and made_up_at is not null),
          'recent', coalesce(bool_or(day >= ${earliest}::date), false))
        from checkins
        where member_id = ${memberId} and day >= ${[earliest, month].sort()[0]!}::date
          and day < ${day}::date)
      end as makeup
    from c, b`
}

/**
 * After a check-in that started a new streak: when the member checked in within the make-up window
 * before (the streak broke recently) and yesterday's month has make-ups left (`used` so far), what
 * the next one costs and how many are left; else null (no offer).
 */
function makeupOffer(rules: MakeupSettings, used: number, recent: boolean) {
  if (!recent || used >= rules.perMonth) return null
  return {
    cost: rules.costs[Math.min(used, rules.costs.length - 1)] ?? 0,
    left: rules.perMonth - used,
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
