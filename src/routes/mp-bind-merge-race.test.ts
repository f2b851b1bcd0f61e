/**
 * A 绑定 racing writes to the follower it merges into (src/shop/member-moves.ts): the follower
 * turning their own reminder on (提醒, in the OA chat) or asking for their own link to what the
 * mini-program user shared, and a friend opening the link the 绑定 merges away. Each request must
 * answer as if it had come entirely before or entirely after the 绑定 — never a 5xx, never a 404.
 *
 * On PostgreSQL the race is made deterministic with a third connection: it holds a row the 绑定
 * locks after both members — so the 绑定 waits there with the members locked — until the racing
 * request waits too, then lets go. PGlite has one connection, where nothing waits: there the two
 * run one after the other (the 绑定 first), and the outcome must be the same.
 */
import type { Hono } from 'hono'
import type { Kysely } from 'kysely'
import { beforeAll, expect, it } from 'vitest'
import { createRouter } from '../../handlers/index.js'
import { forEachDatabase } from '../../test/databases.js'
import { waitingForLock } from '../../test/held-transaction.js'
import { pointsBalance } from '../../test/member-fixtures.js'
import { SAFE_ACCOUNT, testConfig } from '../../test/server.js'
import { createApp } from '../app.js'
import { setReminder } from '../community/checkin-reminders.js'
import { issueBindingCode } from '../community/identities.js'
import { shareLink } from '../community/shares.js'
import type { Config } from '../config.js'
import type { Database } from '../db/schema.js'
import { silentLogger } from '../logger.js'
import { signSession } from '../shop/mp-auth.js'
import type { ShopRouteOptions } from './shop.js'

const APPID = SAFE_ACCOUNT.appid
const MP_APPID = 'wxmpmerge0000000001'
const SECRET = 'mp-merge-race-session-secret-0123456'
const TEMPLATE = 'mp_merge_race_remind_tpl'
const WECHAT_UA = 'Mozilla/5.0 (Linux; Android 14) Mobile MicroMessenger/8.0.50.2701 NetType/WIFI'

