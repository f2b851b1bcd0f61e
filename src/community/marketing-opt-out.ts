/**
 * The marketing opt-out — 退订 / TD and 订阅 (handlers/preferences.ts), the console's switch
 * (src/admin/actions/member-actions.ts) — and what it means for conversions. Campaigns, journey
 * steps and activity notices skip an opted-out member. Opting out is a member action like any
 * other (the receive of the 退订 message moves `last_active_at`), but answering a push by leaving
 * its marketing is no conversion: each opt-out records when (`marketing_opted_out_at`), and the
 * campaign report and the journeys count as a conversion only activity later than that
 * ({@link convertingActivity}). Purchases convert whatever the opt-out.
 */
import { sql } from 'kysely'

/**
 * The `members` columns that opt a member out (`true`) or back in (`false`), for `.set()`. The
 * opt-out's time is `now`, or the member's last activity if that is later (the 退订's receive
 * committed it just before, perhaps by another clock): it covers the message that asked for it.
 * An opt-in keeps the time of the last opt-out (activity after it counts either way).
 */
export function marketingOptOut(optOut: boolean, now: Date) {
  return optOut
    ? {
        marketing_opt_out: true,
        marketing_opted_out_at: sql<Date>`greatest(${now}::timestamptz, last_active_at)`,
      }
    : { marketing_opt_out: false }
}

/**
 * How old activity must be to count as a conversion: the receive of a 退订 commits its activity a
 * moment before the handler's opt-out does, and a conversion marking in between must not count it.
 * Less than the markings' 5-minute overlap, so activity left for later is read by the next mark.
 */
export const CONVERSION_SETTLE_MS = 60_000

/** The newest activity a conversion marking at `now` counts: {@link CONVERSION_SETTLE_MS} ago. */
export const settledBy = (now: Date) => new Date(now.getTime() - CONVERSION_SETTLE_MS)

/**
 * The last activity of the members row (or CTE) `m` that counts as a conversion, as SQL, or null:
 * its `last_active_at` when settled by `settled` ({@link settledBy}) and later than the member's
 * last opt-out — so the 退订 itself never converts, and a member who acts again after it does.
 */
export function convertingActivity(m: string, settled: Date) {
  const active = sql.ref(`${m}.last_active_at`)
  const optedOut = sql.ref(`${m}.marketing_opted_out_at`)
  return sql<Date | null>`case when ${active} <= ${settled}::timestamptz
    and (${optedOut} is null or ${active} > ${optedOut}) then ${active} end`
}
