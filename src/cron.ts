/**
 * Five-field cron expressions (minute hour day-of-month month day-of-week) read in a time zone:
 * whether one matches a moment ({@link cronMatches}) and the minutes it matches in a range
 * ({@link cronSlots}). Workers trigger once a minute in UTC; this decides which jobs — whose cron is
 * written in the community's time zone — are due, and which slots were missed.
 *
 * Supports `*`, numbers, lists, ranges and steps (`*\/5`, `1-10/2`); day-of-week 0 or 7 is Sunday.
 * The two day fields follow Vixie cron (cronie, Debian's cron): when either of them starts with
 * `*` — `*` itself but also `*\/2` — a day must match both fields; only when neither starts with
 * `*` may it match either. So `0 0 *\/2 * 1` runs on odd days that are Mondays, while
 * `0 0 1,15 * 1` runs on the 1st, the 15th and every Monday.
 */
const RANGES: [number, number][] = [
  [0, 59],
  [0, 23],
  [1, 31],
  [1, 12],
  [0, 7],
]

/** A parsed expression: the allowed values of each field, and the Vixie day rule. */
interface Compiled {
  minute: Set<number>
  hour: Set<number>
  day: Set<number>
  month: Set<number>
  weekday: Set<number>
  /** Neither day field starts with `*`: either may match. */
  eitherDay: boolean
}

function field(spec: string, [min, max]: [number, number]): Set<number> {
  const values = new Set<number>()
  for (const part of spec.split(',')) {
    const m = /^(\*|\d+(?:-\d+)?)(?:\/(\d+))?$/.exec(part)
    if (!m) throw new RangeError(`bad cron field: ${spec}`)
    const [from, to] =
      m[1] === '*' ? [min, max] : (m[1]!.split('-').map(Number) as [number, number?])
    const end = to ?? (m[2] ? max : from)
    const step = m[2] ? Number(m[2]) : 1
    if (from < min || end > max || from > end || step < 1)
      throw new RangeError(`bad cron field: ${spec}`)
    for (let v = from; v <= end; v += step) values.add(v)
  }
  return values
}

const compiled = new Map<string, Compiled>()

function compile(expression: string): Compiled {
  const hit = compiled.get(expression)
  if (hit) return hit
  const specs = expression.trim().split(/\s+/)
  if (specs.length !== 5) throw new RangeError(`cron needs 5 fields: ${expression}`)
  const [minute, hour, day, month, weekday] = specs.map((s, i) => field(s, RANGES[i]!)) as [
    Set<number>,
    Set<number>,
    Set<number>,
    Set<number>,
    Set<number>,
  ]
  if (weekday.has(7)) weekday.add(0)
  const c = {
    minute,
    hour,
    day,
    month,
    weekday,
    eitherDay: !specs[2]!.startsWith('*') && !specs[4]!.startsWith('*'),
  }
  if (compiled.size >= 1000) compiled.clear() // expressions come from config and operators: few
  compiled.set(expression, c)
  return c
}

const formats = new Map<string, Intl.DateTimeFormat>()
const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat']

/** The parts of a moment in a time zone: minute, hour, day, month, weekday (0 = Sunday). */
function parts(at: Date, timeZone: string): [number, number, number, number, number] {
  let format = formats.get(timeZone)
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      minute: 'numeric',
      hour: 'numeric',
      day: 'numeric',
      month: 'numeric',
      weekday: 'short',
    })
    formats.set(timeZone, format)
  }
  const p: Record<string, string> = {}
  for (const x of format.formatToParts(at)) p[x.type] = x.value
  return [
    Number(p.minute),
    Number(p.hour),
    Number(p.day),
    Number(p.month),
    WEEKDAYS.indexOf(p.weekday!),
  ]
}

/** Whether the hour and day of `p` match (the minute aside). */
function hourMatches(c: Compiled, [, hour, day, month, weekday]: ReturnType<typeof parts>) {
  if (!c.hour.has(hour) || !c.month.has(month)) return false
  return c.eitherDay
    ? c.day.has(day) || c.weekday.has(weekday)
    : c.day.has(day) && c.weekday.has(weekday)
}

function matches(c: Compiled, at: Date, timeZone: string): boolean {
  const p = parts(at, timeZone)
  return c.minute.has(p[0]) && hourMatches(c, p)
}

/**
 * Whether `expression` matches the minute of `at` in `timeZone` (seconds are ignored). Throws
 * RangeError on a malformed expression.
 * @example cronMatches('0 9 * * 1-5', new Date('2026-11-25T01:00:00Z'), 'Asia/Shanghai') // true
 */
export function cronMatches(expression: string, at: Date, timeZone: string): boolean {
  return matches(compile(expression), at, timeZone)
}

/**
 * The whole minutes strictly between `fromExclusive` and `toExclusive` that `expression` matches
 * in `timeZone`, oldest first. One step per minute in matching hours, one per hour elsewhere (four
 * weeks of a daily cron: ~700 + 28 × 60 steps); the caller bounds the range. Throws RangeError on a malformed expression.
 * @example cronSlots('0 * * * *', new Date('2026-11-25T01:00Z'), new Date('2026-11-25T03:00Z'), 'UTC')
 * // [2026-11-25T02:00Z]
 */
export function cronSlots(
  expression: string,
  fromExclusive: Date,
  toExclusive: Date,
  timeZone: string,
): Date[] {
  const c = compile(expression)
  const slots: Date[] = []
  const end = toExclusive.getTime()
  for (let t = (Math.floor(fromExclusive.getTime() / 60_000) + 1) * 60_000; t < end; ) {
    const at = new Date(t)
    const p = parts(at, timeZone)
    // An hour whose hour or day does not match is skipped whole: to the next local hour.
    if (!hourMatches(c, p)) {
      t += (60 - p[0]) * 60_000
      continue
    }
    if (c.minute.has(p[0])) slots.push(at)
    t += 60_000
  }
  return slots
}
