/**
 * Make-up check-in (补签): fills one missed community day within the last `days` days — never today,
 * a future day or a day before the member followed — at most `perMonth` times per calendar month of
 * the filled day, for a cost that rises with each make-up of that month. The cost is a ledger entry
 * (rule `checkin_makeup`); the filled day joins the streak (the run after it is recomputed), and
 * the streak bonuses and monthly rewards the longer run reaches are paid, each once. One statement
 * (`quanzi_checkin_makeup`, migrations/0042) with the member locked, so a make-up happens once
 * however many arrive together, and serializes with the day's check-in.
 */
import { type Kysely, sql } from 'kysely'
import type { Database } from '../db/schema.js'
import { awardBadges, type Badge } from './badges.js'
import {
  type CheckinInput,
  DEFAULT_MAKEUP,
  type MakeupSettings,
  type MonthlyOutcome,
} from './checkins.js'
import { addDays, localDay, weekStart } from './community-time.js'
import { type Level, levelByKey } from './levels.js'
import { LEVELS_JSON } from './points-ledger.js'

/** What a make-up did. */
export type MakeupResult =
  | {
      status: 'made_up'
      day: string
      /** Points spent (0 when make-ups are free). */
      cost: number
      /** Make-ups in the filled day's month, this one included, and the limit. */
      used: number
      perMonth: number
      /** The member's current streak after the make-up (through today or yesterday). */
      streak: number
      /** Streak bonuses the longer run reached. */
      bonuses: { streak: number; points: number }[]
      /** Monthly rewards the filled day's month reached (null when none are configured). */
      monthly: MonthlyOutcome | null
      balance: number
      level: Level
      levelUp: { from: Level; to: Level } | null
      /** Badges the make-up earned. */
      badges: Badge[]
    }
  | { status: 'disabled' }
  | { status: 'today' }
  | { status: 'future'; day: string }
  | { status: 'too_old'; day: string; earliest: string; days: number }
  | { status: 'before_follow'; day: string; follow: string }
  | { status: 'already'; day: string }
  | { status: 'none'; days: number }
  | { status: 'limit'; day: string; perMonth: number }
  | { status: 'insufficient'; day: string; cost: number; balance: number }

/** What `quanzi_checkin_makeup` returns (jsonb). */
interface RawMakeup {
  status: 'made_up' | 'none' | 'before_follow' | 'already' | 'limit' | 'insufficient' | 'duplicate'
  day?: string
  follow?: string
  cost?: number
  used?: number
  streak?: number
  bonuses?: { streak: number; points: number }[]
  monthly?: MonthlyOutcome | null
  balance: number
  level: string
  previous_level?: string
}

/**
 * Fills `day` (`YYYY-MM-DD`), or the latest missed day in the window when `day` is undefined.
 * @example await makeUpCheckin(db, { appid, memberId, now: clock.now(), timeZone, settings, day: '2026-11-20' })
 */
