import type { Hono } from 'hono'
import { beforeAll, expect, it } from 'vitest'
import { createRouter } from '../../handlers/index.js'
import { forEachDatabase } from '../../test/databases.js'
import { pointsBalance } from '../../test/member-fixtures.js'
import { SAFE_ACCOUNT, testConfig } from '../../test/server.js'
import { createApp } from '../app.js'
import { silentLogger } from '../logger.js'
import { signSession } from '../shop/mp-auth.js'
import type { ShopRouteOptions } from './shop.js'

const APPID = SAFE_ACCOUNT.appid
const MP_APPID = 'wxmpearn00000000001'
const SECRET = 'mp-earn-session-secret-0123456789'
const ADMIN = 'earn-operator-token-0123456789'
const WECHAT_UA = 'Mozilla/5.0 (Linux; Android 14) Mobile MicroMessenger/8.0.50.2701 NetType/WIFI'
const ARTICLE = 'https://mp.weixin.qq.com/s/EarnRoutes1'

forEachDatabase('earn routes: reviews, shares, profile, /r/s and hiding a review', (get) => {
  let app: Hono
  const now = new Date('2026-12-01T02:00:00Z')
  const clock = { now: () => now }
  let n = 0

  beforeAll(() => {
    // Only what these routes use of the shop: its accounts and the session secret.
    const shop = {
      settings: { appid: APPID, mpAppid: MP_APPID },
      gateway: { mchid: '1900000001' },
      sessionSecret: SECRET,
    } as unknown as ShopRouteOptions['shop']
    app = createApp({
      config: testConfig({ ADMIN_TOKEN: ADMIN, PUBLIC_BASE_URL: 'https://q.example' }),
      db: get().db,
      router: createRouter(),
      logger: silentLogger,
      clock,
      shop,
      clientAddress: (c) => c.req.header('x-test-peer') ?? '10.0.0.1',
    })
  })

  /** A follower signed in to the mini program; returns its session token and member id. */
  async function signIn() {
    const openid = `o_earn_route_${++n}`
    const m = await get()
      .db.insertInto('members')
      .values({ appid: APPID, openid, first_seen_at: now })
      .returning('id')
      .executeTakeFirstOrThrow()
    await get()
      .db.insertInto('mp_users')
      .values({ appid: MP_APPID, openid: `mp_${openid}`, member_id: m.id, created_at: now })
      .execute()
    const token = await signSession(SECRET, {
      memberId: m.id,
      openid: `mp_${openid}`,
      expiresAt: new Date(now.getTime() + 3600_000),
    })
    return { token, id: m.id, openid }
  }
  const call = async (
    path: string,
    init: { token?: string; method?: string; body?: unknown; headers?: Record<string, string> },
  ) => {
    const res = await app.request(path, {
      method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
      headers: {
        'content-type': 'application/json',
        ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
        ...init.headers,
      },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    })
    const type = res.headers.get('content-type') ?? ''
    // biome-ignore lint/suspicious/noExplicitAny: response JSON, checked by the assertions
    const json: Record<string, any> = type.includes('json') ? await res.json() : {}
    return { status: res.status, json, res }
  }
  const balance = (id: number) => pointsBalance(get().db, id)

  it('reviews a paid order through the mini program; the operator hides it and the points go', async () => {
    const u = await signIn()
    const product = await get()
      .db.insertInto('products')
      .values({
        appid: APPID,
        sku: 'earn-tea',
        kind: 'flash_sale',
        name: '桂花乌龙',
        price_fen: 990,
        created_at: now,
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    await get()
      .db.insertInto('orders')
      .values({
        appid: APPID,
        out_trade_no: 'QZEARN000001',
        member_id: u.id,
        mp_openid: `mp_${u.openid}`,
        product_id: product.id,
        kind: 'flash_sale',
        description: '桂花乌龙',
        amount_fen: 990,
        status: 'paid',
        expires_at: now,
        created_at: now,
      })
      .execute()
    const body = { outTradeNo: 'QZEARN000001', rating: 5, text: '很好喝，回购！' }
    expect((await call('/api/mp/reviews', { body })).status).toBe(401)
    const bad = await call('/api/mp/reviews', {
      token: u.token,
      body: { outTradeNo: 'QZEARN000001', rating: 6, text: '好' },
    })
    expect(bad.status).toBe(400)
    expect(bad.json.issues.map((i: { path: string }) => i.path)).toEqual(['rating', 'text'])
    expect(
      (await call('/api/mp/reviews', { token: u.token, body: { ...body, outTradeNo: 'QZNONE00' } }))
        .json,
    ).toMatchObject({ code: 'NOT_FOUND' })
    const made = await call('/api/mp/reviews', { token: u.token, body })
    expect(made.status).toBe(201)
    expect(made.json).toMatchObject({ points: 20, capped: false, balance: 20 })
    const again = await call('/api/mp/reviews', { token: u.token, body })
    expect([again.status, again.json.code]).toEqual([409, 'ALREADY_REVIEWED'])
    const listed = await call('/api/mp/reviews?sku=earn-tea', { token: u.token })
    expect(listed.json.reviews).toMatchObject([{ rating: 5, text: '很好喝，回购！' }])

    const admin = { authorization: `Bearer ${ADMIN}` }
    const id = made.json.review.id
    const hide = () =>
      call(`/admin/api/accounts/${APPID}/reviews/${id}/hide`, { method: 'POST', headers: admin })
    expect(
      (await call(`/admin/api/accounts/${APPID}/reviews/${id}/hide`, { method: 'POST' })).status,
    ).toBe(401)
    expect(
      (
        await call(`/admin/api/accounts/${APPID}/reviews/x/hide`, {
          method: 'POST',
          headers: admin,
        })
      ).status,
    ).toBe(400)
    expect(
      (
        await call(`/admin/api/accounts/${APPID}/reviews/999999/hide`, {
          method: 'POST',
          headers: admin,
        })
      ).status,
    ).toBe(404)
    expect((await hide()).json).toEqual({ status: 'hidden', reversed: 20, shortfall: 0 })
    expect((await hide()).json).toEqual({ status: 'already_hidden' })
    expect(await balance(u.id)).toBe(0)
    expect((await call('/api/mp/reviews?sku=earn-tea', { token: u.token })).json.reviews).toEqual(
      [],
    )
    const audited = await get()
      .db.selectFrom('audit_log')
      .select(['action', 'target'])
      .where('action', '=', 'review.hide')
      .execute()
    expect(audited).toEqual([{ action: 'review.hide', target: String(id) }])
    const list = await call(`/admin/api/accounts/${APPID}/reviews?status=hidden`, {
      headers: admin,
    })
    expect(list.json.reviews).toMatchObject([
      { id, status: 'hidden', points: 20, reversedPoints: 20 },
    ])
    const unhide = () =>
      call(`/admin/api/accounts/${APPID}/reviews/${id}/unhide`, { method: 'POST', headers: admin })
    expect((await unhide()).json).toEqual({ status: 'visible', restored: 20 })
    expect((await unhide()).json).toEqual({ status: 'already_visible' })
    expect(await balance(u.id)).toBe(20)
    expect(
      (await call('/api/mp/reviews?sku=earn-tea', { token: u.token })).json.reviews,
    ).toHaveLength(1)
  })

  it('gives a share link; a friend opening it in WeChat earns the sharer once, with a cookie', async () => {
    const u = await signIn()
    const refused = await call('/api/mp/shares', {
      token: u.token,
      body: { kind: 'article', ref: 'https://evil.example/x' },
    })
    expect(refused.status).toBe(404)
    expect(
      (await call('/api/mp/shares', { token: u.token, body: { kind: 'post', ref: 'x' } })).status,
    ).toBe(400)
    const made = await call('/api/mp/shares', {
      token: u.token,
      body: { kind: 'article', ref: ARTICLE },
      headers: { 'x-test-peer': '10.2.0.1' },
    })
    expect(made.status).toBe(200)
    expect(made.json.url).toBe(`https://q.example/r/s/${made.json.code}`)
    const path = `/r/s/${made.json.code}`

    const open = (peer: string, headers: Record<string, string> = {}) =>
      app.request(path, { headers: { 'x-test-peer': peer, 'user-agent': WECHAT_UA, ...headers } })
    // a bot and the sharer themself: redirected, nothing earned
    const bot = await open('10.2.0.2', { 'user-agent': 'curl/8.0' })
    expect([bot.status, bot.headers.get('location')]).toEqual([302, ARTICLE])
    await open('10.2.0.1')
    expect(await balance(u.id)).toBe(0)
    // a friend: earned, and the cookie keeps who they are on another network
    const friend = await open('10.2.0.3')
    expect(friend.headers.get('location')).toBe(ARTICLE)
    const cookie = /qz_vid=([0-9a-f]{32});/.exec(friend.headers.get('set-cookie') ?? '')?.[1]
    expect(friend.headers.get('set-cookie')).toMatch(/HttpOnly/)
    expect(cookie).toBeDefined()
    expect(await balance(u.id)).toBe(5)
    await open('10.2.9.9', { cookie: `qz_vid=${cookie}` })
    expect(await balance(u.id)).toBe(5)
    expect((await app.request('/r/s/AAAAAAAAAAAAAAAA')).status).toBe(404)
    expect((await app.request('/r/s/bad')).status).toBe(404)
  })

  it('an activity link opens a landing page with the activity, escaped', async () => {
    const u = await signIn()
    await get()
      .db.insertInto('activities')
      .values({
        appid: APPID,
        key: 'earnwalk',
        name: '周末<徒步>',
        description: '西湖 & 九溪',
        cron: '0 9 * * 6',
        cadence: 'weekly',
        status: 'open',
        created_at: now,
      })
      .execute()
    const made = await call('/api/mp/shares', {
      token: u.token,
      body: { kind: 'activity', ref: 'earnwalk' },
    })
    const page = await app.request(`/r/s/${made.json.code}`, {
      headers: { 'x-test-peer': '10.3.0.2', 'user-agent': WECHAT_UA },
    })
    expect(page.status).toBe(200)
    const html = await page.text()
    expect(html).toContain('周末&lt;徒步&gt;')
    expect(html).toContain('西湖 &amp; 九溪')
    expect(html).toContain('报名 earnwalk')
    expect(await balance(u.id)).toBe(5)
    // the page loads nothing (no script, style or image): a policy that allows nothing, as the
    // console's pages have one
    expect(html).not.toMatch(/<(script|style|img|link|iframe|form)\b|\bstyle=/i)
    expect({
      csp: page.headers.get('content-security-policy'),
      nosniff: page.headers.get('x-content-type-options'),
      referrer: page.headers.get('referrer-policy'),
    }).toEqual({
      csp: "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
      nosniff: 'nosniff',
      referrer: 'no-referrer',
    })
  })

  it('fills the profile through the mini program and awards complete_profile once', async () => {
    const u = await signIn()
    expect((await call('/api/mp/profile', { token: u.token })).json.profile).toEqual({
      nickname: null,
      birthMonth: null,
      city: null,
      missing: ['nickname', 'birthMonth', 'city'],
    })
    const bad = await call('/api/mp/profile', {
      token: u.token,
      method: 'PUT',
      body: { nickname: '官方客服', birthMonth: 13, city: '杭州1' },
    })
    expect(bad.status).toBe(400)
    const put = (body: unknown) => call('/api/mp/profile', { token: u.token, method: 'PUT', body })
    expect((await put({ birthMonth: 13 })).json.issues).toMatchObject([{ path: 'birthMonth' }])
    expect((await put({ nickname: '官方客服', city: '杭州1' })).json.issues).toMatchObject([
      { path: 'nickname' },
      { path: 'city' },
    ])
    expect((await put({})).status).toBe(400)
    expect((await put({ nickname: '小明', birthMonth: 5 })).json).toMatchObject({
      awarded: null,
      profile: { missing: ['city'] },
    })
    expect((await put({ city: '杭州' })).json).toEqual({
      awarded: 30,
      profile: { nickname: '小明', birthMonth: 5, city: '杭州', missing: [] },
    })
    expect((await put({ city: '上海' })).json.awarded).toBeNull()
    expect(await balance(u.id)).toBe(30)
  })
})
