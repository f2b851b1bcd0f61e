/**
 * The console over `app.request()`: passwords, sign-in and its throttle, cookie attributes,
 * sessions (idle and absolute limits, sign-out), CSRF and roles, assets and the overview's
 * empty state — on every test database.
 */
import type { Hono } from 'hono'
import { beforeAll, describe, expect, it } from 'vitest'
import { createRouter } from '../../handlers/index.js'
import {
  consoleTestApp,
  cookiesOf,
  csrfOf,
  manualClock,
  passwordOf,
  postForm,
  postLogin,
  seedOperators,
  signIn,
} from '../../test/console-kit.js'
import { forEachDatabase } from '../../test/databases.js'
import { testConfig } from '../../test/server.js'
import { createApp } from '../app.js'
import { createLogger, silentLogger } from '../logger.js'
import { assetUrl } from './assets.js'
import { hashPassword, verifyPassword } from './password.js'

describe('operator passwords', () => {
  it('are PBKDF2-SHA256 in one self-describing format, salted, verified exactly', async () => {
    const a = await hashPassword('correct horse')
    const b = await hashPassword('correct horse')
    expect(a).toMatch(/^pbkdf2-sha256\$100000\$[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=$/)
    expect(a).not.toBe(b)
    expect(await verifyPassword('correct horse', a)).toBe(true)
    expect(await verifyPassword('correct horsE', a)).toBe(false)
    expect(await verifyPassword('correct horse', 'scrypt$1$2$3')).toBe(false)
    expect(await verifyPassword('x', 'pbkdf2-sha256$100000$AAAA$AAAA')).toBe(false)
  })

  it('verify a hash made with fewer iterations (the count travels with the hash)', async () => {
    const h = await hashPassword('pw123456', 1000)
    expect(h.startsWith('pbkdf2-sha256$1000$')).toBe(true)
    expect(await verifyPassword('pw123456', h)).toBe(true)
  })
})

forEachDatabase('console', (db) => {
  const clock = manualClock(new Date('2026-11-20T02:00:00Z'))
  let app: Hono
  const request = (path: string, cookie = '') =>
    app.request(path, { headers: cookie ? { cookie } : {} })

  beforeAll(async () => {
    await seedOperators(db().db, clock.now())
    app = createApp({
      config: testConfig(),
      db: db().db,
      router: createRouter(),
      logger: silentLogger,
      clock,
      clientAddress: () => '203.0.113.9',
    })
  })

  it('sends a browser without a session to the sign-in page', async () => {
    const res = await request('/console')
    expect(res.status).toBe(303)
    expect(res.headers.get('location')).toBe('/console/login')
    const login = await request('/console/login')
    const html = await login.text()
    expect(html).toContain('<label for="login-name">用户名</label>')
    expect(login.headers.get('content-security-policy')).toContain("script-src 'self'")
  })

  it('names its icon inline, which the CSP allows: the browser asks for no /favicon.ico', async () => {
    const login = await request('/console/login')
    const icon = /<link rel="icon" href="([^"]+)"/.exec(await login.text())?.[1]
    expect(icon).toMatch(/^data:image\/svg\+xml,/)
    const csp = login.headers.get('content-security-policy') ?? ''
    expect(/img-src ([^;]*)/.exec(csp)?.[1]?.split(' ')).toContain('data:')
  })

  it('signs in with a session cookie that is HttpOnly, SameSite=Strict, Path=/console', async () => {
    const res = await postLogin(app, 'owner1', passwordOf('owner1'))
    expect(res.status).toBe(303)
    expect(res.headers.get('location')).toBe('/console')
    const line = res.headers.getSetCookie().find((l) => l.startsWith('qz_session='))!
    expect(line).toMatch(/; Path=\/console/)
    expect(line).toMatch(/; HttpOnly/)
    expect(line).toMatch(/; SameSite=Strict/)
    expect(line).not.toMatch(/Secure/)
    const token = cookiesOf(res).qz_session!
    const stored = await db().db.selectFrom('console_sessions').select('token_hash').execute()
    expect(stored.map((s) => s.token_hash)).not.toContain(token)
    expect(stored.length).toBeGreaterThan(0)
    const audit = await db()
      .db.selectFrom('audit_log')
      .select(['actor', 'client_address'])
      .where('action', '=', 'console.login')
      .executeTakeFirstOrThrow()
    expect(audit).toEqual({ actor: 'owner1', client_address: '203.0.113.9' })
  })

  it('marks the cookie Secure over HTTPS and behind a trusted proxy that says https', async () => {
    const direct = await postLogin(app, 'op1', passwordOf('op1'), {})
    expect(direct.headers.getSetCookie().join()).not.toMatch(/Secure/)
    const https = await app.request('https://console.example/console/login')
    expect(https.headers.getSetCookie()[0]).toMatch(/; Secure/)
    const proxied = createApp({
      config: testConfig({ TRUSTED_PROXY_HOPS: '1' }),
      db: db().db,
      router: createRouter(),
      logger: silentLogger,
      clock,
    })
    const res = await proxied.request('/console/login', {
      headers: { 'x-forwarded-proto': 'https' },
    })
    expect(res.headers.getSetCookie()[0]).toMatch(/; Secure/)
  })

  it('refuses a wrong password, an unknown name and a sign-in form without its CSRF token', async () => {
    const wrong = await postLogin(app, 'op1', 'not-the-password')
    expect(wrong.status).toBe(401)
    expect(await wrong.text()).toContain('用户名或密码错误')
    expect((await postLogin(app, 'nobody', 'whatever1')).status).toBe(401)
    const forged = await app.request('/console/login', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'name=op1&password=op1-password',
    })
    expect(forged.status).toBe(403)
    expect(forged.headers.getSetCookie().join()).not.toContain('qz_session')
  })

  it('refuses a name after 5 failures in 15 minutes, even with the right password', async () => {
    for (let i = 0; i < 5; i++) await postLogin(app, 'guessed', `wrong-${i}`)
    const res = await postLogin(app, 'guessed', 'wrong-5')
    expect(res.status).toBe(429)
    expect(await res.text()).toContain('登录失败次数过多')
    await db().db.deleteFrom('console_login_failures').execute()
    for (let i = 0; i < 5; i++) await postLogin(app, 'viewer1', `wrong-${i}`)
    expect((await postLogin(app, 'viewer1', passwordOf('viewer1'))).status).toBe(429)
    clock.advance(15 * 60_000 + 1000)
    expect((await postLogin(app, 'viewer1', passwordOf('viewer1'))).status).toBe(303)
  })

  it('counts simultaneous guesses: at most 5 per name and 10 per address are checked', async () => {
    // own clock, so the window can pass without moving the other tests' time
    await db().db.deleteFrom('console_login_failures').execute()
    const own = manualClock(clock.now())
    const guessing = consoleTestApp(db().db, own)
    const form = await guessing.request('/console/login')
    const csrf = csrfOf(await form.text())
    const cookie = `qz_login=${cookiesOf(form).qz_login}`
    const guess = (name: string, password: string) =>
      guessing.request('/console/login', {
        method: 'POST',
        headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ _csrf: csrf, name, password }).toString(),
      })
    const statuses = async (all: (Response | Promise<Response>)[]) => {
      const counts: Record<number, number> = {}
      for (const r of await Promise.all(all)) counts[r.status] = (counts[r.status] ?? 0) + 1
      return counts
    }
    const byName = await statuses(
      Array.from({ length: 40 }, (_, i) => guess('owner1', `wrong-${i}`)),
    )
    expect(byName).toEqual({ 401: 5, 429: 35 })
    expect((await guess('owner1', passwordOf('owner1'))).status).toBe(429)
    // the address has 5 more slots, whatever the names
    const byAddress = await statuses(
      Array.from({ length: 20 }, (_, i) => guess(`nobody${i}`, `wrong-${i}`)),
    )
    expect(byAddress).toEqual({ 401: 5, 429: 15 })
    own.advance(15 * 60_000 + 1000)
    expect((await guess('owner1', passwordOf('owner1'))).status).toBe(303)
    await db().db.deleteFrom('console_login_failures').execute()
  })

  it('signs in with the right password within the limit, leaving no failure behind', async () => {
    for (let i = 0; i < 4; i++) await postLogin(app, 'op1', `wrong-${i}`)
    expect((await postLogin(app, 'op1', passwordOf('op1'))).status).toBe(303)
    const left = await db()
      .db.selectFrom('console_login_failures')
      .select('id')
      .where('name', '=', 'op1')
      .execute()
    expect(left).toEqual([])
    await db().db.deleteFrom('console_login_failures').execute()
  })

  it('refuses a POST without the CSRF token (403) and a viewer any action (403)', async () => {
    const sneaky = (who: { cookie: string; csrf?: string }) =>
      postForm(app, '/console/system/operators', who.cookie, {
        ...(who.csrf ? { _csrf: who.csrf } : {}),
        name: 'sneaky',
        role: 'owner',
        password: 'sneaky-password',
      })
    const missing = await sneaky({ cookie: (await signIn(app, 'owner1')).cookie })
    expect(missing.status).toBe(403)
    expect(await missing.text()).toContain('CSRF')
    const refused = await sneaky(await signIn(app, 'viewer1'))
    expect(refused.status).toBe(403)
    expect(await refused.text()).toContain('只读')
    const notOwner = await sneaky(await signIn(app, 'op1'))
    expect(notOwner.status).toBe(403)
    expect(await notOwner.text()).toContain('只有“所有者”')
    const names = await db().db.selectFrom('operators').select('name').execute()
    expect(names.map((n) => n.name)).not.toContain('sneaky')
  })

  it('lets an owner add and disable an operator, audited with the owner’s name', async () => {
    const owner = await signIn(app, 'owner1')
    const bad = await postForm(app, '/console/system/operators', owner.cookie, {
      _csrf: owner.csrf,
      name: 'new-op',
      role: 'admin',
      password: 'new-op-password',
    })
    expect(bad.status).toBe(400)
    expect(await bad.text()).toContain('角色无效')
    const added = await postForm(app, '/console/system/operators', owner.cookie, {
      _csrf: owner.csrf,
      name: 'new-op',
      role: 'operator',
      password: 'new-op-password',
      dailyGrantLimit: '500',
    })
    expect(added.status).toBe(303)
    const row = await db()
      .db.selectFrom('operators')
      .select(['role', 'daily_grant_limit', 'password_hash'])
      .where('name', '=', 'new-op')
      .executeTakeFirstOrThrow()
    expect(row.role).toBe('operator')
    expect(row.daily_grant_limit).toBe(500)
    expect(row.password_hash).toMatch(/^pbkdf2-sha256\$/)
    const session = await signIn(app, 'new-op', 'new-op-password')
    const disabled = await postForm(
      app,
      '/console/system/operators/new-op/disabled',
      owner.cookie,
      {
        _csrf: owner.csrf,
        disabled: '1',
      },
    )
    expect(disabled.status).toBe(303)
    expect((await request('/console', session.cookie)).status).toBe(303)
    expect((await postLogin(app, 'new-op', 'new-op-password')).status).toBe(401)
    const audit = await db()
      .db.selectFrom('audit_log')
      .select(['actor', 'action', 'target'])
      .where('action', 'like', 'operator.%')
      .orderBy('id')
      .execute()
    expect(audit).toEqual([
      { actor: 'owner1', action: 'operator.add', target: 'new-op' },
      { actor: 'owner1', action: 'operator.disable', target: 'new-op' },
    ])
    const unknown = await postForm(app, '/console/system/operators/ghost/disabled', owner.cookie, {
      _csrf: owner.csrf,
      disabled: '1',
    })
    expect(unknown.status).toBe(404)
    expect(await db().db.selectFrom('audit_log').where('target', '=', 'ghost').execute()).toEqual(
      [],
    )
  })

  it('ends a session after 30 idle minutes, after 12 hours, and on sign-out', async () => {
    const a = await signIn(app, 'op1')
    clock.advance(29 * 60_000)
    expect((await request('/console/system/operators', a.cookie)).status).toBe(200)
    clock.advance(31 * 60_000)
    expect((await request('/console/system/operators', a.cookie)).status).toBe(303)
    const b = await signIn(app, 'op1')
    for (let i = 0; i < 25; i++) {
      clock.advance(29 * 60_000)
      await request('/console/system/operators', b.cookie)
    }
    expect((await request('/console/system/operators', b.cookie)).status).toBe(303)
    const c = await signIn(app, 'op1')
    expect((await postForm(app, '/console/logout', c.cookie, { _csrf: c.csrf })).status).toBe(303)
    expect((await request('/console/system/operators', c.cookie)).status).toBe(303)
  })

  it('renders the overview on an empty community, in Chinese and in English, under 100 KB', async () => {
    const { cookie } = await signIn(app, 'viewer1')
    const res = await request('/console', cookie)
    expect(res.status).toBe(200)
    const html = await res.text()
    expect(html.length).toBeLessThan(100_000)
    expect(html).toContain('<h1>概览</h1>')
    expect(html).toContain('粉丝数据不足 3 天')
    expect(html).toContain('没有未关闭的告警')
    // Every section has a page and a link.
    for (const href of [
      '/console',
      '/console/members',
      '/console/retention',
      '/console/invites',
      '/console/campaigns',
      '/console/activities',
      '/console/rewards',
      '/console/shop',
      '/console/community',
      '/console/system',
    ])
      expect(html).toContain(`<li><a href="${href}"`)
    const en = await request('/console?lang=en', cookie)
    expect(await en.text()).toContain('<h1>Overview</h1>')
    expect(en.headers.getSetCookie()[0]).toMatch(/^qz_lang=en;/)
  })

  it('refuses a NUL or bytes that are not UTF-8 in a URL or a form: a 400 page, nothing changed', async () => {
    const lines: string[] = []
    const logged = createApp({
      config: testConfig(),
      db: db().db,
      router: createRouter(),
      logger: createLogger({ level: 'warn', write: (line) => lines.push(line) }),
      clock,
      clientAddress: () => '203.0.113.77',
    })
    const failures = () => db().db.selectFrom('console_login_failures').select('name').execute()
    const before = await failures()
    // signing in (no session yet): a NUL in the name is refused before the throttle counts it
    const signIn400 = await postLogin(logged, 'a\u0000', 'whatever1')
    expect(signIn400.status).toBe(400)
    expect(await signIn400.text()).toContain('不能包含 NUL 字符')
    expect(signIn400.headers.getSetCookie().join()).not.toContain('qz_session')
    expect(await failures()).toEqual(before)
    const op = await signIn(logged, 'op1')
    for (const path of [
      '/console/members?q=%00',
      '/console/members/%00',
      '/console/activities/%00',
      '/console/members?q=%FF',
    ]) {
      const res = await logged.request(path, { headers: { cookie: op.cookie } })
      expect(res.status, path).toBe(400)
      expect(await res.text(), path).toMatch(/不能包含 NUL 字符|不是有效的 UTF-8/)
    }
    const post = (path: string, body: string) =>
      logged.request(path, {
        method: 'POST',
        headers: { cookie: op.cookie, 'content-type': 'application/x-www-form-urlencoded' },
        body,
      })
    // the default activities are made on the list's first read
    expect(
      (await logged.request('/console/activities', { headers: { cookie: op.cookie } })).status,
    ).toBe(200)
    const award = await post(
      '/console/activities/checkin/award?lang=en',
      `_csrf=${op.csrf}&others=o_x%00`,
    )
    expect(award.status).toBe(400)
    expect(await award.text()).toContain('must not contain NUL characters')
    const rewards = () => db().db.selectFrom('rewards').select('code').execute()
    const had = await rewards()
    const mangled = await post(
      '/console/rewards/catalog',
      `_csrf=${op.csrf}&code=4242&name=%FF%FE&cost=5`,
    )
    expect(mangled.status).toBe(400)
    expect(await mangled.text()).toContain('表单或地址不是有效的 UTF-8 文本')
    expect(await rewards()).toEqual(had)
    // a good form still goes through (the body read for the check is read again by the page)
    expect(
      (await post('/console/rewards/catalog', `_csrf=${op.csrf}&code=4243&name=好&cost=5`)).status,
    ).toBe(303)
    expect(lines.filter((l) => JSON.parse(l).level === 'error')).toEqual([])
  })

  it('serves hashed assets with a year-long immutable cache', async () => {
    for (const url of [assetUrl('echarts', 'js'), assetUrl('console', 'css')]) {
      const res = await app.request(url)
      expect(res.status).toBe(200)
      expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable')
      expect((await res.text()).length).toBeGreaterThan(500)
    }
    expect((await app.request('/console/assets/echarts.000000000000.js')).status).toBe(404)
  })
})
