/**
 * Daily check-in: once per member per community day, inside an optional daily window, with a streak
 * and streak bonuses. One statement (`quanzi_checkin`, migrations/0007) with the member locked: the
 * check-in row, the `checkin` rule's award and any bonus land together or not at all. The OA chat and
 * (later) group channels call this. A first check-in also qualifies a pending invite.
 */
import { type Kysely, sql } from 'kysely'
import type { Translate } from '../bot/i18n.js'
import type { Database } from '../db/schema.js'
import { awardBadges, type Badge } from './badges.js'
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
      balance: number
      level: Level
      levelUp: { from: Level; to: Level } | null
      /** Badges this check-in earned (src/community/badges.ts), for the reply. */
      badges: Badge[]
    }
  | { status: 'already'; day: string; streak: number; balance: number; level: Level }
  | { status: 'closed'; window: { from: number; to: number } }

/**
 * Checks a member in for the community day of `now`.
 * @example await checkIn(db, { appid, memberId, now: clock.now(), timeZone, settings })
 */
export async function checkIn(
  db: Kysely<Database>,
  input: {
    appid: string
    memberId: number
    now: Date
    timeZone: string
    settings: CheckinSettings
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
  const { rows } = await sql<{ result: RawCheckin }>`select quanzi_checkin(
    ${appid}::text, ${memberId}::bigint, ${now}::timestamptz, ${day}::date,
    ${weekStart(day)}::date, ${JSON.stringify(settings.streakBonuses)}::jsonb,
    ${LEVELS_JSON}::jsonb) as result`.execute(db)
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
}

/** The member's current streak (0 when the last check-in was before yesterday) and total check-ins. */
export async function checkinStats(
  db: Kysely<Database>,
  memberId: number,
  now: Date,
  timeZone: string,
) {
  const day = localDay(now, timeZone)
  const last = await db
    .selectFrom('checkins')
    .select([sql<string>`day::text`.as('day'), 'streak'])
    .where('member_id', '=', memberId)
    .orderBy('day', 'desc')
    .limit(1)
    .executeTakeFirst()
  const { n } = await db
    .selectFrom('checkins')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('member_id', '=', memberId)
    .executeTakeFirstOrThrow()
  const current = last && (last.day === day || last.day === addDays(day, -1)) ? last.streak : 0
  return { streak: current, total: Number(n), checkedInToday: last?.day === day }
}
