/**
 * The durable facts analytics reads (migrations/0030): `member_days` (a member's activity on a
 * community day, with its kinds as the bits below), `follow_events` (follows and unfollows with
 * their acquisition source), plus the engine's own tables (check-ins, the points ledger, invites,
 * orders and refunds, segment transitions, activity sign-ups, campaign recipients).
 */
import { type RawBuilder, sql, type Transaction } from 'kysely'
import type { Database } from '../db/schema.js'

/** Kinds of activity on a member day (bits of `member_days.kinds`). */
export const ACTIVITY = {
  /** An ordinary message (text, image, voice …): written by the push. */
  message: 1,
  /** A check-in made that day (not a make-up, 补签): OR-ed in by the rollup from `checkins`. */
  checkin: 2,
  /** A menu click or view event: written by the push. */
  click: 4,
  /** A paid order: OR-ed in by the rollup from `orders`. */
  purchase: 8,
  /** An activity sign-up: OR-ed in by the rollup from `activity_signups`. */
  signup: 16,
  /** Any other action (follow, QR scan, location …): written by the push. */
  other: 32,
} as const

/** The kinds set only from the engine's own tables (check-ins made on the day, paid orders). */
const DERIVED = ACTIVITY.checkin | ACTIVITY.purchase

/**
 * The members active on community days `from`…`to` (SQL date expressions), with their kinds: the
 * one definition of an active member, read by every figure of activity (DAU, WAU, MAU, returning,
 * ARPU's DAU, the `active_members_drop` alert) and written into `member_days` by the build of a
 * day (rollup.ts `buildDay`), so a day read live (today, a day after the last built one) has the
 * figures the same day has once built. The push's kinds are `member_days`' own; check-ins made
 * on the day (not make-ups), paid orders (the member's, a mini-program buyer too) and activity
 * sign-ups are their tables' — a check-in or purchase bit `member_days` holds without its row is
 * not counted (a make-up counted by an earlier version, an order a 绑定 moved to the follower).
 * Rows `(day, member_id, kinds)`; one index range per table.
 */
export const activeDays = (
  appid: string,
  timeZone: string,
  from: RawBuilder<unknown>,
  to: RawBuilder<unknown>,
) => sql`select day, member_id, bit_or(k)::smallint as kinds from (
    select day, member_id, kinds & ${~DERIVED}::smallint as k from member_days
    where appid = ${appid} and day between ${from} and ${to}
    union all
    select day, member_id, ${ACTIVITY.checkin}::smallint from checkins
    where appid = ${appid} and day between ${from} and ${to} and made_up_at is null
    union all
    select (paid_at at time zone ${timeZone})::date, member_id, ${ACTIVITY.purchase}::smallint
    from orders where appid = ${appid} and status in ('paid', 'refunded')
      and paid_at >= (${from}::timestamp at time zone ${timeZone})
      and paid_at < ((${to} + 1)::timestamp at time zone ${timeZone})
    union all
    select (su.created_at at time zone ${timeZone})::date, su.member_id,
      ${ACTIVITY.signup}::smallint
    from activity_signups su join activities a on a.id = su.activity_id
    where a.appid = ${appid}
      and su.created_at >= (${from}::timestamp at time zone ${timeZone})
      and su.created_at < ((${to} + 1)::timestamp at time zone ${timeZone})
  ) x group by day, member_id having bit_or(k) <> 0`

/** {@link activeDays} of one community day. */
export const activeOn = (appid: string, timeZone: string, day: string) =>
  activeDays(appid, timeZone, sql`${day}::date`, sql`${day}::date`)

/**
 * The gate before an account's `member_days` rows are written by more than one statement in a
 * transaction (a transaction-scoped advisory lock per account): the rollup's build of a day
 * (rollup.ts `buildDay`) takes it shared, a 绑定 moving a member's days (member-moves.ts)
 * exclusive. Both touch rows of several members, each in an order of its own — the build in its
 * statement's (the day's active members, {@link activeDays}), the 绑定 the follower's row before the
 * buyer's — so two of them could each hold a row the other waits for (a deadlock, one of them
 * aborted). Through the gate a 绑定 waits for the builds running to end, and a build for the
 * 绑定; builds still run side by side. The push's single-row writes need no gate.
 *
 * Lock order: the gate comes before every row lock of the transaction that takes it — a build
 * takes it first thing, a 绑定 before its first locking statement (mp-link.ts, the accounts in
 * appid order: member-moves.ts `gateMemberMove`) — so whoever waits at the gate holds nothing
 * else: a 绑定 waiting for a nightly build (seconds at a million members) holds no member or order
 * row that a push, a check-in or a payment of its members would queue behind. Nor could they
 * deadlock there: a build inserting a member's first row of a day takes that member's row `for
 * key share` (the foreign key's check), which a 绑定 holding it `for update` while it waited at
 * the gate would never let go.
 */
export async function lockActivityDays(
  trx: Transaction<Database>,
  appid: string,
  mode: 'shared' | 'exclusive',
): Promise<void> {
  const key = gateKey(appid)
  if (mode === 'shared') await sql`select pg_advisory_xact_lock_shared(${key})`.execute(trx)
  else await sql`select pg_advisory_xact_lock(${key})`.execute(trx)
}

/**
 * The gate of {@link lockActivityDays} exclusive if no one holds it now, without waiting (for a
 * transaction already holding rows, which must not wait there); false: a build holds it.
 */
export async function tryLockActivityDays(
  trx: Transaction<Database>,
  appid: string,
): Promise<boolean> {
  const { rows } = await sql<{
    locked: boolean
  }>`select pg_try_advisory_xact_lock(${gateKey(appid)}) as locked`.execute(trx)
  return rows[0]!.locked
}

const gateKey = (appid: string) => sql`hashtext(${`quanzi:member-days:${appid}`}::text)`
