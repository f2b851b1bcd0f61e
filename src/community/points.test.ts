import { type Kysely, sql } from 'kysely'
import { expect, it } from 'vitest'
import * as m0058 from '../../migrations/0058_rule_points_positive.js'
import { forEachDatabase } from '../../test/databases.js'
import { parseXml } from '../wechat/codec.js'
import { toInboundMessage } from '../wechat/message.js'
import { checkIn } from './checkins.js'
import { leaderboard } from './leaderboard.js'
import { levelFor } from './levels.js'
import { databaseMemberStore, isDuplicate, type RecordedMember } from './members.js'
import { applyDelta, awardRule, withMemberLocked } from './points-ledger.js'

const TZ = 'Asia/Shanghai'
const settings = { streakBonuses: { 3: 20, 7: 50 } }

forEachDatabase('check-ins and the points ledger', (get, dbName) => {
  let n = 0
  async function member(appid = 'wxpoints00000000001') {
    const row = await get()
      .db.insertInto('members')
      .values({
        appid,
        openid: `o_pts_${++n}`,
        first_seen_at: new Date(),
        last_active_at: new Date(),
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    return row.id
  }
  const balance = async (id: number) =>
    get()
      .db.selectFrom('members')
      .select(['points_balance', 'points_lifetime', 'level'])
      .where('id', '=', id)
      .executeTakeFirstOrThrow()
  const checkin = (memberId: number, now: Date, db = get().db) =>
    checkIn(db, { appid: 'wxpoints00000000001', memberId, now, timeZone: TZ, settings })

  it('200 concurrent check-ins by one member give one award', async () => {
    const id = await member()
    const now = new Date('2026-11-24T02:00:00Z')
    const pools = dbName === 'postgres' ? [get().db, get().open(), get().open()] : [get().db]
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => checkin(id, now, pools[i % pools.length])),
    )
    expect(results.filter((r) => r.status === 'checked_in')).toHaveLength(1)
    expect(results.filter((r) => r.status === 'already')).toHaveLength(199)
    expect(await balance(id)).toMatchObject({ points_balance: 5, points_lifetime: 5 })
    const entries = await get()
      .db.selectFrom('points_ledger')
      .selectAll()
      .where('member_id', '=', id)
      .execute()
    expect(entries).toHaveLength(1)
  })

  it('counts days at the community midnight and keeps streaks, with bonuses', async () => {
    const id = await member()
    const at = (iso: string) => new Date(iso)
    // 23:59:59 and 00:00:00 Shanghai are two community days
    expect(await checkin(id, at('2026-11-24T15:59:59Z'))).toMatchObject({
      status: 'checked_in',
      day: '2026-11-24',
      streak: 1,
    })
    expect(await checkin(id, at('2026-11-24T16:00:00Z'))).toMatchObject({
      status: 'checked_in',
      day: '2026-11-25',
      streak: 2,
    })
    expect(await checkin(id, at('2026-11-25T15:00:00Z'))).toMatchObject({
      status: 'already',
      streak: 2,
    })
    expect(await checkin(id, at('2026-11-26T01:00:00Z'))).toMatchObject({
      streak: 3,
      points: 5,
      bonus: 20,
      balance: 35,
    })
    // a missed day resets the streak
    expect(await checkin(id, at('2026-11-28T01:00:00Z'))).toMatchObject({
      streak: 1,
      bonus: 0,
      balance: 40,
    })
    const days = await get()
      .db.selectFrom('checkins')
      .select([sql<string>`day::text`.as('day'), 'streak'])
      .where('member_id', '=', id)
      .orderBy('day')
      .execute()
    expect(days).toEqual([
      { day: '2026-11-24', streak: 1 },
      { day: '2026-11-25', streak: 2 },
      { day: '2026-11-26', streak: 3 },
      { day: '2026-11-28', streak: 1 },
    ])
  })

  it('refuses check-ins outside the daily window', async () => {
    const id = await member()
    const windowed = { ...settings, window: { from: 6 * 60, to: 23 * 60 } }
    const r = await checkIn(get().db, {
      appid: 'wxpoints00000000001',
      memberId: id,
      now: new Date('2026-11-24T20:30:00Z'),
      timeZone: TZ,
      settings: windowed,
    })
    expect(r).toEqual({ status: 'closed', window: windowed.window })
    expect(await balance(id)).toMatchObject({ points_balance: 0 })
  })

  it('applies caps per day and ever, rules from the table, and level multipliers', async () => {
    const id = await member()
    const day1 = new Date('2026-11-24T04:00:00Z')
    const day2 = new Date('2026-11-25T04:00:00Z')
    const award = (rule: string, key: string, now: Date) =>
      withMemberLocked(get().db, id, (trx, m) =>
        awardRule(trx, m, {
          appid: 'wxpoints00000000001',
          memberId: id,
          rule,
          idempotencyKey: key,
          now,
          timeZone: TZ,
        }),
      )
    const statuses = []
    for (let i = 0; i < 4; i++)
      statuses.push((await award('product_review', `r${id}-${i}`, day1)).status)
    expect(statuses).toEqual(['applied', 'applied', 'applied', 'capped'])
    expect((await award('product_review', `r${id}-4`, day2)).status).toBe('applied')
    expect((await award('product_review', `r${id}-4`, day2)).status).toBe('duplicate')
    expect((await award('complete_profile', `p${id}`, day1)).status).toBe('applied')
    expect((await award('complete_profile', `p${id}-again`, day2)).status).toBe('capped')
    expect((await award('no_such_rule', `x${id}`, day1)).status).toBe('disabled')
    // an account-specific rule overrides the default
    await get()
      .db.insertInto('point_rules')
      .values({
        appid: 'wxpoints00000000001',
        rule: 'content_share',
        points: 7,
        cap_count: null,
        cap_period: null,
      })
      .execute()
    const share = await award('content_share', `s${id}`, day1)
    expect(share).toMatchObject({ status: 'applied', delta: 7 })
    // 4×20 + 30 + 7 = 117; a grant of 900 reaches silver (1 000 lifetime) and doubles the next award
    const grant = await withMemberLocked(get().db, id, (trx, m) =>
      applyDelta(
        trx,
        m,
        {
          appid: 'wxpoints00000000001',
          memberId: id,
          rule: 'grant',
          idempotencyKey: `g${id}`,
          now: day1,
          timeZone: TZ,
        },
        900,
      ),
    )
    expect(grant).toMatchObject({
      status: 'applied',
      balance: 1017,
      levelUp: { from: { key: 'bronze' }, to: { key: 'silver' } },
    })
    expect(await award('content_share', `s${id}-2`, day1)).toMatchObject({ delta: 14 })
    // spending never goes below zero and never lowers the level
    const spend = (amount: number, key: string) =>
      withMemberLocked(get().db, id, (trx, m) =>
        applyDelta(
          trx,
          m,
          {
            appid: 'wxpoints00000000001',
            memberId: id,
            rule: 'redeem',
            idempotencyKey: key,
            now: day1,
            timeZone: TZ,
          },
          -amount,
        ),
      )
    expect(await spend(5000, `sp${id}-1`)).toMatchObject({ status: 'insufficient', balance: 1031 })
    expect(await spend(1031, `sp${id}-2`)).toMatchObject({ status: 'applied', balance: 0 })
    expect(await balance(id)).toEqual({ points_balance: 0, points_lifetime: 1031, level: 'silver' })
  })

  it('answers duplicate for a used key before capped, disabled or insufficient', async () => {
    // The key is looked up only when a change would be refused (migrations/0057): a used key
    // still wins over every other refusal.
    const appid = 'wxpointsdup00000001'
    const id = await member(appid)
    const day = new Date('2026-11-24T04:00:00Z')
    const change = (rule: string, key: string, delta: number | null) =>
      withMemberLocked(get().db, id, (trx, m) => {
        const c = { appid, memberId: id, rule, idempotencyKey: key, now: day, timeZone: TZ }
        return delta === null ? awardRule(trx, m, c) : applyDelta(trx, m, c, delta)
      })
    for (let i = 0; i < 3; i++) await change('product_review', `dup${id}-r${i}`, null)
    expect((await change('product_review', `dup${id}-r3`, null)).status).toBe('capped')
    expect((await change('product_review', `dup${id}-r0`, null)).status).toBe('duplicate')
    expect((await change('content_share', `dup${id}-s`, null)).status).toBe('applied')
    await get()
      .db.insertInto('point_rules')
      .values({ appid, rule: 'content_share', points: 5, enabled: false })
      .execute()
    expect((await change('content_share', `dup${id}-s2`, null)).status).toBe('disabled')
    expect((await change('content_share', `dup${id}-s`, null)).status).toBe('duplicate')
    const { points_balance } = await balance(id)
    expect((await change('redeem', `dup${id}-spend`, -points_balance)).status).toBe('applied')
    expect(await change('redeem', `dup${id}-spend`, -points_balance)).toMatchObject({
      status: 'duplicate',
      balance: 0,
    })
    expect((await change('redeem', `dup${id}-spend2`, -1)).status).toBe('insufficient')
  })

  it('ranks earned points this week and all time, ties sharing a rank, spending not counted', async () => {
    const appid = 'wxrank0000000000001'
    // created one after another: ties are listed by member id
    const a = await member(appid)
    const b = await member(appid)
    const c = await member(appid)
    const d = await member(appid)
    const lastWeek = new Date('2026-11-20T04:00:00Z') // Friday before the week of Mon 2026-11-23
    const thisWeek = new Date('2026-11-24T04:00:00Z')
    const give = (id: number, amount: number, now: Date, key: string) =>
      withMemberLocked(get().db, id, (trx, m) =>
        applyDelta(
          trx,
          m,
          { appid, memberId: id, rule: 'grant', idempotencyKey: `${id}:${key}`, now, timeZone: TZ },
          amount,
        ),
      )
    await give(a!, 500, lastWeek, 'old')
    await give(a!, 10, thisWeek, 'new')
    await give(b!, 30, thisWeek, 'new')
    await give(c!, 30, thisWeek, 'new')
    await withMemberLocked(get().db, c!, (trx, m) =>
      applyDelta(
        trx,
        m,
        {
          appid,
          memberId: c!,
          rule: 'redeem',
          idempotencyKey: 'spend',
          now: thisWeek,
          timeZone: TZ,
        },
        -25,
      ),
    )
    const week = await leaderboard(get().db, {
      appid,
      period: 'week',
      memberId: a!,
      now: thisWeek,
      timeZone: TZ,
    })
    expect(week.entries.map((e) => [e.rank, e.memberId, e.points])).toEqual([
      [1, b, 30],
      [1, c, 30],
      [3, a, 10],
    ])
    expect(week.me).toEqual({ rank: 3, points: 10 })
    const all = await leaderboard(get().db, {
      appid,
      period: 'all',
      memberId: d!,
      now: thisWeek,
      timeZone: TZ,
    })
    expect(all.entries.map((e) => [e.rank, e.memberId, e.points])).toEqual([
      [1, a, 510],
      [2, b, 30],
      [2, c, 30],
    ])
    expect(all.me).toBeNull()
  })

  it('ranks a past week by its own days only, not the days after it', async () => {
    const appid = 'wxrankpast000000001'
    const a = await member(appid)
    const b = await member(appid)
    const give = (id: number, amount: number, now: Date, key: string) =>
      withMemberLocked(get().db, id, (trx, m) =>
        applyDelta(
          trx,
          m,
          { appid, memberId: id, rule: 'grant', idempotencyKey: `${id}:${key}`, now, timeZone: TZ },
          amount,
        ),
      )
    // the week of Mon 2026-11-16 … Sun 2026-11-22 (community time), then the days after it
    await give(a!, 40, new Date('2026-11-16T01:00:00Z'), 'mon')
    await give(b!, 25, new Date('2026-11-22T15:30:00Z'), 'sun') // Sunday 23:30 in Shanghai
    await give(b!, 100, new Date('2026-11-22T16:30:00Z'), 'next-mon') // Monday 00:30 in Shanghai
    await give(a!, 7, new Date('2026-12-01T04:00:00Z'), 'later')
    const past = await leaderboard(get().db, {
      appid,
      period: 'week',
      memberId: b!,
      now: new Date('2026-11-18T04:00:00Z'),
      timeZone: TZ,
    })
    expect(past.entries.map((e) => [e.rank, e.memberId, e.points])).toEqual([
      [1, a, 40],
      [2, b, 25],
    ])
    expect(past.me).toEqual({ rank: 2, points: 25 })
  })

  it('calls exactly one of several racing first pushes new', async () => {
    const store = databaseMemberStore(get().db, { timeZone: TZ })
    const appid = 'wxnewrace00000000001'
    const push = (i: number) =>
      store.receive(
        { appid, dedupeKey: `race-${i}`, msgType: 'text', event: null },
        toInboundMessage(
          parseXml(
            `<xml><ToUserName>gh</ToUserName><FromUserName>o_race_new</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content>hi</Content><MsgId>${i}</MsgId></xml>`,
          ),
        ),
        new Date('2026-11-24T02:00:00Z'),
      )
    const members = await Promise.all([1, 2, 3, 4, 5, 6].map(push))
    expect(members.filter((m) => !isDuplicate(m) && m.isNew)).toHaveLength(1)
  })

  it('pays daily_login once per community day for member actions only', async () => {
    const appid = 'wxdaily000000000001'
    const store = databaseMemberStore(get().db, { timeZone: TZ })
    let n = 0
    const push = (type: string, at: string) =>
      store
        .receive(
          { appid, dedupeKey: `k${++n}`, msgType: 'text', event: null },
          toInboundMessage(
            parseXml(
              `<xml><ToUserName>gh</ToUserName><FromUserName>o_daily</FromUserName><CreateTime>1</CreateTime>${type}</xml>`,
            ),
          ),
          new Date(at),
        )
        .then((m) => m as RecordedMember)
    const text = '<MsgType>text</MsgType><Content>hi</Content><MsgId>1</MsgId>'
    const receipt =
      '<MsgType>event</MsgType><Event>TEMPLATESENDJOBFINISH</Event><MsgID>1</MsgID><Status>success</Status>'
    expect((await push(receipt, '2026-11-24T01:00:00Z')).points_balance).toBe(0)
    const results = await Promise.all([1, 2, 3].map(() => push(text, '2026-11-24T02:00:00Z')))
    expect(Math.max(...results.map((m) => m.points_balance))).toBe(10)
    expect((await push(text, '2026-11-24T15:59:00Z')).points_balance).toBe(10)
    expect((await push(text, '2026-11-24T16:00:00Z')).points_balance).toBe(20) // 00:00 Shanghai
    const entries = await get()
      .db.selectFrom('points_ledger')
      .select('rule')
      .where('appid', '=', appid)
      .execute()
    expect(entries.map((e) => e.rule)).toEqual(['daily_login', 'daily_login'])
  })

  it('keeps Σ ledger == cached balance ≥ 0 under random concurrent operations', async () => {
    let seed = 20261124
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed / 2 ** 31
    }
    const ids = await Promise.all(Array.from({ length: 12 }, () => member('wxprop0000000000001')))
    const rules = [
      'daily_login',
      'checkin',
      'product_review',
      'content_share',
      'friend_invite',
      'complete_profile',
    ]
    const pools = dbName === 'postgres' ? [get().db, get().open()] : [get().db]
    const ops = Array.from({ length: 400 }, (_, i) => {
      const id = ids[Math.floor(random() * ids.length)]!
      const db = pools[i % pools.length]!
      const now = new Date(
        Date.UTC(2026, 10, 20 + Math.floor(random() * 5), Math.floor(random() * 24)),
      )
      const kind = random()
      const key = `op${Math.floor(random() * 300)}` // repeats on purpose: idempotency must hold
      const base = {
        appid: 'wxprop0000000000001',
        memberId: id,
        now,
        timeZone: TZ,
        idempotencyKey: `${id}:${key}`,
      }
      if (kind < 0.4) {
        const rule = rules[Math.floor(random() * rules.length)]!
        return () => withMemberLocked(db, id, (trx, m) => awardRule(trx, m, { ...base, rule }))
      }
      if (kind < 0.6)
        return () => checkIn(db, { appid: base.appid, memberId: id, now, timeZone: TZ, settings })
      const amount = Math.floor(random() * 60) + 1
      const delta = kind < 0.75 ? amount : -amount
      return () =>
        withMemberLocked(db, id, (trx, m) =>
          applyDelta(trx, m, { ...base, rule: delta > 0 ? 'grant' : 'redeem' }, delta),
        )
    })
    const outcomes = await Promise.all(ops.map((op) => op()))
    expect(outcomes.some((o) => o.status === 'insufficient')).toBe(true)
    expect(outcomes.some((o) => o.status === 'duplicate')).toBe(true)

    const db = get().db
    const sums = await db
      .selectFrom('members')
      .leftJoin('points_ledger', 'points_ledger.member_id', 'members.id')
      .select([
        'members.id',
        'members.points_balance',
        'members.points_lifetime',
        'members.level',
        sql<number>`coalesce(sum(points_ledger.delta), 0)::int`.as('sum'),
        sql<number>`coalesce(sum(points_ledger.earned), 0)::int`.as('earned'),
      ])
      .where('members.id', 'in', ids)
      .groupBy('members.id')
      .execute()
    for (const m of sums) {
      expect(m.points_balance, `member ${m.id}`).toBe(m.sum)
      expect(m.points_balance).toBeGreaterThanOrEqual(0)
      expect(m.points_lifetime).toBe(m.earned)
      expect(m.level).toBe(levelFor(m.points_lifetime).key)
    }
    // each entry's balance_after is the running sum in ledger order
    const entries = await db
      .selectFrom('points_ledger')
      .select(['member_id', 'delta', 'balance_after'])
      .where('member_id', 'in', ids)
      .orderBy('id')
      .execute()
    const running = new Map<number, number>()
    for (const e of entries) {
      const next = (running.get(e.member_id) ?? 0) + e.delta
      expect(e.balance_after).toBe(next)
      running.set(e.member_id, next)
    }
  }, 60_000)
})

forEachDatabase('migration 0058: a points rule awards at least 1 point', (get) => {
  it('keeps a stored 0-point rule as a turned-off one, and refuses 0 from then on', async () => {
    const db = get().db as unknown as Kysely<unknown>
    await m0058.down(db)
    // What the operator API accepted before: 0 points (every award of it then failed).
    await sql`insert into point_rules (appid, rule, points, cap_count, cap_period, enabled)
      values ('wx_zero', 'checkin', 0, 1, 'day', true)`.execute(db)
    await m0058.up(db)
    const { rows } = await sql<{ points: number; enabled: boolean }>`
      select points, enabled from point_rules where appid = 'wx_zero' and rule = 'checkin'`.execute(
      db,
    )
    expect(rows).toEqual([{ points: 1, enabled: false }])
    await expect(
      sql`update point_rules set points = 0 where appid = 'wx_zero'`.execute(db),
    ).rejects.toThrow(/point_rules_points_check/)
  })
})
