/**
 * The console operator's per-day grant limit (`operators.daily_grant_limit`, role operator only),
 * checked inside the grant's (or activity award's) transaction: grants and awards count together.
 *
 * Concurrency: the check locks the operator's row (`for update`) before summing today's grants from
 * the audit log, and the grant's own audit entry is written in the same transaction. Two grants by
 * the same operator therefore run one after the other: the second waits for the first to commit
 * and, its sum being a new statement (read committed), counts the first. Grants by different
 * operators do not wait on each other. The limit is read under the same lock, so a limit an owner
 * changes applies to the next grant.
 */
import type { Kysely, Transaction } from 'kysely'
import type { Database } from '../../db/schema.js'
import { grantedToday } from '../reads/operator-grants.js'

/** A grant the limit refuses: the limit and what was already granted today. */
export interface OverLimit {
  status: 'over_limit'
  limit: number
  granted: number
}

/**
 * Locks the console operator named `operator` and answers whether granting `delta` more points
 * today would pass their limit; null when it would not, when they have no limit, are not of role
 * operator, or `delta` is a deduction. An unknown or disabled operator is refused as limit 0.
 * `delta` may be a function, called after the operator is locked and only when they have a limit
 * (an award locks its members and counts what it would give there: operator first, then members,
 * the order a grant locks them in).
 */
export async function overDailyLimit(
  trx: Transaction<Database>,
  operator: string,
  delta: number | (() => Promise<number>),
  now: Date,
  timeZone: string,
): Promise<OverLimit | null> {
  const row = await trx
    .selectFrom('operators')
    .select(['role', 'disabled', 'daily_grant_limit'])
    .where('name', '=', operator)
    .forUpdate()
    .executeTakeFirst()
  if (!row || row.disabled) return { status: 'over_limit', limit: 0, granted: 0 }
  if (row.role !== 'operator' || row.daily_grant_limit === null) return null
  const wanted = typeof delta === 'number' ? delta : await delta()
  if (wanted <= 0) return null
  const granted = await grantedToday(trx, operator, now, timeZone)
  return granted + wanted > row.daily_grant_limit
    ? { status: 'over_limit', limit: row.daily_grant_limit, granted }
    : null
}

/**
 * Whether {@link overDailyLimit} may refuse the console operator named `operator`: they have a
 * limit, or are unknown or disabled. Read without a lock, to choose how to run a large action (an
 * activity award); the action itself checks again with {@link overDailyLimit} under the lock.
 */
export async function dailyLimitApplies(db: Kysely<Database>, operator: string): Promise<boolean> {
  const row = await db
    .selectFrom('operators')
    .select(['role', 'disabled', 'daily_grant_limit'])
    .where('name', '=', operator)
    .executeTakeFirst()
  return !row || row.disabled || (row.role === 'operator' && row.daily_grant_limit !== null)
}
