import { type Kysely, sql } from 'kysely'
import * as v from 'valibot'
import { describe, expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { holdTransaction, stillPending } from '../../test/held-transaction.js'
import { SAFE_ACCOUNT, startServer } from '../../test/server.js'
import { translator } from '../bot/i18n.js'
import type { Database } from '../db/schema.js'
import { createLogger } from '../logger.js'
import { createPusher } from '../sandbox/pusher.js'
import { awardParticipants, ensureDefaultActivities } from './activities.js'
import {
  awardBadges,
  type BadgePredicate,
  badgePredicate,
  countersOf,
  effectiveBadgeRules,
  holds,
  memberBadges,
} from './badges.js'
import { type CheckinSettings, checkIn } from './checkins.js'
import { DEFAULT_INVITE_SETTINGS, qualifyInvite } from './invites.js'

const TZ = 'Asia/Shanghai'
const t = translator('zh-CN')
const settings: CheckinSettings = { streakBonuses: {} }

describe('badge predicates', () => {
  const ok = (p: unknown) => v.safeParse(badgePredicate, p).success
  it('accepts counter thresholds and all/any of them', () => {
    expect(ok({ counter: 'streak', atLeast: 7 })).toBe(true)
    expect(
      ok({
        all: [
          { counter: 'checkins', atLeast: 10 },
          {
            any: [
              { counter: 'invites', atLeast: 1 },
              { counter: 'purchases', atLeast: 1 },
            ],
          },
        ],
      }),
    ).toBe(true)
  })
  it('refuses unknown counters, bad thresholds, empty lists, extra keys and deep nesting', () => {
    for (const bad of [
      null,
      'streak >= 7',
      { counter: 'balance', atLeast: 7 },
      { counter: 'streak', atLeast: 0 },
      { counter: 'streak', atLeast: 1.5 },
      { counter: 'streak', atLeast: '7' },
      { counter: 'streak', atLeast: 7, sql: 'drop table members' },
      { all: [] },
      { any: Array.from({ length: 9 }, () => ({ counter: 'streak', atLeast: 1 })) },
      { all: [{ any: [{ all: [{ counter: 'streak', atLeast: 1 }] }] }] },
    ])
      expect(ok(bad), JSON.stringify(bad)).toBe(false)
  })
  it('evaluates over counters (missing ones count as 0) and lists what it reads', () => {
    const p: BadgePredicate = {
      all: [
        { counter: 'streak', atLeast: 7 },
        {
          any: [
            { counter: 'invites', atLeast: 2 },
            { counter: 'purchases', atLeast: 1 },
          ],
        },
      ],
    }
    expect([...countersOf(p)].sort()).toEqual(['invites', 'purchases', 'streak'])
    expect(holds(p, { streak: 7, purchases: 1 })).toBe(true)
    expect(holds(p, { streak: 7, invites: 1 })).toBe(false)
    expect(holds(p, { streak: 6, invites: 5 })).toBe(false)
  })
})

forEachDatabase('badges', (get, dbName) => {
  let n = 0
  const appid = () => `wxb${dbName === 'pglite' ? 'a' : 'b'}${String(++n).padStart(14, '0')}`
  const day0 = new Date('2026-11-01T02:00:00Z') // 10:00 in Shanghai
  const at = (days: number) => new Date(day0.getTime() + days * 86_400_000)
  const member = async (app: string, openid = `o_${++n}_badge`) =>
    get()
      .db.insertInto('members')
      .values({
        appid: app,
        openid,
        subscribed: true,
        first_seen_at: day0,
        last_active_at: day0,
        last_inbound_at: day0,
      })
      .returning(['id', 'openid'])
      .executeTakeFirstOrThrow()
  const rule = (app: string, key: string, predicate: unknown, enabled = true) =>
    get()
      .db.insertInto('badge_rules')
      .values({
        appid: app,
        key,
        name: `徽章${key}`,
        predicate: JSON.stringify(predicate),
        enabled,
      })
      .execute()
  const notices = (app: string, openid: string) =>
    get()
      .db.selectFrom('push_outbox')
      .select(['source', 'payload'])
      .where('appid', '=', app)
      .where('openid', '=', openid)
      .where('source', 'like', 'badge:%')
      .orderBy('source')
      .execute()

  /** Checks the member in on days 0 … n−1; the badge keys each check-in earned. */
  const checkInDays = async (app: string, memberId: number, n: number) => {
    const keys: string[][] = []
    for (let d = 0; d < n; d++) {
      const r = await checkIn(get().db, {
        appid: app,
        memberId,
        now: at(d),
        timeZone: TZ,
        settings,
      })
      if (r.status !== 'checked_in') throw new Error(r.status)
      keys.push(r.badges.map((b) => b.key))
    }
    return keys
  }

  it('a 7-day streak earns 坚持一周 on the 7th check-in, in the result, once', async () => {
    const app = appid()
    const m = await member(app)
    const keys = await checkInDays(app, m.id, 9)
    expect(keys[6]).toEqual(['streak_7'])
    expect(keys.flat()).toEqual(['streak_7'])
    const held = await memberBadges(get().db, m.id)
    expect(held.map((b) => [b.key, b.name])).toEqual([['streak_7', '坚持一周']])
    expect(held[0]!.awardedAt.toISOString()).toBe(at(6).toISOString())
    // announced in the reply, so nothing went through the outbox
    expect(await notices(app, m.openid)).toEqual([])
  })

  it('the chat announces a badge in the 签到 reply and lists it in 我的', async () => {
    const clock = { at: day0, now: () => clock.at }
    const server = await startServer(get().db, { clock })
    try {
      const wx = createPusher({
        url: `${server.url}/wechat`,
        account: SAFE_ACCOUNT,
        now: () => clock.at.getTime(),
      })
      const replies: string[] = []
      for (let d = 0; d < 7; d++) {
        clock.at = at(d)
        replies.push((await wx.text('o_badge_chat', '签到')).reply!.Content as string)
      }
      expect(replies.slice(0, 6).join('\n')).not.toContain('🏅')
      expect(replies[6]).toMatch(/\n🏅 获得新徽章「坚持一周」：连续签到 7 天$/)
      expect((await wx.text('o_badge_chat', '我的')).reply!.Content).toMatch(
        /\n徽章 1 枚：坚持一周$/,
      )
    } finally {
      await server.close()
    }
  })

  it('a check-in counts itself and the earlier days for a checkins rule, however nested', async () => {
    const app = appid()
    await rule(app, 'four_days', { any: [{ all: [{ counter: 'checkins', atLeast: 4 }] }] })
    const m = await member(app)
    await get()
      .db.insertInto('checkins')
      .values(
        ['2026-10-20', '2026-10-25'].map((day) => ({
          member_id: m.id,
          appid: app,
          day,
          streak: 1,
          points: 5,
          created_at: day0,
        })),
      )
      .execute()
    const keys = await checkInDays(app, m.id, 3)
    // 2 earlier days + today's: 3, then 4 on the second check-in
    expect(keys).toEqual([[], ['four_days'], []])
  })

  it('answers a check-in whose badge award failed, and awards the badge at the next one', async () => {
    const app = appid()
    await rule(app, 'two_days', { counter: 'checkins', atLeast: 2 })
    const m = await member(app)
    const logged: Record<string, unknown>[] = []
    const logger = createLogger({ write: (line) => logged.push(JSON.parse(line)) })
    const checkin = (db: Kysely<Database>, days: number) =>
      checkIn(db, { appid: app, memberId: m.id, now: at(days), timeZone: TZ, settings, logger })
    expect(await checkin(get().db, 0)).toMatchObject({ status: 'checked_in', badges: [] })
    // The badge's insert fails after the check-in statement committed.
    try {
      await sql`create function badges_down() returns trigger language plpgsql as $$
        begin raise exception 'badges down'; end $$`.execute(get().db)
      await sql`create trigger badges_down before insert on member_badges for each row
        when (new.appid = ${sql.lit(app)}) execute function badges_down()`.execute(get().db)
      expect(await checkin(get().db, 1)).toMatchObject({
        status: 'checked_in',
        streak: 2,
        points: 5,
        badges: [],
      })
      expect(logged).toMatchObject([
        { level: 'error', code: 'CHECKIN_FOLLOW_UP_FAILED', followUp: 'badges' },
      ])
      // Inside a caller's transaction nothing has committed: the failure is thrown, nothing kept.
      await expect(
        get()
          .db.transaction()
          .execute((trx) => checkin(trx, 2)),
      ).rejects.toThrow(/badges down/)
      expect(logged).toHaveLength(1)
    } finally {
      await sql`drop trigger if exists badges_down on member_badges`.execute(get().db)
      await sql`drop function if exists badges_down()`.execute(get().db)
    }
    expect(await memberBadges(get().db, m.id)).toEqual([])
    const checkins = await get()
      .db.selectFrom('checkins')
      .select('day')
      .where('member_id', '=', m.id)
      .execute()
    expect(checkins).toHaveLength(2) // the rolled-back transaction's check-in is not kept
    // The rule still holds at the next check-in: the badge is a candidate again and awarded.
    const next = await checkin(get().db, 2)
    expect(next).toMatchObject({ status: 'checked_in', streak: 3 })
    expect(next.status === 'checked_in' && next.badges.map((b) => b.key)).toEqual(['two_days'])
    expect((await memberBadges(get().db, m.id)).map((b) => b.key)).toEqual(['two_days'])
  })

  it('operators add rules without code and override or disable defaults per account', async () => {
    const app = appid()
    const other = appid()
    await rule(app, 'streak_7', { counter: 'streak', atLeast: 7 }, false) // switched off here
    await rule(app, 'three_days', { all: [{ counter: 'checkins', atLeast: 3 }] })
    await rule(app, 'off', { counter: 'checkins', atLeast: 1 }, false)
    await rule(app, 'broken', { counter: 'checkins', atLeast: 'one' }) // stored unvalidated
    const m = await member(app)
    const o = await member(other)
    for (let d = 0; d < 7; d++) {
      for (const [a, id] of [
        [app, m.id],
        [other, o.id],
      ] as const)
        await checkIn(get().db, { appid: a, memberId: id, now: at(d), timeZone: TZ, settings })
    }
    expect((await memberBadges(get().db, m.id)).map((b) => b.key)).toEqual(['three_days'])
    // the other account has only the defaults
    expect((await memberBadges(get().db, o.id)).map((b) => b.key)).toEqual(['streak_7'])
    const rules = await effectiveBadgeRules(get().db, app)
    const byKey = new Map(rules.map((r) => [r.key, r]))
    expect(byKey.get('streak_7')).toMatchObject({ enabled: false, overridden: true, holders: 0 })
    expect(byKey.get('three_days')).toMatchObject({ enabled: true, holders: 1 })
    expect(byKey.get('broken')?.predicate).toBeNull()
    expect(byKey.get('first_invite')).toMatchObject({ enabled: true, overridden: false })
  })

  it('only rules reading a changed counter are evaluated; a missed badge is caught up later', async () => {
    const app = appid()
    const m = await member(app)
    await get()
      .db.insertInto('checkins')
      .values(
        Array.from({ length: 8 }, (_, d) => ({
          member_id: m.id,
          appid: app,
          day: `2026-10-${String(d + 1).padStart(2, '0')}`,
          streak: d + 1,
          points: 5,
          created_at: day0,
        })),
      )
      .execute()
    // an invite fact does not look at streak rules …
    expect(await awardBadges(get().db, m.id, { invites: null }, { now: day0 })).toEqual([])
    // … a check-in fact does, reading the best streak when not told it
    const got = await awardBadges(get().db, m.id, { streak: null, checkins: null }, { now: day0 })
    expect(got.map((b) => b.key)).toEqual(['streak_7'])
    expect(await awardBadges(get().db, m.id, { streak: 30 }, { now: day0 })).toMatchObject([
      { key: 'streak_30' },
    ])
    expect(await awardBadges(get().db, m.id, { streak: 31 }, { now: day0 })).toEqual([])
  })

  it('an invite qualifying tells the inviter about 初次邀请 through the outbox', async () => {
    const app = appid()
    const inviter = await member(app)
    const invitee = await member(app)
    await get()
      .db.insertInto('invites')
      .values({
        appid: app,
        invitee_key: `o:${app}:${invitee.openid}`,
        invitee_member_id: invitee.id,
        inviter_member_id: inviter.id,
        source: 'oa_qr',
        scene: null,
        status: 'pending',
        created_at: day0,
      })
      .execute()
    const ctx = { now: day0, timeZone: TZ, settings: DEFAULT_INVITE_SETTINGS, t }
    expect(await qualifyInvite(get().db, invitee.id, ctx)).toHaveLength(1)
    expect((await memberBadges(get().db, inviter.id)).map((b) => b.key)).toEqual(['first_invite'])
    const sent = await notices(app, inviter.openid)
    expect(sent.map((x) => x.source)).toEqual(['badge:first_invite'])
    expect(JSON.stringify(sent[0]!.payload)).toContain('初次邀请')
    expect(await memberBadges(get().db, invitee.id)).toEqual([])
  })

  it('the fifth activity award earns 活动达人, told through the outbox', async () => {
    const app = appid()
    await ensureDefaultActivities(get().db, app, day0)
    const m = await member(app)
    const weeks = ['2026-11-02', '2026-11-09', '2026-11-16', '2026-11-23', '2026-11-30']
    for (const [i, period] of weeks.entries()) {
      const award = { appid: app, key: 'topic', period, memberIds: [m.id], timeZone: TZ }
      await awardParticipants(get().db, { ...award, now: at(i) })
      const held = (await memberBadges(get().db, m.id)).map((b) => b.key)
      expect(held).toEqual(i < 4 ? [] : ['activity_champion'])
    }
    const sent = await notices(app, m.openid)
    expect(sent.map((x) => x.source)).toEqual(['badge:activity_champion'])
    expect(JSON.stringify(sent[0]!.payload)).toContain('活动达人')
  })

  it('the purchase counter earns 首次购买, told in the language given', async () => {
    const app = appid()
    const m = await member(app)
    expect(await awardBadges(get().db, m.id, { purchases: null }, { now: day0 })).toEqual([])
    await get()
      .db.updateTable('members')
      .set({ purchase_count: 1 })
      .where('id', '=', m.id)
      .execute()
    const en = translator('en')
    const got = await awardBadges(
      get().db,
      m.id,
      { purchases: null },
      { now: day0, outbox: true, t: en },
    )
    expect(got.map((b) => b.key)).toEqual(['first_purchase'])
    const sent = await notices(app, m.openid)
    expect(JSON.stringify(sent[0]!.payload)).toContain('New badge')
  })

  it('a badge is awarded once when transactions race for it', async () => {
    const app = appid()
    const m = await member(app)
    await get()
      .db.updateTable('members')
      .set({ purchase_count: 3 })
      .where('id', '=', m.id)
      .execute()
    const award = (db = get().db) =>
      db
        .transaction()
        .execute((trx) => awardBadges(trx, m.id, { purchases: null }, { now: day0, outbox: true }))
    if (dbName === 'postgres') {
      // Deterministic overlap: the first holds its award uncommitted while the second decides.
      const other = get().open()
      const held = await holdTransaction(get().db, (trx) =>
        awardBadges(trx, m.id, { purchases: null }, { now: day0, outbox: true }),
      )
      const second = award(other)
      expect(await stillPending(second, 200)).toBe(true) // waits on the primary key
      held.commit()
      expect((await held.done).map((b) => b.key)).toEqual(['first_purchase'])
      expect(await second).toEqual([])
    }
    // And many at once, over several pools where there are several.
    const pools = dbName === 'postgres' ? [get().db, get().open(), get().open()] : [get().db]
    await sql`delete from member_badges where member_id = ${m.id}`.execute(get().db)
    const results = await Promise.all(
      Array.from({ length: 24 }, (_, i) => award(pools[i % pools.length])),
    )
    expect(results.flat().map((b) => b.key)).toEqual(['first_purchase'])
    const rows = await get()
      .db.selectFrom('member_badges')
      .select('badge_key')
      .where('member_id', '=', m.id)
      .execute()
    expect(rows).toEqual([{ badge_key: 'first_purchase' }])
    expect((await notices(app, m.openid)).map((x) => x.source)).toEqual(['badge:first_purchase'])
  })
})
