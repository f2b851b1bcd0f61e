/**
 * Check-ins and make-ups (补签) in random order over a few weeks, against a model of the calendar:
 * after every step the stored streaks are the consecutive days ending at each day, a streak bonus
 * is paid only where its run holds none for that length, every run holds a bonus for each length it
 * reaches, the month's rewards match its check-ins, make-ups stay within the monthly limit at the
 * rising cost, and Σ ledger == balance ≥ 0.
 *
 * Seam for the points-expiry work (issue #19): the Σ ledger == balance ≥ 0 property with expiry and
 * frozen points belongs there; it can add these two steps (checkIn / makeUpCheckin with a moving
 * `now`) to its own, and the calendar model (`streaksOf`, `runOf`) is here to lift if it wants it.
 */
import fc from 'fast-check'
import { sql } from 'kysely'
import { expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { makeUpCheckin } from './checkin-makeup.js'
import { type CheckinSettings, checkIn } from './checkins.js'
import { addDays } from './community-time.js'
import { applyDelta } from './points-ledger.js'

const TZ = 'Asia/Shanghai'
const APPID = 'wxmakeupprop000001'
const settings: CheckinSettings = {
  streakBonuses: { 2: 3, 4: 7, 6: 11 },
  monthlyRewards: { 3: 13, 5: 17 },
  makeup: { days: 5, perMonth: 2, costs: [19, 23] },
}
const START = '2026-10-24'
const at = (day: string) => new Date(`${day}T02:00:00Z`)

/** One step: move the calendar on, then check in today or make up (a day back, or the latest). */
interface Op {
  advance: number
  action: 'checkin' | 'makeup'
  back: number
}
const op = fc.record({
  advance: fc.integer({ min: 0, max: 2 }),
  action: fc.constantFrom('checkin' as const, 'makeup' as const),
  back: fc.integer({ min: 0, max: 7 }),
})

/** The streak of every day in `days`: consecutive days ending at it. */
function streaksOf(days: Set<string>): Map<string, number> {
  const out = new Map<string, number>()
  for (const d of [...days].sort()) out.set(d, (out.get(addDays(d, -1)) ?? 0) + 1)
  return out
}
/** The first and last day of the run holding `day`. */
function runOf(days: Set<string>, day: string): [string, string] {
  let [a, b] = [day, day]
  while (days.has(addDays(a, -1))) a = addDays(a, -1)
  while (days.has(addDays(b, 1))) b = addDays(b, 1)
  return [a, b]
}

forEachDatabase('check-ins and make-ups against a calendar model', (get) => {
  let n = 0
  it('keeps streaks, bonuses, monthly rewards, limits and the ledger right in any order', async () => {
    const db = get().db
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 120 }),
        fc.array(op, { minLength: 1, maxLength: 14 }),
        async (grant, ops: Op[]) => {
          const member = await db
            .insertInto('members')
            .values({
              appid: APPID,
              openid: `o_prop_${++n}`,
              first_seen_at: at(START),
              subscribed: true,
              subscribed_at: at(START),
            })
            .returningAll()
            .executeTakeFirstOrThrow()
          if (grant > 0)
            await applyDelta(
              db,
              member,
              {
                appid: APPID,
                memberId: member.id,
                rule: 'grant',
                idempotencyKey: `prop-grant-${member.id}`,
                now: at(START),
                timeZone: TZ,
              },
              grant,
            )
          const days = new Set<string>()
          const madeUp = new Map<string, number>() // month → make-ups
          let today = START
          let lastEntry = 0
          for (const o of ops) {
            today = addDays(today, o.advance)
            const base = {
              appid: APPID,
              memberId: member.id,
              now: at(today),
              timeZone: TZ,
              settings,
            }
            if (o.action === 'checkin') {
              const r = await checkIn(db, base)
              expect(r.status).toBe(days.has(today) ? 'already' : 'checked_in')
              days.add(today)
            } else {
              const day = o.back === 0 ? undefined : addDays(today, -o.back)
              const r = await makeUpCheckin(db, { ...base, day })
              if (r.status === 'made_up') {
                expect(days.has(r.day)).toBe(false)
                expect(r.day < today && r.day >= addDays(today, -5) && r.day >= START).toBe(true)
                const month = r.day.slice(0, 7)
                const k = madeUp.get(month) ?? 0
                expect(r.cost).toBe([19, 23][Math.min(k, 1)])
                madeUp.set(month, k + 1)
                days.add(r.day)
              } else if (r.status === 'limit') {
                expect(madeUp.get(r.day.slice(0, 7))).toBe(2)
              } else if (r.status === 'none') {
                for (let b = 1; b <= 5; b++) {
                  const d = addDays(today, -b)
                  if (d >= START) expect(days.has(d), d).toBe(true)
                }
              }
            }
            // the stored calendar is the model's
            const rows = await db
              .selectFrom('checkins')
              .select([sql<string>`day::text`.as('day'), 'streak'])
              .where('member_id', '=', member.id)
              .execute()
            expect(new Map(rows.map((r) => [r.day, r.streak]))).toEqual(streaksOf(days))
            // a bonus paid now: its run held none of that length before
            const entries = await db
              .selectFrom('points_ledger')
              .select(['id', 'rule', 'reference', 'idempotency_key'])
              .where('member_id', '=', member.id)
              .where('rule', '=', 'streak_bonus')
              .orderBy('id')
              .execute()
            const dayOf = (e: { idempotency_key: string }) => e.idempotency_key.split(':')[2]!
            for (const e of entries.filter((x) => Number(x.id) > lastEntry)) {
              const [a, b] = runOf(days, dayOf(e))
              const earlier = entries.filter(
                (x) =>
                  Number(x.id) < Number(e.id) &&
                  x.reference === e.reference &&
                  dayOf(x) >= a &&
                  dayOf(x) <= b,
              )
              expect(earlier, `${e.reference} on ${dayOf(e)}`).toEqual([])
            }
            lastEntry = Math.max(lastEntry, ...entries.map((e) => Number(e.id)))
            // every run holds a bonus for each length it reaches
            for (const [d, s] of streaksOf(days)) {
              if (!(s in settings.streakBonuses)) continue
              const [a, b] = runOf(days, d)
              expect(
                entries.some(
                  (e) => e.reference === `streak ${s}` && dayOf(e) >= a && dayOf(e) <= b,
                ),
                `streak ${s} in ${a}..${b}`,
              ).toBe(true)
            }
          }
          // monthly rewards: each reached threshold once
          const monthly = await db
            .selectFrom('points_ledger')
            .select('idempotency_key')
            .where('member_id', '=', member.id)
            .where('rule', '=', 'monthly_checkin')
            .execute()
          const expected = new Set<string>()
          for (const month of new Set([...days].map((d) => d.slice(0, 7)))) {
            const count = [...days].filter((d) => d.startsWith(month)).length
            for (const t of [3, 5])
              if (count >= t) expected.add(`monthly:${member.id}:${month}:${t}`)
          }
          expect(new Set(monthly.map((m) => m.idempotency_key))).toEqual(expected)
          // Σ ledger == balance ≥ 0
          const { sum } = await db
            .selectFrom('points_ledger')
            .select(sql<number>`coalesce(sum(delta), 0)::integer`.as('sum'))
            .where('member_id', '=', member.id)
            .executeTakeFirstOrThrow()
          const { points_balance } = await db
            .selectFrom('members')
            .select('points_balance')
            .where('id', '=', member.id)
            .executeTakeFirstOrThrow()
          expect(points_balance).toBe(sum)
          expect(points_balance).toBeGreaterThanOrEqual(0)
        },
      ),
      { numRuns: 25 },
    )
  }, 120_000)
})
