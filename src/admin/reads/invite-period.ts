/** The period an invite report covers: given, or the 30 days up to today; at most 366 days. */
import * as v from 'valibot'
import { addDays } from '../../community/community-time.js'
import { isDay } from '../../routes/validate.js'

/** The invite report's optional `from` and `to` (community days). */
export const invitePeriodInput = v.object({
  from: v.optional(v.pipe(v.string(), v.check(isDay, 'must be a date YYYY-MM-DD'))),
  to: v.optional(v.pipe(v.string(), v.check(isDay, 'must be a date YYYY-MM-DD'))),
})

/**
 * The period `{ from, to }` (defaults: `to` today, `from` 29 days before `to`), or a problem
 * naming the field when it runs backwards or is longer than 366 days.
 */
export function invitePeriod(
  input: v.InferOutput<typeof invitePeriodInput>,
  today: string,
): { from: string; to: string } | { problem: string } {
  const to = input.to ?? today
  const from = input.from ?? addDays(to, -29)
  if (from > to) return { problem: 'from: must not be after to' }
  if (addDays(from, 366) <= to) return { problem: 'to: the period is at most 366 days' }
  return { from, to }
}
