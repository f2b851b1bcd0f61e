/**
 * Whether a five-field cron expression (minute hour day-of-month month day-of-week) matches a
 * moment in a time zone. Workers trigger once a minute in UTC; this decides which jobs — whose
 * cron is written in the community's time zone — are due. Supports `*`, numbers, lists, ranges
 * and steps (`*\/5`, `1-10/2`); day-of-week 0 or 7 is Sunday; when both day fields are
 * restricted either may match (as cron does).
 */
const RANGES: [number, number][] = [
  [0, 59],
  [0, 23],
  [1, 31],
  [1, 12],
  [0, 7],
]

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

/** The parts of a moment in a time zone. */
function parts(at: Date, timeZone: string) {
  const p = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      minute: 'numeric',
      hour: 'numeric',
      day: 'numeric',
      month: 'numeric',
      weekday: 'short',
    })
      .formatToParts(at)
      .map((x) => [x.type, x.value]),
  )
  const weekday = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'].indexOf(p.weekday!)
  return [Number(p.minute), Number(p.hour), Number(p.day), Number(p.month), weekday]
}

export function cronMatches(expression: string, at: Date, timeZone: string): boolean {
  const specs = expression.trim().split(/\s+/)
  if (specs.length !== 5) throw new RangeError(`cron needs 5 fields: ${expression}`)
  const sets = specs.map((s, i) => field(s, RANGES[i]!))
  if (sets[4]!.has(7)) sets[4]!.add(0)
  const [minute, hour, day, month, weekday] = parts(at, timeZone) as [
    number,
    number,
    number,
    number,
    number,
  ]
  if (!sets[0]!.has(minute) || !sets[1]!.has(hour) || !sets[3]!.has(month)) return false
  const dayRestricted = specs[2] !== '*'
  const weekRestricted = specs[4] !== '*'
  if (dayRestricted && weekRestricted) return sets[2]!.has(day) || sets[4]!.has(weekday)
  return sets[2]!.has(day) && sets[4]!.has(weekday)
}
