/**
 * The scheduled slots of a job since a moment, for the `job_stalled` alert: the minutes its cron
 * matched after `after` and at least {@link SLOT_GRACE_MS} before now (a slot that young may still
 * be starting). Matching a cron is one step per minute, so the slots of the last
 * {@link LOOKBACK_MS} are kept per expression and extended by the minutes since the last call.
 */
import { cronSlots } from '../cron.js'

/** A slot counts as missed only this long after it (its run may be starting). */
export const SLOT_GRACE_MS = 2 * 60_000
/** How far back missed slots are counted (a daily job: 15; an every-minute job: 21,600). */
export const LOOKBACK_MS = 15 * 86_400_000

const MINUTE = 60_000
const cache = new Map<string, { from: number; to: number; slots: number[] }>()

/** The slots of `cron` in `timeZone` after `after`, up to `now` − grace, at most 15 days back. */
export function jobSlotsSince(cron: string, timeZone: string, after: Date, now: Date): Date[] {
  // [from, to): whole minutes
  const to = Math.floor((now.getTime() - SLOT_GRACE_MS) / MINUTE) * MINUTE + MINUTE
  const from = Math.max(
    Math.floor(after.getTime() / MINUTE) * MINUTE,
    Math.floor((now.getTime() - LOOKBACK_MS) / MINUTE) * MINUTE,
  )
  const key = `${timeZone}\n${cron}`
  let entry = cache.get(key)
  if (!entry || from < entry.from || to < entry.to) {
    entry = { from, to: from, slots: [] }
    cache.set(key, entry)
  }
  if (to > entry.to) {
    const added = cronSlots(cron, new Date(entry.to - MINUTE), new Date(to), timeZone)
    entry.slots.push(...added.map((d) => d.getTime()))
    entry.to = to
  }
  // Keep the cache to the lookback of the newest call.
  const keep = Math.floor((now.getTime() - LOOKBACK_MS) / MINUTE) * MINUTE
  if (entry.from < keep) {
    entry.slots = entry.slots.filter((s) => s >= keep)
    entry.from = keep
  }
  if (cache.size > 100) cache.clear()
  const low = after.getTime()
  return entry.slots.filter((s) => s > low && s >= from && s < to).map((s) => new Date(s))
}
