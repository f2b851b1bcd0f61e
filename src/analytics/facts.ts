/**
 * The durable facts analytics reads (migrations/0030): `member_days` (a member's activity on a
 * community day, with its kinds as the bits below), `follow_events` (follows and unfollows with
 * their acquisition source), plus the engine's own tables (check-ins, the points ledger, invites,
 * orders and refunds, segment transitions, activity sign-ups, campaign recipients).
 */
import { sql, type Transaction } from 'kysely'
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

/**
 * The gate before an account's `member_days` rows are written by more than one statement in a
 * transaction (a transaction-scoped advisory lock per account): the rollup's build of a day
 * (rollup.ts `buildDay`) takes it shared, a 绑定 moving a member's days (member-moves.ts)
 * exclusive. Both touch rows of several members, each in an order of its own — the build in its
 * passes' order (check-ins, purchases, sign-ups), the 绑定 the follower's row before the
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
