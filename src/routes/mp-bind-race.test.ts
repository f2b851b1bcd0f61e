/**
 * The mini program's member-scoped writes racing a 绑定: the session check reads the user's link
 * before the handler runs, and a 绑定 committing in between moves the user to a follower's member.
 * Each write must land on the member the user is linked to when it commits — the follower — and
 * never on the member the 绑定 left behind. A request whose session check read the link before the
 * 绑定 is reproduced as the orders test does it (shop.test.ts): the route runs with the member the
 * user has left; what it did is then read through the API with the user's token.
 */
import { Hono } from 'hono'
import { beforeAll, expect, it } from 'vitest'
import { createRouter } from '../../handlers/index.js'
import { forEachDatabase } from '../../test/databases.js'
import { pointsBalance } from '../../test/member-fixtures.js'
import { SAFE_ACCOUNT, testConfig } from '../../test/server.js'
import { createApp } from '../app.js'
import { issueBindingCode } from '../community/identities.js'
import { silentLogger } from '../logger.js'
import { signSession } from '../shop/mp-auth.js'
import { earnRoutes } from './mp-earn.js'
import { reminderRoutes } from './mp-reminders.js'
import type { ShopRouteOptions } from './shop.js'

const APPID = SAFE_ACCOUNT.appid
const MP_APPID = 'wxmprace00000000001'
const SECRET = 'mp-race-session-secret-0123456789'
const TEMPLATE = 'mp_race_remind_tpl'
const ARTICLE = 'https://mp.weixin.qq.com/s/BindRace1'

