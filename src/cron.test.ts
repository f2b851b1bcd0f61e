import { describe, expect, it, vi } from 'vitest'
import { cronMatches, cronSlots } from './cron.js'

const at = (iso: string) => new Date(iso)

describe('cronMatches', () => {
  it('matches in the community time zone', () => {
    // 09:00 in Shanghai is 01:00 UTC
    expect(cronMatches('0 9 * * *', at('2026-11-25T01:00:00Z'), 'Asia/Shanghai')).toBe(true)
    expect(cronMatches('0 9 * * *', at('2026-11-25T09:00:00Z'), 'Asia/Shanghai')).toBe(false)
    expect(cronMatches('* * * * *', at('2026-11-25T09:07:00Z'), 'UTC')).toBe(true)
  })
  it('handles steps, lists, ranges and the day-of-month / day-of-week rule', () => {
    expect(cronMatches('*/15 * * * *', at('2026-11-25T10:45:00Z'), 'UTC')).toBe(true)
    expect(cronMatches('*/15 * * * *', at('2026-11-25T10:46:00Z'), 'UTC')).toBe(false)
    expect(cronMatches('0 8-18/2 * * 1-5', at('2026-11-25T10:00:00Z'), 'UTC')).toBe(true) // Wed
    expect(cronMatches('0 8-18/2 * * 1-5', at('2026-11-29T10:00:00Z'), 'UTC')).toBe(false) // Sun
    expect(cronMatches('0 0 * * 0', at('2026-11-29T00:00:00Z'), 'UTC')).toBe(true)
    expect(cronMatches('0 0 * * 7', at('2026-11-29T00:00:00Z'), 'UTC')).toBe(true)
    // both day fields restricted: either matches (the 1st, or any Monday)
    expect(cronMatches('0 0 1 * 1', at('2026-11-30T00:00:00Z'), 'UTC')).toBe(true)
    expect(cronMatches('0 0 1,15 * *', at('2026-11-15T00:00:00Z'), 'UTC')).toBe(true)
  })
  it('reads a day field starting with * (also */n) as unrestricted, as Vixie cron does', () => {
    // */2 in day-of-month starts with *: the day must match both fields — odd days that are Mondays
    const oddMondays = '0 0 */2 * 1'
    expect(cronMatches(oddMondays, at('2026-11-09T00:00:00Z'), 'UTC')).toBe(true) // Mon 9th
    expect(cronMatches(oddMondays, at('2026-11-23T00:00:00Z'), 'UTC')).toBe(true) // Mon 23rd
    expect(cronMatches(oddMondays, at('2026-11-02T00:00:00Z'), 'UTC')).toBe(false) // Mon 2nd
    expect(cronMatches(oddMondays, at('2026-11-03T00:00:00Z'), 'UTC')).toBe(false) // Tue 3rd
    // and in day-of-week: the 1st, when it is a Sunday, Tuesday, Thursday or Saturday
    const firsts = '0 0 1 * */2'
    expect(cronMatches(firsts, at('2026-11-01T00:00:00Z'), 'UTC')).toBe(true) // Sun 1st
    expect(cronMatches(firsts, at('2027-01-01T00:00:00Z'), 'UTC')).toBe(false) // Fri 1st
    expect(cronMatches(firsts, at('2026-11-03T00:00:00Z'), 'UTC')).toBe(false) // Tue 3rd
    // neither starts with *: either field may match
    expect(cronMatches('0 0 1-31/2 * 1', at('2026-11-02T00:00:00Z'), 'UTC')).toBe(true) // Mon 2nd
    expect(cronMatches('0 0 1-31/2 * 1', at('2026-11-03T00:00:00Z'), 'UTC')).toBe(true) // Tue 3rd
  })
  it('refuses malformed expressions', () => {
    for (const bad of ['* * * *', '61 * * * *', '*/0 * * * *', 'a * * * *', '5-1 * * * *'])
      expect(() => cronMatches(bad, new Date(), 'UTC'), bad).toThrow(RangeError)
  })
})

describe('cronSlots', () => {
  it('lists the matching minutes strictly between two moments, in the time zone', () => {
    expect(
      cronSlots(
        '0 9 * * *',
        at('2026-11-25T01:00:00Z'),
        at('2026-11-27T01:00:00Z'),
        'Asia/Shanghai',
      ),
    ).toEqual([at('2026-11-26T01:00:00Z')])
    expect(
      cronSlots('*/20 * * * *', at('2026-11-25T10:00:30Z'), at('2026-11-25T11:00:00Z'), 'UTC'),
    ).toEqual([at('2026-11-25T10:20:00Z'), at('2026-11-25T10:40:00Z')])
    expect(
      cronSlots('* * * * *', at('2026-11-25T10:00:00Z'), at('2026-11-25T10:00:59Z'), 'UTC'),
    ).toEqual([])
    expect(() => cronSlots('* * * *', new Date(0), new Date(60_000), 'UTC')).toThrow(RangeError)
  })
  it('walks a day in one step per minute of matching hours, one per hour elsewhere (the catch-up bound)', () => {
    // Counted in steps (each step formats one moment in the zone), not in milliseconds.
    const from = at('2026-11-25T00:00:00Z')
    const to = at('2026-11-26T00:00:00Z')
    const steps = vi.spyOn(Intl.DateTimeFormat.prototype, 'formatToParts')
    try {
      const every = cronSlots('* * * * *', from, to, 'Asia/Shanghai')
      expect(every).toHaveLength(1439)
      expect(steps).toHaveBeenCalledTimes(1439)
      steps.mockClear()
      const nightly = cronSlots('17 4 * * *', from, to, 'Asia/Shanghai')
      expect(nightly).toEqual([at('2026-11-25T20:17:00Z')])
      // 60 minutes of the matching hour (04:00 in Shanghai), one step for each of the other 23
      expect(steps).toHaveBeenCalledTimes(60 + 23)
      // one formatter per zone for every step of every walk, kept from its first use
      steps.mockClear()
      cronSlots('17 4 * * *', from, to, 'Asia/Kathmandu')
      cronSlots('17 4 * * *', from, to, 'Asia/Kathmandu')
      expect(new Set(steps.mock.contexts).size).toBe(1)
    } finally {
      steps.mockRestore()
    }
  })
  it('skips non-matching hours yet finds what a minute-by-minute scan finds, in any offset', () => {
    const from = at('2026-03-27T00:00:00Z')
    const to = at('2026-04-03T00:00:00Z') // across Europe's spring change
    for (const zone of ['Asia/Kolkata', 'Europe/Berlin', 'Asia/Shanghai'])
      for (const cron of ['0 20 * * 3', '*/20 9-10 * * *', '30 2 * * 0', '5 0 1,31 * *']) {
        const scanned: Date[] = []
        for (let t = from.getTime() + 60_000; t < to.getTime(); t += 60_000)
          if (cronMatches(cron, new Date(t), zone)) scanned.push(new Date(t))
        expect(cronSlots(cron, from, to, zone), `${cron} in ${zone}`).toEqual(scanned)
      }
  })
})
