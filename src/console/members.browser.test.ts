/**
 * 会员 in a real browser: an operator finds a member by the redemption code the follower quotes,
 * grants points with a reason, sees the grant in the ledger, and the audit log names them; the
 * member page fits a 375 px phone. Screenshots: members-search.png, member.png, member-375.png.
 */
import { afterAll, beforeAll, expect, it, vi } from 'vitest'
import { browserSuite, SHOTS } from '../../test/browser-kit.js'
import { passwordOf, seedOperators } from '../../test/console-kit.js'
import { seedMemberFamily } from '../../test/member-fixtures.js'
import { SAFE_ACCOUNT, startServer, type TestServer } from '../../test/server.js'

vi.setConfig({ testTimeout: 90_000 })

browserSuite('members in a browser', (db, browser) => {
  let server: TestServer
  beforeAll(async () => {
    await seedOperators(db().db, new Date())
    server = await startServer(db().db)
  })
  afterAll(async () => {
    await server?.close()
  })

  it('finds a member by redemption code, grants points, audited; fits 375 px', async () => {
    const family = await seedMemberFamily(db().db, SAFE_ACCOUNT.appid, 'br', new Date())
    const context = await browser().newContext({
      viewport: { width: 1280, height: 900 },
      locale: 'zh-CN',
    })
    const foreign: string[] = []
    const page = await context.newPage()
    page.on('request', (r) => {
      if (!r.url().startsWith(server.url)) foreign.push(r.url())
    })
    await page.goto(`${server.url}/console/login`)
    await page.getByLabel('用户名').fill('op1')
    await page.getByLabel('密码').fill(passwordOf('op1'))
    await page.getByLabel('密码').press('Enter')
    await page.waitForLoadState()

    await page.goto(`${server.url}/console/members`)
    await page
      .getByRole('searchbox', { name: '查找会员' })
      .fill(family.redemptionCode.toLowerCase())
    await page.getByRole('searchbox', { name: '查找会员' }).press('Enter')
    await page.waitForLoadState()
    await page.screenshot({ path: `${SHOTS}members-search.png`, fullPage: true })
    await page.getByRole('link', { name: '小明br' }).click()
    await page.waitForLoadState()
    expect(new URL(page.url()).pathname).toBe(`/console/members/${family.openid}`)

    await page.getByLabel('积分（负数为扣除）').fill('88')
    await page.getByLabel('原因').fill('线下活动补发')
    await page.getByRole('button', { name: '确认' }).click()
    await page.waitForLoadState()
    expect(await page.getByRole('status').first().textContent()).toContain('已将积分变动 +88')
    const ledger = page.locator('section[aria-labelledby="ledger"]')
    expect(await ledger.textContent()).toContain('线下活动补发')
    expect(await ledger.textContent()).toContain('+88')
    await page.screenshot({ path: `${SHOTS}member.png`, fullPage: true })

    const audit = await db()
      .db.selectFrom('audit_log')
      .select(['actor', 'details'])
      .where('action', '=', 'points.grant')
      .where('target', '=', family.openid)
      .execute()
    expect(audit).toHaveLength(1)
    expect(audit[0]!.actor).toBe('op1')
    expect(JSON.parse(audit[0]!.details)).toMatchObject({ delta: 88, reason: '线下活动补发' })

    await page.setViewportSize({ width: 375, height: 800 })
    await page.reload()
    await page.waitForLoadState()
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375)
    await page.screenshot({ path: `${SHOTS}member-375.png`, fullPage: true })
    expect(foreign).toEqual([])
    await context.close()
  })
})