forEachDatabase('mini-program writes racing a 绑定 (/api/mp)', (get) => {
  let app: Hono
  let stale: Hono<{ Variables: { memberId: number; openid: string } }>
  // 10:00 in Shanghai: no quiet hours, and no day boundary near
  const now = new Date('2026-12-03T02:00:00Z')
  const clock = { now: () => now }
  let n = 0

  beforeAll(() => {
    const config = testConfig({ CHECKIN_REMINDER_MP_TEMPLATE_ID: TEMPLATE })
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
      clientAddress: () => '10.9.0.1',
    })
    // The same routes behind a session check that read the link before the 绑定 committed: the
    // member it hands on is the one in `x-session-member`.
    const options: ShopRouteOptions = {
      db: get().db,
      clock,
      logger: silentLogger,
      timeZone: config.timeZone,
      shop,
      reminders: config.checkin.reminders,
    }
    stale = new Hono<{ Variables: { memberId: number; openid: string } }>()
    stale.use('*', async function staleSession(c, next) {
      c.set('memberId', Number(c.req.header('x-session-member')))
      c.set('openid', c.req.header('x-session-openid')!)
      c.set('clientAddress', '10.9.0.2')
      await next()
    })
    stale.route('/', earnRoutes(options))
    stale.route('/reminders', reminderRoutes(options))
  })

  /**
   * A mini-program user with a member of their own, signed in, and a follower of the account who
   * sent 绑定; `bind()` enters the follower's code in the mini program.
   */
  async function user() {
    const i = ++n
    const openid = `o_mp_race_${i}`
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
      .values({ appid: APPID, openid: `o_oa_race_${i}`, first_seen_at: now, subscribed: true })
      .returning('id')
      .executeTakeFirstOrThrow()
    const token = await signSession(SECRET, {
      memberId: own.id,
      openid,
      expiresAt: new Date(now.getTime() + 3600_000),
    })
    const bind = async () => {
      const { code } = await issueBindingCode(get().db, follower.id, now)
      const bound = await call('/api/mp/bind', { token, body: { code } })
      expect([bound.status, bound.json.member?.id]).toEqual([200, follower.id])
      return bound.json.linked as { orders: number; points: number }
    }
    /** A request to the mini-program API whose session check read the link before the 绑定. */
    const before = (path: string, init: { method?: string; body?: unknown }) =>
      send(stale, path, {
        ...init,
        headers: { 'x-session-member': String(own.id), 'x-session-openid': openid },
      })
    return { openid, own: own.id, follower: follower.id, token, bind, before }
  }

  const send = async (
    to: { request: Hono['request'] },
    path: string,
    init: { method?: string; body?: unknown; headers?: Record<string, string> },
  ) => {
    const res = await to.request(path, {
      method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
      headers: { 'content-type': 'application/json', ...init.headers },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    })
    // biome-ignore lint/suspicious/noExplicitAny: response JSON, checked by the assertions
    return { status: res.status, json: (await res.json()) as Record<string, any> }
  }
  const call = (path: string, init: { token: string; method?: string; body?: unknown }) =>
    send(app, path, { ...init, headers: { authorization: `Bearer ${init.token}` } })

  it('PUT /profile lands on the follower (and complete_profile with it)', async () => {
    const u = await user()
    await u.bind()
    const put = await u.before('/profile', {
      method: 'PUT',
      body: { nickname: '小红', birthMonth: 7, city: '杭州' },
    })
    expect(put.status).toBe(200)
    expect(put.json.awarded).toBe(30)
    expect((await call('/api/mp/profile', { token: u.token })).json.profile).toEqual({
      nickname: '小红',
      birthMonth: 7,
      city: '杭州',
      missing: [],
    })
    expect((await call('/api/mp/me', { token: u.token })).json.member.points).toBe(30)
    expect(await pointsBalance(get().db, u.own)).toBe(0)
  })

  it('POST /reminders records the accepted send and the time on the follower', async () => {
    const u = await user()
    await u.bind()
    const set = await u.before('/reminders', {
      body: { result: { [TEMPLATE]: 'accept' }, time: '21:15' },
    })
    expect(set).toEqual({ status: 200, json: { reminder: { enabled: true, time: '21:15' } } })
    expect((await call('/api/mp/reminders', { token: u.token })).json.reminder).toEqual({
      enabled: true,
      time: '21:15',
    })
    const rows = await get()
      .db.selectFrom('checkin_reminders')
      .select(['member_id', 'mp_credits', 'mp_openid'])
      .where('member_id', 'in', [u.own, u.follower])
      .execute()
    expect(rows).toEqual([{ member_id: u.follower, mp_credits: 1, mp_openid: u.openid }])
  })

  it('DELETE /reminders turns the follower’s reminder off', async () => {
    const u = await user()
    await u.bind()
    const on = await call('/api/mp/reminders', {
      token: u.token,
      body: { result: { [TEMPLATE]: 'accept' }, time: '20:30' },
    })
    expect(on.json.reminder).toEqual({ enabled: true, time: '20:30' })
    const off = await u.before('/reminders', { method: 'DELETE' })
    expect(off).toEqual({ status: 200, json: { reminder: { enabled: false, time: '20:30' } } })
    expect((await call('/api/mp/reminders', { token: u.token })).json.reminder).toEqual({
      enabled: false,
      time: '20:30',
    })
  })

  it('POST /shares gives the follower’s link (its opens earn the follower)', async () => {
    const u = await user()
    await u.bind()
    const body = { kind: 'article', ref: ARTICLE }
    const shared = await u.before('/shares', { body })
    expect(shared.status).toBe(200)
    // asked again now, the follower's link is the same one
    const again = await call('/api/mp/shares', { token: u.token, body })
    expect(again.json.code).toBe(shared.json.code)
    const link = await get()
      .db.selectFrom('share_links')
      .select('member_id')
      .where('code', '=', shared.json.code)
      .executeTakeFirstOrThrow()
    expect(link.member_id).toBe(u.follower)
  })

  it('POST /reviews reviews the order the 绑定 moved to the follower', async () => {
    const u = await user()
    const product = await get()
      .db.insertInto('products')
      .values({
        appid: APPID,
        sku: `race-tea-${n}`,
        kind: 'flash_sale',
        name: '桂花乌龙',
        price_fen: 990,
        created_at: now,
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    const outTradeNo = `QZRACE${String(n).padStart(6, '0')}`
    await get()
      .db.insertInto('orders')
      .values({
        appid: APPID,
        out_trade_no: outTradeNo,
        member_id: u.own,
        mp_openid: u.openid,
        product_id: product.id,
        kind: 'flash_sale',
        description: '桂花乌龙',
        amount_fen: 990,
        status: 'paid',
        expires_at: now,
        created_at: now,
      })
      .execute()
    expect((await u.bind()).orders).toBe(1)
    const review = await u.before('/reviews', {
      body: { outTradeNo, rating: 5, text: '很好喝，回购！' },
    })
    expect([review.status, review.json.points]).toEqual([201, 20])
    expect((await call('/api/mp/me', { token: u.token })).json.member.points).toBe(20)
    expect(
      (await call(`/api/mp/reviews?sku=race-tea-${n}`, { token: u.token })).json.reviews,
    ).toMatchObject([{ rating: 5, text: '很好喝，回购！' }])
    expect(await pointsBalance(get().db, u.own)).toBe(0)
  })
})