export async function makeUpCheckin(
  db: Kysely<Database>,
  input: CheckinInput & { day?: string },
): Promise<MakeupResult> {
  const { appid, memberId, now, timeZone, settings, day } = input
  const rules: MakeupSettings = settings.makeup ?? DEFAULT_MAKEUP
  if (rules.days <= 0 || rules.perMonth <= 0) return { status: 'disabled' }
  const today = localDay(now, timeZone)
  const earliest = addDays(today, -rules.days)
  if (day !== undefined) {
    if (day === today) return { status: 'today' }
    if (day > today) return { status: 'future', day }
    if (day < earliest) return { status: 'too_old', day, earliest, days: rules.days }
  }
  const { rows } = await sql<{ result: RawMakeup }>`select quanzi_checkin_makeup(
    ${appid}::text, ${memberId}::bigint, ${now}::timestamptz, ${today}::date, ${day ?? null}::date,
    ${earliest}::date, ${timeZone}::text, ${weekStart(today)}::date, ${rules.perMonth}::integer,
    ${JSON.stringify(rules.costs)}::jsonb, ${JSON.stringify(settings.streakBonuses)}::jsonb,
    ${JSON.stringify(settings.monthlyRewards ?? {})}::jsonb, ${LEVELS_JSON}::jsonb) as result`.execute(
    db,
  )
  const r = rows[0]!.result
  const filled = r.day ?? ''
  switch (r.status) {
    case 'none':
      return { status: 'none', days: rules.days }
    case 'before_follow':
      return { status: 'before_follow', day: filled, follow: r.follow! }
    case 'already':
    case 'duplicate':
      return { status: 'already', day: filled }
    case 'limit':
      return { status: 'limit', day: filled, perMonth: rules.perMonth }
    case 'insufficient':
      return { status: 'insufficient', day: filled, cost: r.cost!, balance: r.balance }
  }
  const level = levelByKey(r.level)
  const from = levelByKey(r.previous_level ?? r.level)
  // A filled day can lengthen a past run and adds a check-in: re-read both counters.
  const badges = await awardBadges(
    db,
    input.memberId,
    { streak: null, checkins: null },
    { now: input.now },
  )
  return {
    status: 'made_up',
    day: filled,
    cost: r.cost ?? 0,
    used: r.used!,
    perMonth: rules.perMonth,
    streak: r.streak!,
    bonuses: (r.bonuses ?? []).map(({ streak, points }) => ({ streak, points })),
    monthly: r.monthly ?? null,
    balance: r.balance,
    level,
    levelUp: level.min > from.min ? { from, to: level } : null,
    badges,
  }
}

/**
 * The day a `补签` argument names, relative to `today`, or null when it names none. Empty → undefined
 * (the latest missed day). Accepts 昨天 / 前天 / yesterday, `YYYY-MM-DD` (also `/` or `.`),
 * `M-D`, `M/D`, `M月D日`, `D日` / `D号`; without a year (month) the nearest such date to today.
 * @example parseMakeupDay('11-20', '2026-11-24') // '2026-11-20'
 */
export function parseMakeupDay(text: string, today: string): string | undefined | null {
  const s = text.trim().toLowerCase()
  if (s === '') return undefined
  if (s === '昨天' || s === 'yesterday') return addDays(today, -1)
  if (s === '前天') return addDays(today, -2)
  const [ty, tm] = today.split('-').map(Number) as [number, number]
  let m = /^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})[日号]?$/.exec(s)
  if (m) return validMonth(m[2]) ? date(Number(m[1]), Number(m[2]), Number(m[3])) : null
  m = /^(\d{1,2})[-/.月](\d{1,2})[日号]?$/.exec(s)
  if (m) {
    const [month, d] = [Number(m[1]), Number(m[2])]
    if (!validMonth(m[1])) return null
    return nearest(today, [date(ty, month, d), date(ty - 1, month, d), date(ty + 1, month, d)])
  }
  m = /^(\d{1,2})[日号]$/.exec(s)
  if (m) {
    const d = Number(m[1])
    return nearest(today, [date(ty, tm, d), date(ty, tm - 1, d), date(ty, tm + 1, d)])
  }
  return null
}

const validMonth = (m: string | undefined) => Number(m) >= 1 && Number(m) <= 12

/** `YYYY-MM-DD` of a calendar date (month 0 or 13: the neighbouring year), or null (Feb 30). */
function date(y: number, month: number, d: number): string | null {
  const at = new Date(Date.UTC(y, month - 1, d))
  return d >= 1 && at.getUTCDate() === d ? at.toISOString().slice(0, 10) : null
}

/** The candidate closest to `today` (the earlier one on a tie), or null when there is none. */
function nearest(today: string, candidates: (string | null)[]): string | null {
  const t = Date.parse(today)
  const valid = candidates.filter((c): c is string => c !== null)
  valid.sort(
    (a, b) => Math.abs(Date.parse(a) - t) - Math.abs(Date.parse(b) - t) || (a < b ? -1 : 1),
  )
  return valid[0] ?? null
}
