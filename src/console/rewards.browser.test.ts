/**
 * 积分商城 in a real browser (Debian's Chromium through playwright-core, the app on a loopback
 * port): a follower redeems a reward by chatting with the account, an operator finds the
 * redemption by the code the follower quotes, confirms the cancellation and sees the points come
 * back; the section fits a 375 px phone. Screenshots go to test-output/console/. Skipped, saying
 * so, only without Chromium.
 */
import type { BrowserContext, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, expect, it, vi } from 'vitest'
import { browserSuite, SHOTS } from '../../test/browser-kit.js'
import { passwordOf, seedOperators } from '../../test/console-kit.js'
import { SAFE_ACCOUNT, startServer, type TestServer } from '../../test/server.js'
import { changePoints } from '../community/points-ledger.js'
import { createPusher } from '../sandbox/pusher.js'

vi.setConfig({ testTimeout: 90_000 })

browserSuite('rewards in a browser', (db, browser) => {
  let server: TestServer
  const contexts: BrowserContext[] = []
  const foreign: string[] = []
  afterEach(() => expect(foreign).toEqual([]))
  const noHorizontalScroll = async (page: Page) =>
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(
      page.viewportSize()!.width,
    )

  /** A fresh profile at `width` px, signed in as `as`, on `path`. */
  async function open(width: number, as: string, path: string): Promise<Page> {
    const context = await browser().newContext({
      viewport: { width, height: 900 },
      locale: 'zh-CN',
    })
    contexts.push(context)
    const page = await context.newPage()
    page.on('request', (r) => {
      if (!r.url().startsWith(server.url)) foreign.push(r.url())
    })
    await page.goto(`${server.url}/console/login`)
    await page.getByLabel('用户名').fill(as)
    await page.getByLabel('密码').fill(passwordOf(as))
    await page.getByLabel('密码').press('Enter')
    await page.waitForURL(`${server.url}/console`)
    await page.goto(`${server.url}${path}`)
    return page
  }

  beforeAll(async () => {
    await seedOperators(db().db, new Date())
    server = await startServer(db().db)
  })
  afterAll(async () => {
    for (const c of contexts) await c.close()
    await server?.close()
  })

  it('an operator finds a redemption by its code and cancels it; the points come back', async () => {
    // A follower with 800 points (and the day's sign-in points) redeems 精美礼品 (500) by chatting with the account.
    const chat = createPusher({ url: `${server.url}/wechat`, account: SAFE_ACCOUNT })
    await chat.text('o_gift_1', '积分')
    const member = await db()
      .db.selectFrom('members')
      .select('id')
      .where('openid', '=', 'o_gift_1')
      .executeTakeFirstOrThrow()
    await changePoints(
      db().db,
      {
        appid: SAFE_ACCOUNT.appid,
        memberId: member.id,
        rule: 'grant',
        idempotencyKey: 'browser-rewards',
        now: new Date(),
        timeZone: 'Asia/Shanghai',
      },
      800,
    )
    const balance = async () =>
      (
        await db()
          .db.selectFrom('members')
          .select('points_balance')
          .where('id', '=', member.id)
          .executeTakeFirstOrThrow()
      ).points_balance
    const start = await balance()
    const redeemed = await chat.text('o_gift_1', '兑换 2')
    const code = /兑换码：([A-Z0-9]{10})/.exec(String(redeemed.reply?.Content))?.[1]
    expect(code, String(redeemed.reply?.Content)).toBeTruthy()

    const page = await open(1280, 'op1', '/console/rewards/redemptions')
    expect(await page.locator('h1').textContent()).toBe('积分商城')
    await page.getByRole('textbox', { name: '兑换码' }).fill(code!.toLowerCase())
    await page.getByRole('button', { name: '查找' }).click()
    await expect.poll(() => page.locator('#found').textContent()).toContain('精美礼品')
    await page
      .locator('#found')
      .getByRole('link', { name: `取消兑换 ${code}` })
      .click()
    await page.waitForURL(/\/cancel$/)
    expect(await page.locator('#confirm ~ form').textContent()).toContain('取消后 500 积分退回会员')
    await page.getByRole('button', { name: '确认取消' }).click()
    await page.waitForURL(/done=cancelled/)
    expect(await page.getByRole('status').textContent()).toBe(`已取消兑换 ${code}，积分已退回`)
    expect(await page.locator('#found').textContent()).toContain(`+500，退回后余额 ${start}`)
    expect(await balance()).toBe(start)
    await page.screenshot({ path: `${SHOTS}rewards.png`, fullPage: true })
  })

  it('积分商城 fits a 375 px phone', async () => {
    const page = await open(375, 'op1', '/console/rewards?rule=checkin')
    await noHorizontalScroll(page)
    expect(await page.getByLabel('上限周期').inputValue()).toBe('day')
    await page.screenshot({ path: `${SHOTS}rewards-375.png`, fullPage: true })
    for (const path of ['catalog', 'redemptions', 'transfers']) {
      await page.goto(`${server.url}/console/rewards/${path}`)
      await noHorizontalScroll(page)
    }
  })
})
