import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { makeUpCheckin, parseMakeupDay } from './checkin-makeup.js'
import { type CheckinSettings, checkIn, checkinStats } from './checkins.js'
import { applyDelta, withMemberLocked } from './points-ledger.js'

const TZ = 'Asia/Shanghai'
const APPID = 'wxmakeup00000000001'
const settings: CheckinSettings = {
  streakBonuses: { 3: 20, 7: 50 },
  makeup: { days: 7, perMonth: 2, costs: [20, 40] },
}
/** One streak through 11-01..11-07, as `streaks()` lists it. */
const WEEK_RUN = Object.fromEntries(Array.from({ length: 7 }, (_, i) => [`11-0${i + 1}`, i + 1]))
/** 10:00 community time on `day`. */
const at = (day: string) => new Date(`${day}T02:00:00Z`)

describe('parseMakeupDay', () => {
  const today = '2026-01-03'
  it('reads the date forms people type', () => {
    expect(parseMakeupDay('', today)).toBeUndefined()
    expect(parseMakeupDay('  ', today)).toBeUndefined()
    expect(parseMakeupDay('昨天', today)).toBe('2026-01-02')
    expect(parseMakeupDay('前天', today)).toBe('2026-01-01')
    expect(parseMakeupDay('Yesterday', today)).toBe('2026-01-02')
    expect(parseMakeupDay('2025-12-30', today)).toBe('2025-12-30')
    expect(parseMakeupDay('2025/12/30', today)).toBe('2025-12-30')
    expect(parseMakeupDay('2025年12月30日', today)).toBe('2025-12-30')
    // without a year: the nearest such date (across the new year)
    expect(parseMakeupDay('12-30', today)).toBe('2025-12-30')
    expect(parseMakeupDay('12月30号', today)).toBe('2025-12-30')
    expect(parseMakeupDay('1/2', today)).toBe('2026-01-02')
    expect(parseMakeupDay('1.5', today)).toBe('2026-01-05')
    // a day of the month: this month or a neighbour, whichever is nearer
    expect(parseMakeupDay('31日', today)).toBe('2025-12-31')
    expect(parseMakeupDay('2号', today)).toBe('2026-01-02')
  })

  it('refuses what is not a calendar date', () => {
    for (const bad of ['abc', '13-01', '2-30', '2026-02-29', '0-5', '32日', '2026-1', '1-2-3-4'])
      expect(parseMakeupDay(bad, today), bad).toBeNull()
    expect(parseMakeupDay('2028-02-29', today)).toBe('2028-02-29')
  })
})

