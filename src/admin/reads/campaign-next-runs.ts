/** When a campaign schedule runs next: the one-shot time, or a cron's next slots (community time). */
import { cronSlots } from '../../cron.js'

/** How far ahead cron slots are looked for (one step per minute: 62 days ≈ 89,000 steps; a weekly cron shows five runs). */
export const NEXT_RUNS_HORIZON_DAYS = 62

/**
 * The next `count` runs of `schedule` after `now`: a one-shot time once (none when it has passed),
 * or the cron's slots in `timeZone` within {@link NEXT_RUNS_HORIZON_DAYS}. Throws RangeError on a
 * malformed cron.
 * @example nextRuns({ cron: '0 10 * * *' }, now, 'Asia/Shanghai', 5) // five 10:00 slots
 */
export function nextRuns(
  schedule: { cron: string } | { at: Date },
  now: Date,
  timeZone: string,
  count = 5,
): Date[] {
  if ('at' in schedule) return schedule.at > now ? [schedule.at] : []
  const runs: Date[] = []
  let from = now
  for (let day = 0; day < NEXT_RUNS_HORIZON_DAYS && runs.length < count; day++) {
    const to = new Date(from.getTime() + 86_400_000)
    runs.push(...cronSlots(schedule.cron, new Date(from.getTime() - 1), to, timeZone))
    from = to
  }
  return runs.slice(0, count)
}
