import { afterAll, beforeAll, expect, it, vi } from 'vitest'
import { browserSuite, consolePages, noHorizontalScroll, SHOTS } from '../../test/browser-kit.js'
import { seedOperators } from '../../test/console-kit.js'
import { SAFE_ACCOUNT, startServer, type TestServer } from '../../test/server.js'
import { changePoints } from '../community/points-ledger.js'

vi.setConfig({ testTimeout: 90_000 })

browserSuite('rewards in a browser', (db, browser) => {
  let server: TestServer
  const open = consolePages(browser, () => server.url)
  // One community day for the whole suite (a member's first message of the day earns daily_login):
  // on the real clock a run across local midnight paid a second daily_login with 兑换 after `start`
  // was read, and the refund left the balance 10 above it.
  const clock = { now: () => new Date('2026-11-18T04:00:00Z') }

  beforeAll(async () => {
    await seedOperators(db().db, clock.now())
    server = await startServer(db().db, { clock })
  })
  afterAll(async () => {
    await server?.close()
  })

  it('an operator finds a redemption by its code and cancels it; the points come back', async () => {
    // A follower with 800 points (and the day's sign-in points) redeems 精美礼品 (500) by chatting with the account.
    const chat = server.pusher()
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
        now: clock.now(),
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
