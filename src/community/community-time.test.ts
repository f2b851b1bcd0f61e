import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { localDay, localMinutes, nextLocalMidnight } from './community-time.js'

/** The same answers from a formatter made for each call: what the cached parts must equal. */
function reference(at: Date, timeZone: string) {
  const p = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    })
      .formatToParts(at)
      .map((x) => [x.type, x.value]),
  )
  return {
    day: `${p.year}-${p.month}-${p.day}`,
    minutes: Number(p.hour) * 60 + Number(p.minute),
    seconds: Number(p.hour) * 3600 + Number(p.minute) * 60 + Number(p.second),
  }
}

const ZONES = ['Asia/Shanghai', 'America/New_York', 'Europe/London', 'Australia/Lord_Howe']

describe('community time', () => {
  it('answers every instant as a fresh formatter does, whatever was asked before (cached seconds)', () => {
    // Instants clustered around DST changes and midnights, asked in any order and repeated within
    // a second: a cache keyed on anything coarser than the instant's second would answer wrong.
    const base = Date.UTC(2026, 2, 8, 4, 59, 59) // 2026-03-08 00:59:59 in New York, before its change
    const instant = fc
      .tuple(fc.integer({ min: -3 * 86_400, max: 3 * 86_400 }), fc.integer({ min: 0, max: 999 }))
      .map(([s, ms]) => new Date(base + s * 1000 + ms))
    fc.assert(
      fc.property(
        fc.array(fc.tuple(instant, fc.constantFrom(...ZONES)), { minLength: 1, maxLength: 40 }),
        (asks) => {
          for (const [at, zone] of asks) {
            const want = reference(at, zone)
            expect(localDay(at, zone)).toBe(want.day)
            expect(localMinutes(at, zone)).toBe(want.minutes)
            const midnight = nextLocalMidnight(at, zone)
            // Exactly the next local midnight: 00:00:00.000 there, less than 26 hours ahead.
            expect(reference(midnight, zone).seconds).toBe(0)
            expect(midnight.getTime() % 1000).toBe(0)
            expect(midnight.getTime()).toBeGreaterThan(at.getTime())
            expect(midnight.getTime() - at.getTime()).toBeLessThanOrEqual(26 * 3_600_000)
          }
        },
      ),
      { numRuns: 300 },
    )
  })

  it('tells two instants of the same second apart from the neighbouring seconds', () => {
    const zone = 'Asia/Shanghai'
    const lastOfDay = new Date(Date.UTC(2026, 11, 3, 15, 59, 59, 10)) // 23:59:59.010 local
    expect(localDay(lastOfDay, zone)).toBe('2026-12-03')
    expect(localDay(new Date(lastOfDay.getTime() + 900), zone)).toBe('2026-12-03')
    expect(localDay(new Date(lastOfDay.getTime() + 990), zone)).toBe('2026-12-04')
    expect(localDay(lastOfDay, zone)).toBe('2026-12-03')
  })
})
