/**
 * Daily check-in: once per member per community day, inside an optional daily window, with a streak,
 * streak bonuses and cumulative monthly rewards (累计签到). One statement (`quanzi_checkin_day`,
 * migrations/0042, around `quanzi_checkin` of 0074) with the member locked: the check-in row, the
 * `checkin` rule's award, any streak bonus and any monthly reward land together or not at all
 * (check-ins batched together: `quanzi_checkin_batch`, migrations/0093, the same per row). The
 * OA chat and (later) group channels call this. A first check-in also qualifies a pending invite.
 * Make-ups (补签) are in checkin-makeup.ts.
 */
import { type Kysely, type RawBuilder, sql } from 'kysely'
import type { Translate } from '../bot/i18n.js'
import { type Local, scopedBatcher } from '../db/batcher.js'
import type { Database } from '../db/schema.js'
import type { Logger } from '../logger.js'
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
 * One check-in for the check-in statement. `openid` orders a batch's member locks as claims order
 * theirs (see {@link checkinStatements}); callers of a batcher always give it.
 */
export interface CheckinCall {
  appid: string
  memberId: number
  openid?: string
  now: Date
  /** The community day of `now`. */
  day: string
  settings: CheckinSettings
}

/** What the check-in statement returns for one check-in. */
export interface CheckinRow {
  result: RawCheckin
  badges: BadgeCandidate[] | null
  checkins: unknown
  makeup: { used: unknown; recent: boolean } | null
}

/** Runs the check-in statement for one check-in: alone, or batched with others. */
export type CheckinRunner = (call: CheckinCall) => Promise<CheckinRow>

/**
 * Checks a member in for the community day of `now`. `run`: the app's batched check-in statements
 * ({@link checkinStatements}), with the member's `openid` (a batch's lock order); they run on the
 * pool they were made with, never inside a transaction passed as `db`. Without `run`, one
 * statement of its own on `db`.
 *
 * Once the check-in statement has committed, the check-in is answered as made: its follow-ups
 * (qualifying a pending invite, awarding badges — each its own statement or transaction) that fail
 * are logged to `logger` and left for the member's next day's check-in (an invite stays pending and
 * that check-in reports it again; a badge is a candidate again while it is still earned — a count
 * badge always, a streak badge once the streak reaches it again). Inside a caller's transaction
 * nothing has committed yet: there a failure is thrown, as before.
 * @example await checkIn(db, { appid, memberId, now: clock.now(), timeZone, settings })
 */