forEachDatabase('make-up check-ins (补签)', (get, dbName) => {
  let n = 0
  async function member(followed = '2026-10-01', points = 500) {
    const row = await get()
      .db.insertInto('members')
      .values({
        appid: APPID,
        openid: `o_makeup_${++n}`,
        first_seen_at: at('2026-09-01'),
        subscribed: true,
        subscribed_at: at(followed),
        last_active_at: at(followed),
      })
      .returningAll()
      .executeTakeFirstOrThrow()
    if (points > 0) await grant(row.id, points)
    return row.id
  }
  const grant = (id: number, points: number) =>
    withMemberLocked(get().db, id, (trx, m) =>
      applyDelta(
        trx,
        m,
        {
          appid: APPID,
          memberId: id,
          rule: 'grant',
          idempotencyKey: `makeup-grant-${id}-${points}-${Math.random()}`,
          now: at('2026-10-01'),
          timeZone: TZ,
        },
        points,
      ),
    )
  const checkin = (id: number, day: string, s = settings) =>
    checkIn(get().db, { appid: APPID, memberId: id, now: at(day), timeZone: TZ, settings: s })
  const makeUp = (id: number, today: string, day?: string, s = settings, db = get().db) =>
    makeUpCheckin(db, {
      appid: APPID,
      memberId: id,
      now: at(today),
      timeZone: TZ,
      settings: s,
      day,
    })
  const streaks = async (id: number) =>
    Object.fromEntries(
      (
        await get()
          .db.selectFrom('checkins')
          .select([sql<string>`day::text`.as('day'), 'streak'])
          .where('member_id', '=', id)
          .orderBy('day')
          .execute()
      ).map((r) => [r.day.slice(5), r.streak]),
    )
  const entries = (id: number, rule: string) =>
    get()
      .db.selectFrom('points_ledger')
      .select(['delta', 'reference', 'idempotency_key'])
      .where('member_id', '=', id)
      .where('rule', '=', rule)
      .orderBy('id')
      .execute()
  /** Σ ledger == cached balance ≥ 0. */
  async function expectLedgerAddsUp(id: number) {
    const { sum } = await get()
      .db.selectFrom('points_ledger')
      .select(sql<number>`coalesce(sum(delta), 0)::integer`.as('sum'))
      .where('member_id', '=', id)
      .where('state', '=', 'available')
      .executeTakeFirstOrThrow()
    const m = await get()
      .db.selectFrom('members')
      .select('points_balance')
      .where('id', '=', id)
      .executeTakeFirstOrThrow()
    expect(m.points_balance).toBe(sum)
    expect(m.points_balance).toBeGreaterThanOrEqual(0)
    return m.points_balance
  }

  it('joins two runs: the streak is recomputed and the longer run’s bonus paid once', async () => {
    const id = await member()
    for (const d of ['01', '02', '03', '05', '06', '07']) await checkin(id, `2026-11-${d}`)
    // two 3-day runs, each paid the 3-day bonus
    expect((await entries(id, 'streak_bonus')).map((e) => e.delta)).toEqual([20, 20])
    const r = await makeUp(id, '2026-11-08', '2026-11-04')
    expect(r).toMatchObject({
      status: 'made_up',
      day: '2026-11-04',
      cost: 20,
      used: 1,
      perMonth: 2,
      streak: 7,
      bonuses: [{ streak: 7, points: 50 }],
      monthly: null,
      // 500 + 6 × 5 + 2 × 20 − 20 + 50
      balance: 600,
    })
    expect(await streaks(id)).toEqual(WEEK_RUN)
    // today's check-in continues the run; no bonus is paid again
    expect(await checkin(id, '2026-11-08')).toMatchObject({ streak: 8, bonus: 0 })
    expect((await entries(id, 'streak_bonus')).map((e) => e.reference)).toEqual([
      'streak 3',
      'streak 3',
      'streak 7',
    ])
    expect(await entries(id, 'checkin_makeup')).toEqual([
      { delta: -20, reference: 'makeup 2026-11-04', idempotency_key: `makeup:${id}:2026-11-04` },
    ])
    const stats = await checkinStats(get().db, id, at('2026-11-08'), TZ)
    expect(stats).toMatchObject({ streak: 8, total: 8, monthDays: 8, monthMadeUp: 1 })
    await expectLedgerAddsUp(id)
  })

  it('never pays a streak length twice inside one run; a bare 补签 fills the latest missed day', async () => {
    const id = await member()
    for (const d of ['01', '02', '04', '05', '06']) await checkin(id, `2026-11-${d}`)
    // 11-04..06 reached 3 and was paid. A bare 补签 fills 11-07 (the latest missed day)…
    expect(await makeUp(id, '2026-11-08')).toMatchObject({
      status: 'made_up',
      day: '2026-11-07',
      cost: 20,
      streak: 4,
      bonuses: [],
    })
    // …then 11-03, which joins 11-01..02 to 11-04..07: 11-03 is the run's 3rd day, but the run
    // holds a 3-day bonus already (paid on 11-06); its 7th day (11-07) is paid
    expect(await makeUp(id, '2026-11-08')).toMatchObject({
      status: 'made_up',
      day: '2026-11-03',
      cost: 40,
      used: 2,
      streak: 7,
      bonuses: [{ streak: 7, points: 50 }],
    })
    expect(await streaks(id)).toEqual(WEEK_RUN)
    expect((await entries(id, 'streak_bonus')).map((e) => e.reference)).toEqual([
      'streak 3',
      'streak 7',
    ])
    expect(await makeUp(id, '2026-11-08', '2026-11-08')).toEqual({ status: 'today' })
    expect(await makeUp(id, '2026-11-08')).toEqual({ status: 'none', days: 7 })
    expect(await checkinStats(get().db, id, at('2026-11-08'), TZ)).toMatchObject({
      streak: 7,
      monthMadeUp: 2,
    })
    await expectLedgerAddsUp(id)
  })

  it('keeps to the window, the follow day, the monthly limit and the balance; refusals change nothing', async () => {
    const id = await member('2026-11-06', 30)
    const today = '2026-11-12'
    expect(await makeUp(id, today, '2026-11-12')).toEqual({ status: 'today' })
    expect(await makeUp(id, today, '2026-11-13')).toEqual({ status: 'future', day: '2026-11-13' })
    expect(await makeUp(id, today, '2026-11-04')).toEqual({
      status: 'too_old',
      day: '2026-11-04',
      earliest: '2026-11-05',
      days: 7,
    })
    expect(await makeUp(id, today, '2026-11-05')).toEqual({
      status: 'before_follow',
      day: '2026-11-05',
      follow: '2026-11-06',
    })
    expect(await makeUp(id, today, '2026-11-10')).toMatchObject({ status: 'made_up', cost: 20 })
    // the second make-up of the month costs 40: 10 points are not enough
    expect(await makeUp(id, today, '2026-11-09')).toEqual({
      status: 'insufficient',
      day: '2026-11-09',
      cost: 40,
      balance: 10,
    })
    expect(await makeUp(id, today, '2026-11-10')).toEqual({ status: 'already', day: '2026-11-10' })
    await grant(id, 100)
    expect(await makeUp(id, today, '2026-11-09')).toMatchObject({
      status: 'made_up',
      cost: 40,
      balance: 70,
    })
    expect(await makeUp(id, today, '2026-11-08')).toEqual({
      status: 'limit',
      day: '2026-11-08',
      perMonth: 2,
    })
    expect(await streaks(id)).toEqual({ '11-09': 1, '11-10': 2 })
    expect((await entries(id, 'checkin_makeup')).map((e) => e.delta)).toEqual([-20, -40])
    expect(await expectLedgerAddsUp(id)).toBe(70)
    // nothing missed since the follow
    const full = await member('2026-11-10')
    await checkin(full, '2026-11-10')
    await checkin(full, '2026-11-11')
    expect(await makeUp(full, today)).toEqual({ status: 'none', days: 7 })
    // disabled by configuration
    const off = { ...settings, makeup: { days: 7, perMonth: 0, costs: [] } }
    expect(await makeUp(full, today, undefined, off)).toEqual({ status: 'disabled' })
  })

  it('is free when no cost is configured, and the cost past the list is the last amount', async () => {
    const free = { ...settings, makeup: { days: 7, perMonth: 3, costs: [] } }
    const id = await member('2026-10-01', 0)
    expect(await makeUp(id, '2026-11-12', '2026-11-11', free)).toMatchObject({
      status: 'made_up',
      cost: 0,
      balance: 0,
    })
    expect(await entries(id, 'checkin_makeup')).toEqual([])
    const rising = { ...settings, makeup: { days: 7, perMonth: 3, costs: [5, 15] } }
    const costs = []
    for (const d of ['09', '08'])
      costs.push((await makeUp(id, '2026-11-12', `2026-11-${d}`, rising)).status)
    expect(costs).toEqual(['insufficient', 'insufficient'])
    await grant(id, 100)
    const paid = []
    for (const d of ['10', '09'])
      paid.push(((await makeUp(id, '2026-11-12', `2026-11-${d}`, rising)) as { cost: number }).cost)
    // the 2nd and 3rd of the month: 15, then 15 again (past the list)
    expect(paid).toEqual([15, 15])
  })

  it('pays cumulative monthly rewards once per month, make-ups included', async () => {
    const monthly = { ...settings, streakBonuses: {}, monthlyRewards: { 3: 10, 4: 15 } }
    const id = await member()
    await checkin(id, '2026-10-30', monthly)
    await checkin(id, '2026-11-01', monthly)
    expect(await checkin(id, '2026-11-02', monthly)).toMatchObject({
      monthly: { days: 2, bonus: 0, paid: [] },
    })
    expect(await checkin(id, '2026-11-04', monthly)).toMatchObject({
      points: 5,
      monthly: { days: 3, bonus: 10, paid: [{ days: 3, points: 10 }] },
      balance: 500 + 4 * 5 + 10,
    })
    // the filled day is the 4th of November
    expect(await makeUp(id, '2026-11-05', '2026-11-03', monthly)).toMatchObject({
      status: 'made_up',
      monthly: { days: 4, bonus: 15, paid: [{ days: 4, points: 15 }] },
      balance: 500 + 4 * 5 + 10 - 20 + 15,
    })
    // …and counts for October when it fills an October day
    expect(await makeUp(id, '2026-11-05', '2026-10-31', monthly)).toMatchObject({
      status: 'made_up',
      cost: 20,
      monthly: { days: 2, bonus: 0 },
    })
    expect(await checkin(id, '2026-11-05', monthly)).toMatchObject({
      monthly: { days: 5, bonus: 0, paid: [] },
    })
    expect((await entries(id, 'monthly_checkin')).map((e) => e.idempotency_key)).toEqual([
      `monthly:${id}:2026-11:3`,
      `monthly:${id}:2026-11:4`,
    ])
    // the check-in rows hold what each day earned, make-ups their rewards
    const row = await get()
      .db.selectFrom('checkins')
      .select(['points', 'made_up_at'])
      .where('member_id', '=', id)
      .where('day', '=', '2026-11-03')
      .executeTakeFirstOrThrow()
    expect(row.points).toBe(15)
    expect(row.made_up_at).not.toBeNull()
    await expectLedgerAddsUp(id)
  })

  it('makes a day up exactly once under parallel make-ups', async () => {
    const id = await member()
    const pools = dbName === 'postgres' ? [get().db, get().open(), get().open()] : [get().db]
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        makeUp(id, '2026-11-10', '2026-11-08', settings, pools[i % pools.length]),
      ),
    )
    expect(results.filter((r) => r.status === 'made_up')).toHaveLength(1)
    expect(results.filter((r) => r.status === 'already')).toHaveLength(29)
    expect(await entries(id, 'checkin_makeup')).toHaveLength(1)
    expect(await expectLedgerAddsUp(id)).toBe(480)
  })

  it('keeps the monthly limit and the rising cost under parallel make-ups of different days', async () => {
    const id = await member()
    const pools = dbName === 'postgres' ? [get().db, get().open(), get().open()] : [get().db]
    const days = ['04', '05', '06', '07', '08', '09']
    const results = await Promise.all(
      days.flatMap((d, i) =>
        [0, 1, 2].map((k) =>
          makeUp(id, '2026-11-10', `2026-11-${d}`, settings, pools[(i + k) % pools.length]),
        ),
      ),
    )
    const made = results.filter((r) => r.status === 'made_up')
    expect(made.map((r) => r.cost).sort()).toEqual([20, 40])
    expect((await entries(id, 'checkin_makeup')).map((e) => e.delta)).toEqual([-20, -40])
    expect(await expectLedgerAddsUp(id)).toBe(440)
  })

  it('pays each streak bonus once when check-ins and make-ups race', async () => {
    const id = await member()
    await checkin(id, '2026-11-07')
    const pools = dbName === 'postgres' ? [get().db, get().open(), get().open()] : [get().db]
    const today = '2026-11-10'
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => {
        const db = pools[i % pools.length]!
        if (i % 3 === 0)
          return checkIn(db, { appid: APPID, memberId: id, now: at(today), timeZone: TZ, settings })
        return makeUp(id, today, i % 3 === 1 ? '2026-11-09' : '2026-11-08', settings, db)
      }),
    )
    expect(results.filter((r) => r.status === 'made_up')).toHaveLength(2)
    expect(results.filter((r) => r.status === 'checked_in')).toHaveLength(1)
    expect(await streaks(id)).toEqual({ '11-07': 1, '11-08': 2, '11-09': 3, '11-10': 4 })
    expect((await entries(id, 'streak_bonus')).map((e) => [e.delta, e.reference])).toEqual([
      [20, 'streak 3'],
    ])
    // 500 + 2 × 5 − 20 − 40 + 20
    expect(await expectLedgerAddsUp(id)).toBe(470)
  })
})
