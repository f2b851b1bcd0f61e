/**
 * Points that expire. Every available credit is a lot (`points_lots`, migrations/0043) that spends
 * consume oldest first; the daily `expire-points` job, in three set-based passes:
 *
 * 1. **stamps** new lots with the policy in force (POINTS_EXPIRY): never (`off`), the end of the
 *    community day N days after earning (`days`), or the end of the year after the year of earning
 *    (`year_end`, 次年年底) — never sooner than the end of the notice window, so turning the policy
 *    on (or shortening it) always leaves a member the notice days;
 * 2. **expires** due lots: per batch of members (locked, `skip locked`), one statement zeroes their
 *    due lots and appends one `points_expiry` entry per member (Σ ledger = balance, never negative);
 * 3. **announces** lots expiring within the notice window: one customer-service notice per member
 *    and expiry day (the outbox source `points_expiry:<day>` makes it once), in the notice lane,
 *    not before quiet hours end.
 *
 * A lot's expiry is fixed when it is stamped (within a day of earning): a later policy change
 * applies to points earned after it.
 */
import { type Kysely, sql } from 'kysely'
import type { Translate } from '../bot/i18n.js'
import { type Budget, watched } from '../budget.js'
import type { Database } from '../db/schema.js'
import { afterQuietHours, type CampaignSettings } from './campaigns.js'
import { localDay } from './community-time.js'
import { LANE } from './outbox.js'

type Db = Kysely<Database>

/** How long earned points last. */
export type PointsExpiryPolicy =
  | { mode: 'off' }
  | { mode: 'days'; days: number }
  | { mode: 'year_end' }

/** The policy and how many days ahead a member is told (0: no notice). */
export interface PointsExpirySettings {
  policy: PointsExpiryPolicy
  noticeDays: number
}

/** POINTS_EXPIRY=off, POINTS_EXPIRY_NOTICE_DAYS=7. */
export const DEFAULT_POINTS_EXPIRY: PointsExpirySettings = {
  policy: { mode: 'off' },
  noticeDays: 7,
}

/**
 * Reads POINTS_EXPIRY: `off`, a number of days (1–3650) or `year_end`; undefined when invalid.
 * @example parsePointsExpiry('365') // { mode: 'days', days: 365 }
 */
export function parsePointsExpiry(s: string): PointsExpiryPolicy | undefined {
  if (s === 'off' || s === 'year_end') return { mode: s }
  if (!/^\d{1,4}$/.test(s)) return undefined
  const days = Number(s)
  return days >= 1 && days <= 3650 ? { mode: 'days', days } : undefined
}

/** The end of the community day `days` after `at`'s day, as SQL. */
const endOfDayAfter = (at: unknown, days: number, timeZone: string) =>
  sql`(((${at} at time zone ${timeZone})::date + ${days}::integer + 1)::timestamp
    at time zone ${timeZone})`

/** Stamps up to `batch` unstamped lots per statement with the policy; returns how many. */
export async function stampLots(
  db: Db,
  o: {
    now: Date
    timeZone: string
    settings: PointsExpirySettings
    batch?: number
    budget?: Budget
  },
): Promise<number> {
  const { policy, noticeDays } = o.settings
  const batch = o.batch ?? 50_000
  const floor = endOfDayAfter(sql`${o.now}::timestamptz`, noticeDays, o.timeZone)
  const expiry =
    policy.mode === 'off'
      ? sql`'infinity'::timestamptz`
      : policy.mode === 'days'
        ? sql`greatest(${endOfDayAfter(sql.ref('earned_at'), policy.days, o.timeZone)}, ${floor})`
        : sql`greatest((date_trunc('year', earned_at at time zone ${o.timeZone})
            + interval '2 years') at time zone ${o.timeZone}, ${floor})`
  let stamped = 0
  for (;;) {
    const result = await sql`update points_lots set expires_at = ${expiry}
      where ledger_id in (select ledger_id from points_lots where expires_at is null
        order by ledger_id limit ${batch})`.execute(db)
    const n = Number(result.numAffectedRows ?? 0)
    stamped += n
    if (n < batch || o.budget?.left() === false) return stamped
  }
}

/** Members with open lots matching `due`, after member `after`, in id order. */
async function dueMembers(db: Db, due: ReturnType<typeof sql>, after: number, batch: number) {
  const { rows } = await sql<{ member_id: number }>`select distinct member_id from points_lots
    where remaining > 0 and ${due} and member_id > ${after}::bigint
    order by member_id limit ${batch}`.execute(db)
  return rows.map((r) => Number(r.member_id))
}

/** What a pass did: members touched and points involved. */
export interface ExpirySummary {
  members: number
  points: number
}

/**
 * Expires every lot due by `now`. Per batch of members: locks the ones not busy elsewhere (a busy
 * one waits for the next run), then one statement zeroes their due lots, appends one
 * `points_expiry` entry each and lowers their balance.
 */