export async function checkIn(
  db: Kysely<Database>,
  input: CheckinInput & {
    /** Qualifies a pending invite on the member's first check-in (when invites pay on check-in). */
    invites?: { settings: InviteSettings; t: Translate }
    /** Where a failed follow-up is reported (the check-in itself stands). */
    logger?: Logger
  } & ({ run?: undefined; openid?: string } | { run: CheckinRunner; openid: string }),
): Promise<CheckinResult> {
  const { appid, memberId, now, timeZone, settings } = input
  const window = settings.window
  if (window) {
    const minutes = localMinutes(now, timeZone)
    if (minutes < window.from || minutes >= window.to) return { status: 'closed', window }
  }
  const day = localDay(now, timeZone)
  const makeup = settings.makeup ?? DEFAULT_MAKEUP
  const call: CheckinCall = { appid, memberId, openid: input.openid, now, day, settings }
  const row = input.run ? await input.run(call) : (await checkinAll(db, [call]))[0]!
  const r = row.result
  const level = levelByKey(r.level)
  if (r.status === 'already') {
    return { status: 'already', day, streak: r.streak, balance: r.balance, level }
  }
  // The level before today's awards: the check-in award's answer holds it, applied or not.
  const before = r.award?.previous_level ?? r.award?.level ?? r.level
  const from = levelByKey(before)
  // The check-in has committed: a follow-up that fails must not turn it into an apology.
  const followUp = async <T>(what: string, work: () => Promise<T>, otherwise: T) => {
    try {
      return await work()
    } catch (error) {
      // In a caller's transaction the check-in is not committed, and the transaction is aborted.
      if (db.isTransaction) throw error
      input.logger?.error('check-in follow-up failed; retried at the next check-in', {
        code: 'CHECKIN_FOLLOW_UP_FAILED',
        followUp: what,
        memberId,
        error,
      })
      return otherwise
    }
  }
  // quanzi_checkin says whether an invite waits; qualifying it pays the inviters (its own
  // transaction, once: a conditional update). Only while one is pending, so rare.
  const invites = input.invites
  if (r.invite_pending && invites)
    await followUp('invite', () => qualifyInvite(db, memberId, { now, timeZone, ...invites }), null)
  const badges = await followUp(
    'badges',
    () =>
      awardBadgesFrom(
        db,
        memberId,
        { streak: r.streak, checkins: row.checkins == null ? null : Number(row.checkins) },
        row.badges ?? [],
        { now },
      ),
    [],
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

/** Most check-ins in one batched statement (bounds the member locks one statement holds). */
export const CHECKINS_PER_STATEMENT = 32

/**
 * The app's check-in statements, batched as claims and replies are (`scopedBatcher`,
 * src/db/batcher.ts): the check-ins made while one check-in statement is in flight go together in
 * the next, written set-based by `quanzi_checkin_batch` (migrations/0093), so a busy process pays
 * one round trip, one commit and a few statements for many check-ins (bench/README.md, "Issue 20 —
 * session 15" and "session 47"). Each check-in keeps the single statement's guarantees: its own
 * member locked, its rows written together or not at all (a batch is one transaction: when it
 * fails, the batcher runs each check-in again alone, so only a bad one fails its caller), the same
 * results. One difference: the follow-up reads (badge candidates, the `checkins` counter, the
 * make-up offer) see the database as it was when the statement started, before any of its check-ins
 * waited for a member's lock (its own or an earlier row's), so another transaction's commit during
 * such a wait (a make-up of that member, say) can be missing from that check-in's offer or counter;
 * a statement of its own is exposed only while it waits for its own member. A batch locks its
 * members in the order of (appid, openid), the order claim batches lock theirs in (`receiveAll`,
 * members.ts), so a check-in batch and a claim batch sharing members never wait on each other in a
 * cycle; a job locking several members in another order can deadlock with one, and PostgreSQL then
 * aborts one side after `deadlock_timeout`: the batch runs its check-ins again one by one. `local`
 * (Workers) keeps the check-ins of different requests apart; `lanes` statements run at once
 * (PostgreSQL).
 */
export function checkinStatements(
  db: Kysely<Database>,
  options: { local?: Local; lanes?: number } = {},
): CheckinRunner {
  return scopedBatcher((batch: CheckinCall[]) => checkinAll(db, batch), options.local, {
    lanes: options.lanes ?? 1,
    max: CHECKINS_PER_STATEMENT,
  })
}

/** A call's values for the statement: the settings as SQL values, the make-up window's days. */
function statementArgs(call: CheckinCall) {
  const { settings, day } = call
  const makeup = settings.makeup ?? DEFAULT_MAKEUP
  const month = monthStart(addDays(day, -1))
  const earliest = addDays(day, -makeup.days)
  return {
    appid: call.appid,
    member_id: call.memberId,
    now: call.now.toISOString(),
    day,
    week: weekStart(day),
    bonuses: JSON.stringify(settings.streakBonuses),
    monthly: JSON.stringify(settings.monthlyRewards ?? {}),
    offers: makeup.days > 0 && makeup.perMonth > 0,
    month,
    earliest,
    since: [earliest, month].sort()[0]!,
  }
}

type StatementArgs = ReturnType<typeof statementArgs>

/** The SQL type of each statement argument (the batch's arrays are of these). */
const TYPES: Record<keyof StatementArgs, string> = {
  appid: 'text',
  member_id: 'bigint',
  now: 'timestamptz',
  day: 'date',
  week: 'date',
  bonuses: 'jsonb',
  monthly: 'jsonb',
  offers: 'boolean',
  month: 'date',
  earliest: 'date',
  since: 'date',
}

/** The arguments of `quanzi_checkin_batch` (migrations/0093), each an array over the batch. */
const BATCH_ARGS = ['appid', 'member_id', 'now', 'day', 'week', 'bonuses', 'monthly'] as const
/** What the batched statement's follow-up reads take of each row, beside its answer. */
const FOLLOW_UP_ARGS = ['member_id', 'day', 'offers', 'month', 'earliest', 'since'] as const

/** The order a batch locks its members in: the claims' (appid, openid). */
const lockOrder = (c: CheckinCall) =>
  `${c.appid}\u0000${c.openid ?? ''}\u0000${String(c.memberId).padStart(20, '0')}`

/**
 * Runs a batch of check-ins in one statement, in lock order (see {@link checkinStatements}). A
 * batch of one is the plain statement (cheaper to plan than `unnest`; also what the check-in
 * bench's pgbench script runs).
 */
async function checkinAll(db: Kysely<Database>, batch: CheckinCall[]): Promise<CheckinRow[]> {
  if (batch.length === 1) {
    const { rows } = await checkinStatement(batch[0]!).execute(db)
    return [rows[0]!]
  }
  const keys = batch.map(lockOrder)
  const order = batch
    .map((_, i) => i)
    .sort((a, b) => (keys[a]! < keys[b]! ? -1 : keys[a]! > keys[b]! ? 1 : 0))
  const { rows } = await checkinBatchStatement(order.map((i) => batch[i]!)).execute(db)
  const results: CheckinRow[] = []
  for (const row of rows) results[order[Number(row.i) - 1]!] = row
  return results
}

/**
 * The batched check-in statement, its check-ins in the order given (the caller's lock order): per
 * row of its `unnest`, what {@link checkinStatement} does for one, and the row's position `i`
 * (from 1). The check-ins themselves are one `quanzi_checkin_batch` call (migrations/0093: the
 * batch's members locked in this order, then its rows written set-based, each answered as
 * `quanzi_checkin_day` answers). Also what the check-in bench's batched pgbench script runs.
 */
export function checkinBatchStatement(calls: CheckinCall[]) {
  const args = calls.map(statementArgs)
  const array = (n: keyof StatementArgs) => sql`${args.map((a) => a[n])}::${sql.raw(TYPES[n])}[]`
  return sql<CheckinRow & { i: string | number }>`with c as materialized (
      select v.*, r.outcome as result
      from unnest(${sql.join(FOLLOW_UP_ARGS.map(array))})
          with ordinality as v(${sql.join(FOLLOW_UP_ARGS.map((n) => sql.id(n)))}, i)
        join quanzi_checkin_batch(${sql.join(BATCH_ARGS.map(array))}, ${LEVELS_JSON}::jsonb) r
          on r.n = v.i),
    b as materialized (select c.i, case when c.result->>'status' = 'checked_in'
      then ${badgeCandidates(sql.ref<number>('c.member_id'))} end as rules from c)
    ${followUps(sql`c.member_id`, sql`c.day`, sql`c.offers`, sql`c.month`, sql`c.earliest`, sql`c.since`)},
      c.i
    from c join b on b.i = c.i`
}

/**
 * The check-in's one statement for one check-in (also what the check-in bench's pgbench script
 * runs). One round trip: the check-in, then — from the statement's snapshot, which the check-in's
 * own writes do not change for these reads — the badge rules the member may earn, the `checkins`
 * counter when one of them reads it (today's row is not visible here: the earlier days + 1), and,
 * for a streak of 1, what a make-up of the break would cost. The candidates (`b`) are
 * materialized: two columns read them, and an inlined CTE would be planned and run once per
 * reference. The batched statement ({@link checkinAll}) is the same, per row of its `unnest`.
 */
export function checkinStatement(call: CheckinCall) {
  const a = statementArgs(call)
  return sql<CheckinRow>`with c as materialized (select quanzi_checkin_day(
      ${a.appid}::text, ${a.member_id}::bigint, ${a.now}::timestamptz, ${a.day}::date,
      ${a.week}::date, ${a.bonuses}::jsonb, ${a.monthly}::jsonb, ${LEVELS_JSON}::jsonb) as result),
    b as materialized (select case when c.result->>'status' = 'checked_in'
      then ${badgeCandidates(a.member_id)} end as rules from c)
    ${followUps(
      sql`${a.member_id}::bigint`,
      sql`${a.day}::date`,
      sql`${a.offers}::boolean`,
      sql`${a.month}::date`,
      sql`${a.earliest}::date`,
      sql`${a.since}::date`,
    )}
    from c, b`
}

/**
 * The check-in statement's select list after the check-in (`c.result`) and the badge candidates
 * (`b.rules`): the result, the candidates, the `checkins` counter when a candidate reads it, the
 * make-up offer's facts for a streak of 1.
 */
function followUps(
  member: RawBuilder<unknown>,
  day: RawBuilder<unknown>,
  offers: RawBuilder<unknown>,
  month: RawBuilder<unknown>,
  earliest: RawBuilder<unknown>,
  since: RawBuilder<unknown>,
) {
  return sql`select c.result, b.rules as badges,
      case when jsonb_path_exists(b.rules, '$[*].predicate.**.counter ? (@ == "checkins")')
        then (select count(*) + 1 from checkins k where k.member_id = ${member} and k.day <> ${day})
      end as checkins,
      case when ${offers} and c.result->>'status' = 'checked_in'
          and (c.result->>'streak')::integer = 1 then (
        select jsonb_build_object(
          'used', count(*) filter (where k.day >= ${month} and k.made_up_at is not null),
          'recent', coalesce(bool_or(k.day >= ${earliest}), false))
        from checkins k
        where k.member_id = ${member} and k.day >= ${since} and k.day < ${day})
      end as makeup`
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