forEachDatabase('a 绑定 racing writes to the follower it merges into', (get, name) => {
  let app: Hono
  let config: Config
  // 10:00 in Shanghai: no quiet hours, and no day boundary near
  const now = new Date('2026-12-03T02:00:00Z')
  const clock = { now: () => now }
  let n = 0

  beforeAll(() => {
    config = testConfig({ CHECKIN_REMINDER_MP_TEMPLATE_ID: TEMPLATE })
    // Only what these routes use of the shop: its accounts and the session secret.
    const shop = {
      settings: { appid: APPID, mpAppid: MP_APPID },
      gateway: { mchid: '1900000001' },
      sessionSecret: SECRET,
    } as unknown as ShopRouteOptions['shop']
    app = createApp({
      config,
      db: get().db,
      router: createRouter(),
      logger: silentLogger,
      clock,
      shop,
      clientAddress: (c) => c.req.header('x-test-peer') ?? '10.7.0.1',
    })
  })

  const session = (memberId: number, openid: string) =>
    signSession(SECRET, { memberId, openid, expiresAt: new Date(now.getTime() + 3600_000) })
  const call = async (
    path: string,
    init: { token?: string; method?: string; body?: unknown; peer?: string },
  ) => {
    const res = await app.request(path, {
      method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
      headers: {
        'content-type': 'application/json',
        ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
        ...(init.peer ? { 'x-test-peer': init.peer } : {}),
      },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    })
    // biome-ignore lint/suspicious/noExplicitAny: response JSON, checked by the assertions
    return { status: res.status, json: (await res.json()) as Record<string, any> }
  }

  /**
   * A mini-program user with a member of their own, signed in (`mp`), and a follower of the
   * account who sent 绑定; `bind()` enters the follower's code in the mini program and answers
   * the HTTP status. `follows()` signs in another mini-program user already linked to the
   * follower (by unionid): the follower in the mini program.
   */
  async function user() {
    const i = ++n
    const openid = `o_mp_merge_${i}`
    const own = await get()
      .db.insertInto('members')
      .values({ appid: MP_APPID, openid, first_seen_at: now })
      .returning('id')
      .executeTakeFirstOrThrow()
    await get()
      .db.insertInto('mp_users')
      .values({ appid: MP_APPID, openid, member_id: own.id, created_at: now })
      .execute()
    const follower = await get()
      .db.insertInto('members')
      .values({ appid: APPID, openid: `o_oa_merge_${i}`, first_seen_at: now, subscribed: true })
      .returning('id')
      .executeTakeFirstOrThrow()
    const token = await session(own.id, openid)
    const mp = (path: string, init: { method?: string; body?: unknown; peer?: string } = {}) =>
      call(`/api/mp${path}`, { ...init, token })
    const bind = async () => {
      const { code } = await issueBindingCode(get().db, follower.id, now)
      const bound = await mp('/bind', { body: { code } })
      return [bound.status, bound.json.member?.id]
    }
    const follows = async () => {
      const theirs = `o_mp_merge_${i}_follower`
      await get()
        .db.insertInto('mp_users')
        .values({ appid: MP_APPID, openid: theirs, member_id: follower.id, created_at: now })
        .execute()
      const t = await session(follower.id, theirs)
      return (path: string, init: { method?: string; body?: unknown; peer?: string } = {}) =>
        call(`/api/mp${path}`, { ...init, token: t })
    }
    return { i, openid, own: own.id, follower: follower.id, mp, bind, follows }
  }

  /** Until a statement like one of `queries` waits for a lock (PostgreSQL). */
  const waiting = (...queries: string[]) => waitingForLock(get().db, ...queries)
  /** Another connection holds what `lock` locks in its transaction until `release()` (or 10 s). */
  async function hold(lock: (trx: Kysely<Database>) => Promise<unknown>) {
    let release = () => {}
    const released = new Promise<void>((resolve) => (release = resolve))
    let locked = () => {}
    const isLocked = new Promise<void>((resolve) => (locked = resolve))
    const done = get()
      .open({ max: 1 })
      .transaction()
      .execute(async (trx) => {
        await lock(trx)
        locked()
        await Promise.race([released, new Promise((resolve) => setTimeout(resolve, 10_000))])
      })
    await isLocked
    return { release, done }
  }
  /**
   * On PostgreSQL: the 绑定 waits at `at` (a statement like it, for the row `lock` holds) with
   * both members locked; then `racer` starts and waits too (`racerWaits`: its statements); then
   * the row is let go. On PGlite: the 绑定, then `racer`. Both answers (a failure as its error).
   */
  async function racing<T>(
    bind: () => Promise<unknown>,
    s: {
      lock: (trx: Kysely<Database>) => Promise<unknown>
      at: string
      racer: () => Promise<T>
      racerWaits: string[]
    },
  ): Promise<[unknown, T | Error]> {
    const settle = <U>(p: Promise<U>) => p.catch((error: Error) => error)
    if (name === 'pglite') {
      const bound = await settle(bind())
      return [bound, await settle(s.racer())]
    }
    const holder = await hold(s.lock)
    const bound = settle(bind())
    await waiting(s.at)
    const raced = settle(s.racer())
    await waiting(...s.racerWaits)
    holder.release()
    await holder.done
    return [await bound, await raced]
  }
  const MEMBER_KEY_SHARE = '%from "members" where "id" = $1 for key share'

  it('the follower’s 提醒 racing the 绑定 that moves the mini program’s reminder: both answer, one reminder', async () => {
    const u = await user()
    const set = await u.mp('/reminders', {
      body: { result: { [TEMPLATE]: 'accept' }, time: '21:15' },
    })
    expect(set.json.reminder).toEqual({ enabled: true, time: '21:15' })
    // the follower sends 提醒 20:00 in the OA chat (handlers/reminders.ts) as the 绑定 runs
    const [bound, reminded] = await racing(u.bind, {
      lock: (trx) =>
        trx
          .selectFrom('checkin_reminders')
          .select('member_id')
          .where('member_id', '=', u.own)
          .forUpdate()
          .execute(),
      at: '%from "checkin_reminders" where "member_id" in ($1, $2) order by "member_id" for update',
      racer: () =>
        setReminder(get().db, {
          appid: APPID,
          memberId: u.follower,
          minute: 20 * 60,
          now,
          timeZone: config.timeZone,
          settings: config.checkin.reminders!,
        }),
      racerWaits: ['insert into "checkin_reminders"%', MEMBER_KEY_SHARE],
    })
    expect(bound).toEqual([200, u.follower])
    expect(reminded).toEqual({ status: 'on', minute: 20 * 60 })
    // as if 提醒 came after the 绑定: the moved reminder, at the time the follower chose
    const rows = await get()
      .db.selectFrom('checkin_reminders')
      .select(['member_id', 'appid', 'enabled', 'minute_of_day', 'mp_credits', 'mp_openid'])
      .where('member_id', 'in', [u.own, u.follower])
      .execute()
    expect(rows).toEqual([
      {
        member_id: u.follower,
        appid: APPID,
        enabled: true,
        minute_of_day: 20 * 60,
        mp_credits: 1,
        mp_openid: u.openid,
      },
    ])
  })

  it('the follower asking for a link racing the 绑定 that moves the same link: both answer, one link', async () => {
    const u = await user()
    const body = { kind: 'article', ref: `https://mp.weixin.qq.com/s/MergeAsk${u.i}` }
    const mine = await u.mp('/shares', { body, peer: '10.7.1.1' })
    expect(mine.status).toBe(200)
    const code = mine.json.code as string
    const follower = await u.follows()
    const [bound, asked] = await racing(u.bind, {
      lock: (trx) =>
        trx.selectFrom('share_links').select('id').where('code', '=', code).forUpdate().execute(),
      at: '%from "share_links" where "member_id" = $1 order by "id" for update',
      racer: () => follower('/shares', { body, peer: '10.7.1.9' }),
      racerWaits: ['insert into "share_links"%', MEMBER_KEY_SHARE],
    })
    expect(bound).toEqual([200, u.follower])
    // as if asked after the 绑定: the link it moved to the follower
    expect(asked).toMatchObject({ status: 200, json: { code } })
    const links = await get()
      .db.selectFrom('share_links')
      .select(['member_id', 'code'])
      .where('member_id', 'in', [u.own, u.follower])
      .execute()
    expect(links).toEqual([{ member_id: u.follower, code }])
  })

  it('an open of the link the 绑定 merges away, waiting for its row, counts on the follower’s link', async () => {
    const u = await user()
    const article = `https://mp.weixin.qq.com/s/MergeOpen${u.i}`
    const theirs = await shareLink(get().db, {
      memberId: u.follower,
      kind: 'article',
      ref: article,
      address: '10.7.2.9',
      appid: APPID,
      now,
    })
    if (theirs.status !== 'ok') throw new Error(theirs.status)
    const mine = await u.mp('/shares', {
      body: { kind: 'article', ref: article },
      peer: '10.7.2.1',
    })
    const code = mine.json.code as string
    // the 绑定 holds the mini program's link and waits for the follower's, to merge it into
    const [bound, opened] = await racing(u.bind, {
      lock: (trx) =>
        trx
          .selectFrom('share_links')
          .select('id')
          .where('code', '=', theirs.code)
          .forUpdate()
          .execute(),
      at: '%from "share_links" where "member_id" = $1 and "kind" = $2 and "ref" = $3 for update',
      racer: async () =>
        app.request(`/r/s/${code}`, {
          headers: { 'x-test-peer': '10.7.2.2', 'user-agent': WECHAT_UA },
        }),
      racerWaits: ['update "share_links" set "clicks"%'],
    })
    expect(bound).toEqual([200, u.follower])
    if (opened instanceof Error) throw opened
    expect([opened.status, opened.headers.get('location')]).toEqual([302, article])
    // the friend's open counted once, on the follower's link: +5 for the follower
    const links = await get()
      .db.selectFrom('share_links')
      .select(['code', 'clicks'])
      .where('member_id', 'in', [u.own, u.follower])
      .execute()
    expect(links).toEqual([{ code: theirs.code, clicks: 1 }])
    expect([
      await pointsBalance(get().db, u.follower),
      await pointsBalance(get().db, u.own),
    ]).toEqual([5, 0])
    // the same friend again, through either code: a repeat
    await app.request(`/r/s/${theirs.code}`, {
      headers: { 'x-test-peer': '10.7.2.2', 'user-agent': WECHAT_UA },
    })
    expect(await pointsBalance(get().db, u.follower)).toBe(5)
  })
})