export async function expireLots(
  db: Db,
  o: { now: Date; timeZone: string; batch?: number; budget?: Budget },
): Promise<ExpirySummary> {
  const summary: ExpirySummary = { members: 0, points: 0 }
  const day = localDay(o.now, o.timeZone)
  let after = 0
  for (;;) {
    const ids = await dueMembers(
      db,
      sql`expires_at <= ${o.now}::timestamptz`,
      after,
      o.batch ?? 5000,
    )
    if (ids.length === 0) return summary
    after = ids.at(-1)!
    const rows = await db.transaction().execute(async (trx) => {
      const locked = await sql<{ id: number }>`select id from members
        where id = any(${ids}::bigint[]) order by id for update skip locked`.execute(trx)
      if (locked.rows.length === 0) return []
      const { rows } = await sql<{ points: number }>`with lots as (
          update points_lots set expired = remaining, remaining = 0
          where member_id = any(${locked.rows.map((r) => r.id)}::bigint[]) and remaining > 0
            and expires_at <= ${o.now}::timestamptz
          returning member_id, ledger_id, expired),
        sums as (select member_id, sum(expired)::integer as points, min(ledger_id) as first
          from lots group by member_id),
        entries as (
          insert into points_ledger (appid, member_id, delta, rule, idempotency_key,
              balance_after, day, created_at, state)
          select m.appid, m.id, -least(s.points, m.points_balance), 'points_expiry',
            'points_expiry:' || s.first, m.points_balance - least(s.points, m.points_balance),
            ${day}::date, ${o.now}::timestamptz, 'available'
          from sums s join members m on m.id = s.member_id
          where least(s.points, m.points_balance) > 0
          returning member_id, delta)
        update members m set points_balance = m.points_balance + e.delta
        from entries e where m.id = e.member_id
        returning -e.delta as points`.execute(trx)
      return rows
    })
    summary.members += rows.length
    for (const r of rows) summary.points += Number(r.points)
    if (o.budget?.left() === false) return summary
  }
}

/** What a run needs: the time, the policy, quiet hours and time zone, the notice's language. */
export interface ExpiryRun {
  now: Date
  settings: PointsExpirySettings
  campaigns: Pick<CampaignSettings, 'quietHours' | 'timeZone'>
  t: Translate
}

/**
 * Tells members about their lots expiring within the notice window (and not told yet): one
 * customer-service text per member and last valid day, in the notice lane, held until quiet hours
 * end. Unsubscribed members are not told; the outbox skips members outside the 48-hour window.
 */
export async function announceExpiringPoints(
  db: Db,
  o: ExpiryRun & { batch?: number; budget?: Budget },
): Promise<{ notices: number; points: number }> {
  const summary = { notices: 0, points: 0 }
  if (o.settings.noticeDays <= 0) return summary
  const tz = o.campaigns.timeZone
  const horizon = endOfDayAfter(sql`${o.now}::timestamptz`, o.settings.noticeDays, tz)
  const due = sql`not notified and expires_at > ${o.now}::timestamptz and expires_at <= ${horizon}`
  // `{points}` and `{date}` stay in the text: each member's are filled in by the statement.
  const text = o.t('points.expiryNotice')
  const notBefore = afterQuietHours(o.now, o.campaigns)
  let after = 0
  for (;;) {
    const ids = await dueMembers(db, due, after, o.batch ?? 5000)
    if (ids.length === 0) return summary
    after = ids.at(-1)!
    const { rows } = await sql<{ notices: number; points: number }>`with lots as (
        update points_lots set notified = true
        where member_id = any(${ids}::bigint[]) and remaining > 0 and ${due}
        returning member_id, remaining, ((expires_at at time zone ${tz})::date - 1) as last_day),
      notices as (
        select m.appid, 'points_expiry:' || b.last_day as source, m.openid, b.points,
          replace(replace(${text}::text, '{points}', b.points::text), '{date}', b.last_day::text)
            as content
        from (select member_id, last_day, sum(remaining)::integer as points
          from lots group by member_id, last_day) b
        join members m on m.id = b.member_id
        where m.subscribed),
      added as (
        insert into push_outbox (appid, source, openid, kind, payload, lane, next_attempt_at,
          created_at)
        select appid, source, openid, 'custom',
          jsonb_build_object('msgtype', 'text', 'text', jsonb_build_object('content', content))::text,
          ${LANE.notice}, ${notBefore}::timestamptz, ${o.now}::timestamptz
        from notices
        on conflict (appid, source, openid) do nothing
        returning appid, source, openid)
      select count(*)::integer as notices, coalesce(sum(n.points), 0)::integer as points
      from added a join notices n using (appid, source, openid)`.execute(db)
    summary.notices += Number(rows[0]?.notices ?? 0)
    summary.points += Number(rows[0]?.points ?? 0)
    if (o.budget?.left() === false) return summary
  }
}

/**
 * Stamps, expires, then announces: the daily job's run. With a budget, each pass stops between
 * batches once it is spent and the run says `more`: every pass keeps its state in the lots
 * (stamped, expired, notified), so running again at the same `now` continues where it stopped.
 */
export async function runPointsExpiry(db: Db, o: ExpiryRun & { budget?: Budget }) {
  const timeZone = o.campaigns.timeZone
  const budget = watched(o.budget)
  const none = { members: 0, points: 0 }
  const stamped = await stampLots(db, { now: o.now, timeZone, settings: o.settings, budget })
  const expired = budget.spent ? none : await expireLots(db, { now: o.now, timeZone, budget })
  const announced = budget.spent
    ? { notices: 0, points: 0 }
    : await announceExpiringPoints(db, { ...o, budget })
  return { stamped, expired, announced, more: budget.spent }
}

/**
 * The member's next points to expire: the earliest last valid day (community time) among their
 * stamped lots and how many points expire after it; null when none will.
 */
export async function expiringPoints(
  db: Db,
  memberId: number,
  timeZone: string,
): Promise<{ points: number; lastDay: string } | null> {
  const { rows } = await sql<{ last_day: string; points: number }>`
    select ((expires_at at time zone ${timeZone})::date - 1)::text as last_day,
      sum(remaining)::integer as points
    from points_lots
    where member_id = ${memberId}::bigint and remaining > 0
      and expires_at < 'infinity'::timestamptz
    group by 1 order by 1 limit 1`.execute(db)
  const row = rows[0]
  return row ? { points: Number(row.points), lastDay: row.last_day } : null
}
