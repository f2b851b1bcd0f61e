/**
 * 商城订单 in a real browser (Debian's Chromium through playwright-core; the app, the sandbox
 * WeChat API and the sandbox WeChat Pay on loopback ports): a member buys in the mini program and
 * pays; an operator finds the order by its number, refunds part of it after the confirmation step,
 * and sees WeChat Pay processing it; the order's member link opens the buyer (a mini-program
 * member); the pages fit a 375 px phone. Screenshots go to
 * test-output/console/. Skipped, saying so, only without Chromium.
 */
import type { Page } from 'playwright-core'
import { afterAll, beforeAll, expect, it, vi } from 'vitest'
import { browserSuite, consolePages, SHOTS } from '../../test/browser-kit.js'
import { seedOperators } from '../../test/console-kit.js'
import { SAFE_ACCOUNT, startServer, type TestServer } from '../../test/server.js'
import { silentLogger } from '../logger.js'
import type { SandboxPay } from '../sandbox/pay-server.js'
import { startSandboxShop } from '../sandbox/sandbox-shop.js'
import { type SandboxApi, startSandboxApi } from '../sandbox/wechat-api-server.js'
import { nodeShop } from '../shop/node-shop.js'

vi.setConfig({ testTimeout: 90_000 })

browserSuite('shop orders in a browser', (db, browser) => {
  let server: TestServer
  let wx: SandboxApi
  let pay: SandboxPay
  let orderNo = ''
  const open = consolePages(browser, () => server.url)
  /** No horizontal scroll; else the text that sticks out, to say what to fix. */
  const noHorizontalScroll = async (page: Page) =>
    expect(
      await page.evaluate(() => {
        const out: string[] = []
        if (document.documentElement.scrollWidth <= window.innerWidth) return out
        const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT)
        for (let n = walk.nextNode(); n; n = walk.nextNode()) {
          const range = document.createRange()
          range.selectNodeContents(n)
          if (range.getBoundingClientRect().right > window.innerWidth)
            out.push(`${n.parentElement?.tagName}: ${n.textContent?.slice(0, 60)}`)
        }
        return out.length > 0 ? out : [`scrollWidth ${document.documentElement.scrollWidth}`]
      }),
    ).toEqual([])

  /** A mini-program member logs in, orders `sku` and pays at the sandbox; the order's number. */
  async function buyAndPay(sku: string): Promise<string> {
    const mp = async (path: string, body: unknown, token?: string) => {
      const res = await fetch(`${server.url}/api/mp${path}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: JSON.stringify(body),
      })
      // biome-ignore lint/suspicious/noExplicitAny: response JSON, checked below
      return (await res.json()) as Record<string, any>
    }
    const login = await mp('/login', { code: wx.loginCode(mpAppid, 'o_mp_browser_buyer') })
    const order = await mp('/orders', { sku }, login.token as string)
    const no = order.order.outTradeNo as string
    expect((await pay.pay(no)).answer?.status).toBe(204)
    return no
  }
  let mpAppid = ''

  beforeAll(async () => {
    await seedOperators(db().db, new Date())
    wx = await startSandboxApi()
    const sandbox = await startSandboxShop({ notifyUrl: 'http://placeholder/pay/notify' })
    pay = sandbox.pay
    const shop = await nodeShop(sandbox.config, {
      appid: SAFE_ACCOUNT.appid,
      apiBase: wx.url,
      logger: silentLogger,
    })
    mpAppid = shop.settings.mpAppid
    server = await startServer(db().db, { shop })
    shop.settings.notifyUrl = `${server.url}/pay/notify`
    orderNo = await buyAndPay('vip-30')
  }, 60_000)
  afterAll(async () => {
    await server?.close()
    await pay?.close()
    await wx?.close()
  })

  it('an operator finds an order by its number and refunds part of it after confirming', async () => {
    const page = await open(1280, 'op1', '/console/shop')
    expect(await page.locator('h1').textContent()).toBe('商城订单')
    await page.getByRole('link', { name: '订单', exact: true }).click()
    await page.getByLabel('订单号').fill(orderNo)
    await page.getByRole('button', { name: '查找' }).click()
    await page.getByRole('link', { name: orderNo }).click()
    await page.waitForURL(`${server.url}/console/shop/orders/${orderNo}`)
    expect(await page.locator('section:has(#order)').textContent()).toContain('已付款')
    expect(await page.locator('section:has(#events)').textContent()).toContain(
      'TRANSACTION.SUCCESS',
    )

    await page.getByLabel('退款金额（元）').fill('10')
    await page.getByLabel('退款原因').fill('会员重复购买')
    await page.getByRole('button', { name: '退款…' }).click()
    expect(await page.locator('#refund-confirm ~ p').textContent()).toContain('¥10.00')
    expect(await db().db.selectFrom('refunds').select('id').execute()).toEqual([])
    await page.getByRole('button', { name: '确认退款' }).click()
    await page.waitForURL(/refund=RK-/)
    expect(await page.getByRole('status').textContent()).toContain('微信支付处理中')
    expect(await page.locator('section:has(#refunds)').textContent()).toMatch(
      /¥10\.00.*会员重复购买.*微信支付处理中/,
    )
    expect(await page.getByLabel('退款金额（元）').inputValue()).toBe('20.00')
    const refunds = await db().db.selectFrom('refunds').select(['amount_fen', 'status']).execute()
    expect(refunds).toEqual([{ amount_fen: 1000, status: 'processing' }])
    await page.screenshot({ path: `${SHOTS}shop-order.png`, fullPage: true })

    await page.getByRole('link', { name: '退款', exact: true }).click()
    expect(await page.locator('#refund-list ~ table').textContent()).toContain(orderNo)
    await page.screenshot({ path: `${SHOTS}shop.png`, fullPage: true })
  })

  it("the order's member link opens the mini-program buyer, marked as one; it fits 375 px", async () => {
    const page = await open(375, 'op1', `/console/shop/orders/${orderNo}`)
    await page.getByRole('link', { name: 'o_mp_browser_buyer' }).click()
    await page.waitForLoadState()
    const url = new URL(page.url())
    expect(url.pathname).toBe('/console/members/o_mp_browser_buyer')
    expect(url.searchParams.get('mp')).toBe('1')
    expect(await page.getByRole('note').textContent()).toContain('小程序会员（非公众号粉丝）')
    expect(await page.locator('section:has(#orders)').textContent()).toContain(orderNo)
    // what only a follower has is not offered
    expect(await page.getByRole('button', { name: '排除出营销推送' }).count()).toBe(0)
    await noHorizontalScroll(page)
    await page.screenshot({ path: `${SHOTS}shop-mp-member-375.png`, fullPage: true })
  })

  it('fits a 375 px phone: tables become cards, no horizontal scroll', async () => {
    const page = await open(375, 'viewer1', `/console/shop/orders/${orderNo}`)
    await noHorizontalScroll(page)
    expect(await page.getByLabel('退款金额（元）').count()).toBe(0)
    await page.screenshot({ path: `${SHOTS}shop-375.png`, fullPage: true })
    for (const path of ['/console/shop', '/console/shop/orders', '/console/shop/refunds']) {
      await page.goto(`${server.url}${path}`)
      await noHorizontalScroll(page)
    }
    await page.goto(`${server.url}/console/shop/reconciliation`)
    await noHorizontalScroll(page)
  })
})
