/**
 * 留存与分层 and 邀请裂变 in a real browser (Debian's Chromium via playwright-core) on a seeded
 * community: the heat maps, Sankey, funnel and the other charts paint their canvases, and both
 * pages fit a 375 px phone. Screenshots go to test-output/console/. Skipped, saying so, only when
 * no Chromium executable exists.
 */
import type { BrowserContext, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, expect, it, vi } from 'vitest'
import { browserSuite, SHOTS } from '../../test/browser-kit.js'
import {
  passwordOf,
  seedAnalytics,
  seedInvitesAndSegments,
  seedOperators,
} from '../../test/console-kit.js'
import { SAFE_ACCOUNT, startServer, type TestServer } from '../../test/server.js'
import { localDay } from '../community/community-time.js'

vi.setConfig({ testTimeout: 90_000 })

/** Waits until the charts `ids` are drawn and each canvas has painted pixels (not blank). */
async function painted(page: Page, ids: string[]) {
  await page.waitForFunction(
    (want) =>
      want.every((id) => {
        const c = document.querySelector<HTMLCanvasElement>(
          `[data-chart="${id}"][data-ready="1"] canvas`,
        )
        if (!c) return false
        const { data } = c.getContext('2d')!.getImageData(0, 0, c.width, c.height)
        let n = 0
        for (let i = 3; i < data.length; i += 4) if (data[i]! > 0) n++
        return n > 500
      }),
    ids,
  )
}

browserSuite('analytics pages in a browser', (db, browser) => {
  let server: TestServer
  let session: Awaited<ReturnType<BrowserContext['storageState']>>
  const contexts: BrowserContext[] = []
  const foreign: string[] = []
  afterEach(() => expect(foreign).toEqual([]))

  /** A profile signed in as op1 at `width` px on `path`. */
  async function open(path: string, width = 1280): Promise<Page> {
    const context = await browser().newContext({
      viewport: { width, height: 900 },
      locale: 'zh-CN',
      storageState: session,
    })
    contexts.push(context)
    const page = await context.newPage()
    page.on('request', (r) => {
      if (!r.url().startsWith(server.url)) foreign.push(r.url())
    })
    await page.goto(`${server.url}${path}`)
    return page
  }

  beforeAll(async () => {
    const now = new Date()
    const today = localDay(now, 'Asia/Shanghai')
    await seedOperators(db().db, now)
    await seedAnalytics(db().db, SAFE_ACCOUNT.appid, today)
    await seedInvitesAndSegments(db().db, SAFE_ACCOUNT.appid, today)
    server = await startServer(db().db)
    const context = await browser().newContext({ locale: 'zh-CN' })
    contexts.push(context)
    const page = await context.newPage()
    await page.goto(`${server.url}/console/login`)
    await page.getByLabel('用户名').fill('op1')
    await page.getByLabel('密码').fill(passwordOf('op1'))
    await page.getByLabel('密码').press('Enter')
    await page.waitForURL(`${server.url}/console`)
    session = await context.storageState()
  })
  afterAll(async () => {
    for (const c of contexts) await c.close()
    await server?.close()
  })

  it('paints the retention heat maps, segment bars and the Sankey', async () => {
    const page = await open('/console/retention')
    await painted(page, ['chart-cohorts', 'chart-ltv', 'chart-segments', 'chart-flow'])
    expect(await page.locator('h1').textContent()).toBe('留存与分层')
    expect(await page.locator('body').textContent()).toContain('计划参考')
    await page.screenshot({ path: `${SHOTS}retention.png`, fullPage: true })
    // The filter form works with the keyboard-reachable selects.
    await page.getByLabel('粒度').selectOption('week')
    await page.getByLabel('来源').selectOption('invite')
    await page.getByRole('button', { name: '查看' }).click()
    await page.waitForURL(/grain=week&source=invite/)
    await painted(page, ['chart-cohorts'])
  })

  it('paints the invite funnel and the K-factor trend; shows a tree', async () => {
    const page = await open('/console/invites')
    await painted(page, ['chart-funnel', 'chart-k'])
    await page.getByRole('link', { name: '老张' }).click()
    await page.waitForURL(/inviter=o_seed_m0/)
    expect(await page.locator('#tree h2').textContent()).toContain('老张')
    await painted(page, ['chart-funnel', 'chart-k'])
    await page.screenshot({ path: `${SHOTS}invites.png`, fullPage: true })
  })

  it('fits a 375 px phone: no horizontal scroll on either page', async () => {
    for (const path of ['/console/retention', '/console/invites?inviter=o_seed_m0']) {
      const page = await open(path, 375)
      await page.waitForFunction(() => document.querySelector('[data-chart][data-ready="1"]'))
      expect(
        await page.evaluate(() => document.documentElement.scrollWidth),
        path,
      ).toBeLessThanOrEqual(375)
    }
  })
})
