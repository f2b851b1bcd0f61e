/**
 * The console in a real browser: Debian's Chromium driven by playwright-core against the app on
 * a loopback port, on a seeded community (operators of each role, 60 built days). Screenshots go
 * to test-output/console/. Skipped, saying so, only when no Chromium executable exists.
 */
import type { BrowserContext, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, expect, it, vi } from 'vitest'
import { browserSuite, SHOTS } from '../../test/browser-kit.js'
import { passwordOf, seedAnalytics, seedOperators } from '../../test/console-kit.js'
import { SAFE_ACCOUNT, startServer, type TestServer } from '../../test/server.js'
import { localDay } from '../community/community-time.js'

// A page with ECharts takes seconds on a busy 2-core machine; 30 s was exceeded once at load 13.
vi.setConfig({ testTimeout: 90_000 })

browserSuite('console in a browser', (db, browser) => {
  let server: TestServer
  const contexts: BrowserContext[] = []
  const foreign: string[] = []
  afterEach(() => expect(foreign).toEqual([]))
  const shot = (page: Page, file: string) =>
    page.screenshot({ path: `${SHOTS}${file}`, fullPage: true })

  const signedIn = new Map<string, Awaited<ReturnType<BrowserContext['storageState']>>>()

  /** A fresh browser profile at `width` px on `path`, with `as`'s session (signed in once). */
  async function open(width = 1280, as?: string, path = '/console'): Promise<Page> {
    if (as && !signedIn.has(as)) {
      const page = await open(width)
      await signInWith(page, as, passwordOf(as))
      expect(page.url()).toBe(`${server.url}/console`)
      signedIn.set(as, await page.context().storageState())
    }
    const context = await browser().newContext({
      viewport: { width, height: 900 },
      locale: 'zh-CN',
      ...(as ? { storageState: signedIn.get(as) } : {}),
    })
    contexts.push(context)
    const page = await context.newPage()
    // No external network: every request must go to the app (checked after each test).
    page.on('request', (r) => {
      if (!r.url().startsWith(server.url)) foreign.push(r.url())
    })
    if (as) await page.goto(`${server.url}${path}`)
    return page
  }

  async function signInWith(page: Page, user: string, password: string) {
    await page.goto(`${server.url}/console/login`)
    await page.getByLabel('用户名').fill(user)
    await page.getByLabel('密码').fill(password)
    await page.getByLabel('密码').press('Enter')
    await page.waitForLoadState()
  }

  beforeAll(async () => {
    const now = new Date()
    await seedOperators(db().db, now)
    await seedAnalytics(db().db, SAFE_ACCOUNT.appid, localDay(now, 'Asia/Shanghai'))
    server = await startServer(db().db)
  })
  afterAll(async () => {
    for (const c of contexts) await c.close()
    await server?.close()
  })

  it('signs in with the keyboard and shows the overview', async () => {
    const page = await open()
    await page.goto(`${server.url}/console`)
    expect(page.url()).toBe(`${server.url}/console/login`)
    await shot(page, 'login.png')
    await page.keyboard.press('Tab')
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('login-name')
    await signInWith(page, 'owner1', passwordOf('owner1'))
    expect(page.url()).toBe(`${server.url}/console`)
    expect(await page.locator('h1').textContent()).toBe('概览')
    await page.keyboard.press('Tab')
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('跳到正文')
  })

  it('loads with no console error: the icon is inline, nothing asks for /favicon.ico', async () => {
    const page = await open()
    const errors: string[] = []
    const icons: string[] = []
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text())
    })
    page.on('request', (r) => {
      if (new URL(r.url()).pathname === '/favicon.ico') icons.push(r.url())
    })
    await page.goto(`${server.url}/console/login`)
    await page.waitForLoadState('networkidle')
    expect(icons).toEqual([])
    expect(errors).toEqual([])
    const icon = await page.evaluate(() => document.querySelector('link[rel="icon"]')?.outerHTML)
    expect(icon).toMatch(/href="data:image\/svg\+xml,/)
  })

  it('refuses a wrong password, then a name after 5 failures', async () => {
    const page = await open()
    await signInWith(page, 'op1', 'not-the-password')
    expect(await page.getByRole('alert').textContent()).toBe('用户名或密码错误。')
    for (let i = 0; i < 5; i++) await signInWith(page, 'mallory', `guess-${i}`)
    await signInWith(page, 'mallory', 'guess-5')
    expect(await page.getByRole('alert').textContent()).toContain('登录失败次数过多')
  })

  it('draws the overview charts (canvas with pixels) and the fitted curves', async () => {
    const page = await open(1280, 'op1')
    await page.waitForFunction(
      () => document.querySelectorAll('[data-chart][data-ready="1"] canvas').length >= 6,
    )
    // Every chart's canvas has drawn pixels (not blank), once ECharts has painted.
    await page.waitForFunction(() =>
      Array.from(document.querySelectorAll<HTMLCanvasElement>('[data-chart] canvas')).every((c) => {
        const { data } = c.getContext('2d')!.getImageData(0, 0, c.width, c.height)
        let painted = 0
        for (let i = 3; i < data.length; i += 4) if (data[i]! > 0) painted++
        return painted > 500
      }),
    )
    const charts = await page
      .locator('[data-chart]')
      .evaluateAll((els) => els.map((e) => e.id || e.getAttribute('data-chart')))
    expect(charts).toEqual([
      'chart-followers',
      'chart-activity',
      'chart-points',
      'chart-gmv',
      'chart-growth',
      'chart-retention',
    ])
    expect(await page.locator('body').textContent()).toContain('日活较过去 4 周同日均值下降 50%')
    expect(await page.locator('body').textContent()).toContain('计划参考')
    await shot(page, 'overview.png')
  })

  it('fits a 375 px phone: no horizontal scroll, navigation folded, tables as cards', async () => {
    const page = await open(375, 'viewer1')
    await page.waitForFunction(() => document.querySelector('[data-chart][data-ready="1"]'))
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375)
    expect(await page.locator('details.nav').getAttribute('open')).toBeNull()
    expect(
      await page.locator('table.data thead').evaluate((e) => e.getBoundingClientRect().left),
    ).toBeLessThan(0)
    await shot(page, 'overview-375.png')
    await page.goto(`${server.url}/console/system/operators`)
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375)
  })

  it('refuses a viewer an action with a 403 page in Chinese', async () => {
    const page = await open(1280, 'viewer1', '/console/system/operators')
    expect(await page.locator('#op-name').count()).toBe(0)
    // A forged add-operator form carrying the viewer's own CSRF token.
    const response = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST'),
      page.evaluate(() => {
        const token = document.querySelector<HTMLInputElement>('input[name=_csrf]')!.value
        const form = document.createElement('form')
        form.method = 'post'
        form.action = '/console/system/operators'
        for (const [k, v] of Object.entries({
          _csrf: token,
          name: 'eve',
          role: 'owner',
          password: 'eve-password',
        })) {
          const input = document.createElement('input')
          input.name = k
          input.value = v
          form.append(input)
        }
        document.body.append(form)
        form.submit()
      }),
    ]).then(([r]) => r)
    expect(response.status()).toBe(403)
    await page.waitForLoadState()
    expect(await page.getByRole('alert').textContent()).toBe('你的角色是“只读”，不能执行操作。')
  })

  it('refuses a form without its CSRF token (403); an owner adds an operator', async () => {
    const page = await open(1280, 'owner1', '/console/system/operators')
    await page.getByLabel('用户名').fill('carol')
    await page.getByLabel('初始密码（至少 8 位）').fill('carol-password')
    await page.locator('form.stack input[name=_csrf]').evaluate((e) => e.remove())
    const [refused] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST'),
      page.getByRole('button', { name: '添加运营账号' }).click(),
    ])
    expect(refused.status()).toBe(403)
    await page.goto(`${server.url}/console/system/operators`)
    await page.getByLabel('用户名').fill('carol')
    await page.getByLabel('角色').selectOption('viewer')
    await page.getByLabel('初始密码（至少 8 位）').fill('carol-password')
    await page.getByRole('button', { name: '添加运营账号' }).click()
    await page.waitForURL(/done=carol/)
    expect(await page.getByRole('status').textContent()).toBe('已更新 carol')
    await shot(page, 'operators.png')
    const audit = await db()
      .db.selectFrom('audit_log')
      .select(['actor', 'target'])
      .where('action', '=', 'operator.add')
      .execute()
    expect(audit).toEqual([{ actor: 'owner1', target: 'carol' }])
  })
})
