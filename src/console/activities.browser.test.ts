/**
 * 活动 and 系统 in a real browser (Debian's Chromium through playwright-core, the app on a loopback
 * port): an operator creates an activity, followers sign up by chatting with the account (pushes
 * through the webhook), the console lists them with the waitlist and awards the points; 系统 fits a
 * 375 px phone. Screenshots go to test-output/console/. Skipped, saying so, only without Chromium.
 */
import type { Page } from 'playwright-core'
import { afterAll, beforeAll, expect, it, vi } from 'vitest'
import { browserSuite, consolePages, noHorizontalScroll, SHOTS } from '../../test/browser-kit.js'
import { seedOperators } from '../../test/console-kit.js'
import { SAFE_ACCOUNT, startServer, type TestServer } from '../../test/server.js'

vi.setConfig({ testTimeout: 90_000 })

browserSuite('activities and system in a browser', (db, browser) => {
  let server: TestServer
  const open = consolePages(browser, () => server.url)
  const shot = (page: Page, file: string) =>
    page.screenshot({ path: `${SHOTS}${file}`, fullPage: true })
  // One community day for the whole suite (a daily activity's occurrence is the local day): on the
  // real clock a run across local midnight after the sign-ups showed the new day's empty occurrence.
  // The server, the sign-ups from chat and the seeded operators read the same clock.
  const clock = { now: () => new Date('2026-11-18T04:00:00Z') }

  beforeAll(async () => {
    await seedOperators(db().db, clock.now())
    server = await startServer(db().db, { clock })
  })
  afterAll(async () => {
    await server?.close()
  })

  it('an operator creates an activity; sign-ups from chat show with the waitlist; points awarded', async () => {
    const page = await open(1280, 'op1', '/console/activities')
    expect(await page.locator('h1').textContent()).toBe('活动')
    await page.getByRole('link', { name: '新建活动' }).click()
    await page.getByLabel('标识').fill('reading')
    await page.getByLabel('名称').fill('读书会')
    await page.getByLabel('说明').fill('每晚 9 点一起读书')
    // A bad cron first: refused on the form, what was typed kept.
    await page.getByLabel('提醒时间（cron）').fill('每晚九点')
    await page.getByLabel('场次周期').selectOption('daily')
    await page.getByLabel('参与积分').fill('5')
    await page.getByLabel('名额').fill('1')
    await page.getByRole('button', { name: '新建活动' }).click()
    await expect
      .poll(() => page.locator('#activity-cron-error').textContent())
      .toContain('cron 须为 5 段')
    expect(await page.getByLabel('名称').inputValue()).toBe('读书会')
    await page.getByLabel('提醒时间（cron）').fill('0 21 * * *')
    await page.getByRole('button', { name: '新建活动' }).click()
    await page.waitForURL(/\/console\/activities\/reading\?created=reading/)
    expect(await page.getByRole('status').textContent()).toBe('已创建活动 reading')
    expect(await page.locator('#signups').textContent()).toContain('已确认 0 / 1，候补 0')

    // Two followers sign up by chatting with the account: the second waits.
    const chat = server.pusher()
    const first = await chat.text('o_reader_1', '报名 reading')
    expect(first.reply?.Content).toContain('报名成功')
    const second = await chat.text('o_reader_2', '报名 读书会')
    expect(second.reply?.Content).toContain('候补')

    await page.reload()
    expect(await page.locator('#signups').textContent()).toContain('已确认 1 / 1，候补 1')
    const rows = page.locator('#award table.data tbody tr')
    expect(await rows.count()).toBe(2)
    expect(await rows.nth(0).textContent()).toMatch(/o_reader_1.*已确认/)
    expect(await rows.nth(1).textContent()).toMatch(/o_reader_2.*候补第 1 位/)
    await shot(page, 'activity.png')

    // Award the confirmed one (ticked by default) for this occurrence.
    await page.getByRole('button', { name: '发放积分' }).click()
    await page.waitForURL(/applied=1/)
    expect(await page.getByRole('status').textContent()).toContain('已发放：1 人到账')
    const ledger = await db()
      .db.selectFrom('points_ledger')
      .innerJoin('members', 'members.id', 'points_ledger.member_id')
      .select(['members.openid', 'points_ledger.delta'])
      .where('points_ledger.rule', '=', 'activity_reading')
      .execute()
    expect(ledger).toEqual([{ openid: 'o_reader_1', delta: 5 }])

    await page.goto(`${server.url}/console/activities`)
    expect(await page.locator('#calendar ~ table').textContent()).toContain('读书会')
    await shot(page, 'activities.png')
  })

  it('系统 fits a 375 px phone and links to 运营账号', async () => {
    const page = await open(375, 'viewer1', '/console/system')
    expect(await page.locator('h1').textContent()).toBe('系统')
    await noHorizontalScroll(page)
    expect(await page.locator('body').textContent()).toContain(SAFE_ACCOUNT.appid)
    await shot(page, 'system.png')
    await page.getByRole('link', { name: '运营账号' }).click()
    await page.waitForURL(`${server.url}/console/system/operators`)
    await noHorizontalScroll(page)
    const activities = await open(375, 'viewer1', '/console/activities')
    await noHorizontalScroll(activities)
  })
})
