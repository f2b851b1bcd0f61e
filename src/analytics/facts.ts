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
 * 绑定, before either locks a row; builds still run side by side. The push's single-row writes
 * need no gate.
 */
export async function lockActivityDays(
  trx: Transaction<Database>,
  appid: string,
  mode: 'shared' | 'exclusive',
): Promise<void> {
  const key = sql`hashtext(${`quanzi:member-days:${appid}`}::text)`
  if (mode === 'shared') await sql`select pg_advisory_xact_lock_shared(${key})`.execute(trx)
  else await sql`select pg_advisory_xact_lock(${key})`.execute(trx)
}
