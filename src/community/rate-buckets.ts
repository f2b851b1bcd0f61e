/**
 * Token buckets shared through the database (`rate_buckets`, one row per key), so every instance
 * draws from the same bucket: the outbox's per-account send rate, group robots' 20 a minute, the
 * mini-program login's per-address and per-code limits, binding-code guesses (every door) and
 * mini-program orders. A bucket refills continuously at
 * `perSecond` up to `burst`; a missing row is a full bucket, so idle rows can be pruned.
 * `updated_at` only moves forward, so a caller whose clock is behind never makes the next one
 * see more elapsed time than there was (no free refill under clock skew).
 */
import { type Kysely, sql } from 'kysely'
import type { Database } from '../db/schema.js'

/** A token bucket's shape. `perSecond: 0` = unthrottled. */
export interface RateLimit {
  perSecond: number
  burst: number
}

/** What a take got: the tokens granted, and when the next one will be there (0 when some were). */
export interface BucketTake {
  granted: number
  retryAfterMs: number
}

/**
 * Takes up to `want` tokens from the bucket `key` (0 while it is paused, see the outbox's quota
 * pause). One row lock per call.
 * @example
 * const rate = { perSecond: 100, burst: 200 }
 * const { granted, retryAfterMs } = await takeFromBucket(db, appid, 50, rate, now)
 */
export async function takeFromBucket(
  db: Kysely<Database>,
  key: string,
  want: number,
  rate: RateLimit,
  now: Date,
): Promise<BucketTake> {
  return db.transaction().execute(async (trx) => {
    await trx
      .insertInto('rate_buckets')
      .values({ appid: key, tokens: rate.burst, updated_at: now, paused_until: null })
      .onConflict((oc) => oc.column('appid').doNothing())
      .execute()
    const bucket = await trx
      .selectFrom('rate_buckets')
      .selectAll()
      .where('appid', '=', key)
      .forUpdate()
      .executeTakeFirstOrThrow()
    if (bucket.paused_until && bucket.paused_until > now)
      return { granted: 0, retryAfterMs: bucket.paused_until.getTime() - now.getTime() }
    if (rate.perSecond <= 0) return { granted: want, retryAfterMs: 0 }
    // instances' clocks may differ: one that is behind gets no refill (elapsed 0) and leaves
    // updated_at where it is, so the next caller's elapsed time is never longer than real
    const elapsed = Math.max(0, now.getTime() - bucket.updated_at.getTime()) / 1000
    const available = Math.min(rate.burst, bucket.tokens + elapsed * rate.perSecond)
    const granted = Math.min(want, Math.floor(available))
    const left = available - granted
    await trx
      .updateTable('rate_buckets')
      .set({ tokens: left, updated_at: sql<Date>`greatest(updated_at, ${now}::timestamptz)` })
      .where('appid', '=', key)
      .execute()
    return {
      granted,
      retryAfterMs: granted > 0 ? 0 : Math.ceil(((1 - left) / rate.perSecond) * 1000),
    }
  })
}

/**
 * Gives back tokens taken but not used (items skipped or held without calling WeChat), up to the
 * bucket's burst.
 */
export async function returnToBucket(
  db: Kysely<Database>,
  key: string,
  n: number,
  rate: RateLimit,
) {
  if (n <= 0 || rate.perSecond <= 0) return
  await db
    .updateTable('rate_buckets')
    .set((eb) => ({
      tokens: eb.fn('least', [eb.val(rate.burst), eb('tokens', '+', n)]),
    }))
    .where('appid', '=', key)
    .execute()
}

/** The key prefix of per-client buckets (pruned when idle, see {@link pruneRateBuckets}). */
export const LIMIT_PREFIX = 'limit:'

/** One bucket a request must get a token from. */
export interface RequestLimit {
  key: string
  rate: RateLimit
}

/**
 * Takes one token from each bucket in turn, `limit:`-prefixed; stops at the first that is empty.
 * Returns 0 when the request may go ahead, else the milliseconds until it may be retried.
 * @example const wait = await limitRequest(db, [{ key: `mp-login:ip:${ip}`, rate }], now)
 */
export async function limitRequest(
  db: Kysely<Database>,
  limits: RequestLimit[],
  now: Date,
): Promise<number> {
  for (const l of limits) {
    const take = await takeFromBucket(db, `${LIMIT_PREFIX}${l.key}`, 1, l.rate, now)
    if (take.granted < 1) return Math.max(1, take.retryAfterMs)
  }
  return 0
}

/**
 * Deletes the buckets under `prefix` untouched since `before` (full again by then, so the same as
 * no row); returns how many. For per-client keys, which would otherwise pile up.
 */
export async function pruneRateBuckets(
  db: Kysely<Database>,
  prefix: string,
  before: Date,
): Promise<number> {
  const result = await db
    .deleteFrom('rate_buckets')
    .where('appid', 'like', `${prefix.replace(/[\\%_]/g, '\\$&')}%`)
    .where('updated_at', '<', before)
    .where('paused_until', 'is', null)
    .executeTakeFirst()
  return Number(result.numDeletedRows)
}
