import { sql } from 'kysely'
import { expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { countStatements } from '../../test/statement-counter.js'
import {
  type CheckinInput,
  type CheckinResult,
  type CheckinSettings,
  checkIn,
  checkinStatements,
} from './checkins.js'

const TZ = 'Asia/Shanghai'
const settings: CheckinSettings = {
  streakBonuses: { 3: 20 },
  monthlyRewards: { 3: 10 },
  makeup: { days: 7, perMonth: 2, costs: [20, 40] },
}
/** 10:00 community time on `day`. */
const at = (day: string) => new Date(`${day}T02:00:00Z`)
const TODAY = '2026-11-18'
/** Another account's rules: other bonuses and rewards, make-ups off. */
const other: CheckinSettings = {
  streakBonuses: { 2: 7, 3: 30 },
  monthlyRewards: { 2: 4 },
  makeup: { days: 0, perMonth: 0, costs: [] },
}

forEachDatabase('batched check-ins', (get) => {
  let n = 0
  const appid = () => `wxbatch${String(++n).padStart(11, '0')}`
  async function member(app: string, openid: string) {
    const row = await get()
      .db.insertInto('members')
      .values({ appid: app, openid, first_seen_at: at('2026-10-01'), subscribed: true })
      .returning('id')
      .executeTakeFirstOrThrow()
    return row.id
  }
  const badgeRule = (app: string) =>
    get()
      .db.insertInto('badge_rules')
      .values({
        appid: app,
        key: 'three_days',
        name: '三天',
        predicate: JSON.stringify({ counter: 'checkins', atLeast: 3 }),
        enabled: true,
      })
      .execute()

  /**
   * One account's members in every state a check-in meets: new, on a streak that reaches its bonus,
   * the monthly reward and a badge today, broken within the make-up window, already checked in
   * today — and the first of them checking in twice at once. Returns today's calls.
   */
  async function community(app: string, rules = settings) {
    const alone = (app: string, id: number, day: string): Promise<CheckinResult> =>
      checkIn(get().db, { appid: app, memberId: id, now: at(day), timeZone: TZ, settings: rules })
    await badgeRule(app)
    const fresh = await member(app, 'o_d')
    const streak = await member(app, 'o_b')
    for (const day of ['2026-11-16', '2026-11-17']) await alone(app, streak, day)
    const broke = await member(app, 'o_e')
    await alone(app, broke, '2026-11-15')
    const already = await member(app, 'o_a')
    await alone(app, already, TODAY)
    const calls: (CheckinInput & { openid: string })[] = [
      [fresh, 'o_d'],
      [streak, 'o_b'],
      [broke, 'o_e'],
      [already, 'o_a'],
      [fresh, 'o_d'],
    ].map(([memberId, openid]) => ({
      appid: app,
      memberId: memberId as number,
      openid: openid as string,
      now: at(TODAY),
      timeZone: TZ,
      settings: rules,
    }))
    return { calls, members: [fresh, streak, broke, already] }
  }
  /** What the database holds for these members, by their position. */
  const state = async (members: number[]) => {
    const { rows } = await sql<{ m: number; ledger: string; checkins: string; balance: number }>`
      select m.id as m, m.points_balance as balance,
        (select string_agg(rule || ' ' || delta, ', ' order by id) from points_ledger
          where member_id = m.id) as ledger,
        (select string_agg(day::text || '/' || streak, ', ' order by day) from checkins
          where member_id = m.id) as checkins
      from members m where m.id in (${sql.join(members)})`.execute(get().db)
    return members.map((id) => {
      const { m: _, ...rest } = rows.find((r) => Number(r.m) === id)!
      return rest
    })
  }

  it('a batch gives each check-in what it gets alone, in one statement', async () => {
    // Two accounts with their own rules in one batch, and their twins checked in one by one.
    const batched = [await community(appid()), await community(appid(), other)]
    const single = [await community(appid()), await community(appid(), other)]
    const counted = countStatements(get().db)
    const run = checkinStatements(counted.db)
    const together = await Promise.all(
      batched.flatMap((b) => b.calls).map((c) => checkIn(get().db, Object.assign({}, c, { run }))),
    )
    expect(counted.count()).toBe(1)
    const oneByOne: CheckinResult[] = []
    for (const c of single.flatMap((s) => s.calls)) oneByOne.push(await checkIn(get().db, c))
    expect(together).toEqual(oneByOne)
    // Every state met: the bonus, the monthly reward, the badge, the make-up offer, already.
    const states = ['checked_in', 'checked_in', 'checked_in', 'already', 'already']
    expect(together.map((r) => r.status)).toEqual([...states, ...states])
    expect(together[1]).toMatchObject({
      streak: 3,
      bonus: 20,
      monthly: { days: 3, bonus: 10 },
      badges: [{ key: 'three_days' }],
    })
    expect(together[2]).toMatchObject({ streak: 1, makeup: { cost: 20, left: 2 } })
    // the other account's rules: its bonus on day 3 (day 2's paid before), its reward, no make-ups
    expect(together[6]).toMatchObject({ streak: 3, bonus: 30, monthly: { days: 3, bonus: 0 } })
    expect(together[7]).toMatchObject({ streak: 1, makeup: null })
    for (const [i, b] of batched.entries())
      expect(await state(b.members)).toEqual(await state(single[i]!.members))
  })

  it('locks members in the order claims do: appid, then openid', async () => {
    const app = appid()
    // member ids ascend z, y, x; the calls come y, x, z
    const ids = [await member(app, 'o_z'), await member(app, 'o_y'), await member(app, 'o_x')]
    const run = checkinStatements(get().db)
    const calls = [1, 2, 0].map((i) => ({
      appid: app,
      memberId: ids[i]!,
      openid: ['o_z', 'o_y', 'o_x'][i]!,
      now: at(TODAY),
      timeZone: TZ,
      settings,
      run,
    }))
    await Promise.all(calls.map((c) => checkIn(get().db, c)))
    const ledger = await get()
      .db.selectFrom('points_ledger')
      .select('member_id')
      .where('member_id', 'in', ids)
      .where('rule', '=', 'checkin')
      .orderBy('id')
      .execute()
    // written (and locked) x, y, z
    expect(ledger.map((r) => r.member_id)).toEqual([ids[2], ids[1], ids[0]])
  })

  it('a check-in that fails fails only its caller; the batch runs again one by one', async () => {
    const app = appid()
    const ids = [await member(app, 'o_1'), await member(app, 'o_2')]
    const counted = countStatements(get().db)
    const run = checkinStatements(counted.db)
    const call = (memberId: number, openid: string) =>
      checkIn(get().db, {
        appid: app,
        memberId,
        openid,
        now: at(TODAY),
        timeZone: TZ,
        settings,
        run,
      })
    const outcomes = await Promise.allSettled([
      call(ids[0]!, 'o_1'),
      call(999_999_999, 'o_0'), // no such member: quanzi_checkin raises
      call(ids[1]!, 'o_2'),
    ])
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
    expect(String((outcomes[1] as PromiseRejectedResult).reason)).toMatch(/does not exist/)
    // the batch, then each of its three alone
    expect(counted.count()).toBe(4)
    const rows = await get()
      .db.selectFrom('checkins')
      .select('member_id')
      .where('member_id', 'in', ids)
      .execute()
    expect(rows).toHaveLength(2)
  })
})
