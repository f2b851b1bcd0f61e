/**
 * Daily check-in: once per member per community day, inside an optional daily window, with a streak
 * and streak bonuses. One transaction with the member locked: the check-in row, the `checkin` rule's
 * award and any bonus land together or not at all. The OA chat and (later) group channels call this.
 */
import { type Kysely, sql } from 'kysely'
import type { Database } from '../db/schema.js'
import { addDays, localDay, localMinutes } from './community-time.js'
import { type Level, levelByKey } from './levels.js'
import { applyDelta, awardRule, withMemberLocked } from './points-ledger.js'

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
  },
): Promise<CheckinResult> {
  const { appid, memberId, now, timeZone, settings } = input
  const window = settings.window
  if (window) {
    const minutes = localMinutes(now, timeZone)
    if (minutes < window.from || minutes >= window.to) return { status: 'closed', window }
  }
  const day = localDay(now, timeZone)
  return withMemberLocked(db, memberId, async (trx, member) => {
    const recent = await trx
      .selectFrom('checkins')
      .select([sql<string>`day::text`.as('day'), 'streak'])
      .where('member_id', '=', memberId)
      .where('day', 'in', [day, addDays(day, -1)])
      .execute()
    const today = recent.find((r) => r.day === day)
    if (today) {
      return {
        status: 'already',
        day,
        streak: today.streak,
        balance: member.points_balance,
        level: levelByKey(member.level),
      }
    }
    const streak = (recent.find((r) => r.day !== day)?.streak ?? 0) + 1
    const base = { appid, memberId, now, timeZone }
    const award = await awardRule(trx, member, {
      ...base,
      rule: 'checkin',
      idempotencyKey: `checkin:${memberId}:${day}`,
    })
    const points = award.status === 'applied' ? award.delta : 0
    let levelUp = award.status === 'applied' ? award.levelUp : null
    const bonus = settings.streakBonuses[streak] ?? 0
    if (bonus > 0) {
      const extra = await applyDelta(
        trx,
        member,
        {
          ...base,
          rule: 'streak_bonus',
          idempotencyKey: `streak:${memberId}:${day}`,
          reference: `streak ${streak}`,
        },
        bonus,
      )
      if (extra.status === 'applied' && extra.levelUp)
        levelUp = { from: levelUp?.from ?? extra.levelUp.from, to: extra.levelUp.to }
    }
    await trx
      .insertInto('checkins')
      .values({ member_id: memberId, day, appid, streak, points: points + bonus, created_at: now })
      .execute()
    return {
      status: 'checked_in',
      day,
      streak,
      points,
      bonus,
      balance: member.points_balance,
      level: levelByKey(member.level),
      levelUp,
    }
  })
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
