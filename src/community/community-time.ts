/** The community's calendar: days begin at local midnight in its time zone (Asia/Shanghai by default). */

interface Parts {
  year: number
  month: number
  day: number
  hour: number
  minute: number
  second: number
}

/**
 * Per time zone: its formatter and the parts of the last two whole seconds asked for (a day's
 * start asks for two instants). Pushes arriving together ask for the same seconds, and
 * `formatToParts` is the costly part (≈ 20 µs a push on PostgreSQL check-ins).
 */
const zones = new Map<string, { format: Intl.DateTimeFormat; seen: [number, Parts][] }>()
function parts(at: Date, timeZone: string): Parts {
  const second = Math.floor(at.getTime() / 1000)
  let zone = zones.get(timeZone)
  if (!zone) {
    const format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    })
    zone = { format, seen: [] }
    zones.set(timeZone, zone)
  }
  for (const [s, known] of zone.seen) if (s === second) return known
  const p: Record<string, string> = {}
  for (const x of zone.format.formatToParts(at)) p[x.type] = x.value
  const computed: Parts = {
    year: Number(p.year),
    month: Number(p.month),
    day: Number(p.day),
    hour: Number(p.hour),
    minute: Number(p.minute),
    second: Number(p.second),
  }
  zone.seen.unshift([second, computed])
  zone.seen.length = Math.min(zone.seen.length, 2)
  return computed
}

/** The local calendar day of an instant, as `YYYY-MM-DD`. */
export function localDay(at: Date, timeZone: string): string {
  const p = parts(at, timeZone)
  return `${p.year}-${String(p.month).padStart(2, '0')}-${String(p.day).padStart(2, '0')}`
}

/** The instant of the next local midnight after `at`. */
export function nextLocalMidnight(at: Date, timeZone: string): Date {
  const p = parts(at, timeZone)
  // The zone's offset at `at`, then correct once in case midnight falls on the other side of a DST change.
  const offset =
    Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) -
    Math.floor(at.getTime() / 1000) * 1000
  let guess = Date.UTC(p.year, p.month - 1, p.day + 1) - offset
  const q = parts(new Date(guess), timeZone)
  if (q.hour !== 0) guess -= (q.hour >= 12 ? q.hour - 24 : q.hour) * 3600_000
  return new Date(guess)
}

/** The instant a community day `YYYY-MM-DD` starts (its local midnight). */
export function localDayStart(day: string, timeZone: string): Date {
  const [y, m, d] = day.split('-').map(Number) as [number, number, number]
  // Noon UTC of the day before is that day locally in every zone from −12 h to +11 h.
  return nextLocalMidnight(new Date(Date.UTC(y, m - 1, d - 1, 12)), timeZone)
}

/** `YYYY-MM-DD` plus `n` days (calendar arithmetic, no time zone involved). */
export function addDays(day: string, n: number): string {
  const [y, m, d] = day.split('-').map(Number) as [number, number, number]
  return new Date(Date.UTC(y, m - 1, d + n)).toISOString().slice(0, 10)
}

/** The Monday of the week containing `day`. */
export function weekStart(day: string): string {
  const [y, m, d] = day.split('-').map(Number) as [number, number, number]
  const weekday = (new Date(Date.UTC(y, m - 1, d)).getUTCDay() + 6) % 7
  return addDays(day, -weekday)
}

/** Minutes since local midnight (for daily windows). */
export function localMinutes(at: Date, timeZone: string): number {
  const p = parts(at, timeZone)
  return p.hour * 60 + p.minute
}

/** A daily quiet window in minutes after local midnight: [from, to), wrapping midnight. */
export interface QuietHours {
  from: number
  to: number
}

/**
 * When the quiet hours next begin from `at` (its minute when they begin then), or null without
 * quiet hours.
 */
export function quietHoursStart(at: Date, quiet: QuietHours | null, timeZone: string): Date | null {
  if (!quiet || quiet.from === quiet.to) return null
  const wait = (quiet.from - localMinutes(at, timeZone) + 1440) % 1440
  return new Date(Math.floor(at.getTime() / 60_000) * 60_000 + wait * 60_000)
}

/** The end of the quiet window `at` falls in, or null outside it (or with no window). */
export function quietHoursEnd(at: Date, quiet: QuietHours | null, timeZone: string): Date | null {
  if (!quiet || quiet.from === quiet.to) return null
  const m = localMinutes(at, timeZone)
  const inside =
    quiet.from < quiet.to ? m >= quiet.from && m < quiet.to : m >= quiet.from || m < quiet.to
  if (!inside) return null
  const wait = (quiet.to - m + 1440) % 1440
  return new Date(Math.floor(at.getTime() / 60_000) * 60_000 + wait * 60_000)
}
