/**
 * 社群 in a real browser (Debian's Chromium through playwright-core, the app on a loopback port):
 * an owner filters the audit log by action and sees only the matching entries, then the section
 * fits a 375 px phone. Screenshots go to test-output/console/. Skipped, saying so, only without
 * Chromium.
 */
import type { Page } from 'playwright-core'
import { afterAll, beforeAll, expect, it, vi } from 'vitest'
import { browserSuite, consolePages, SHOTS } from '../../test/browser-kit.js'
import { seedOperators } from '../../test/console-kit.js'
import { SAFE_ACCOUNT, startServer, type TestServer } from '../../test/server.js'
import { type AuditAction, audit } from '../community/audit-log.js'

vi.setConfig({ testTimeout: 60_000 })

browserSuite('community in a browser', (db, browser) => {
  let server: TestServer
  const open = consolePages(browser, () => server.url)
  const shot = (page: Page, file: string) =>
    page.screenshot({ path: `${SHOTS}${file}`, fullPage: true })

  beforeAll(async () => {
    await seedOperators(db().db, new Date())
    const now = new Date()
    const appid = SAFE_ACCOUNT.appid
    const entries: [AuditAction, string][] = [
      ['reward.create', 'tea-cup'],
      ['campaign.pause', 'spring-sale'],
      ['reward.update', 'tea-cup'],
      ['campaign.pause', 'weekly-digest'],
      ['moderator.add', 'oa:o_alice@*'],
    ]
    for (const [action, target] of entries)
      await audit(db().db, {
        appid,
        actor: 'op1',
        action: action!,
        target: target!,
        details: { note: '浏览器测试' },
        now,
      })
    server = await startServer(db().db)
  })
  afterAll(async () => {
    await server?.close()
  })

  it('an owner filters the audit log by action and sees the matching entries', async () => {
    const page = await open(1280, 'owner1', '/console/community/audit')
    expect(await page.locator('h1').textContent()).toBe('审计日志')
    const rows = page.locator('#audit-log ~ table.data tbody tr')
    expect(await rows.count()).toBeGreaterThanOrEqual(5)
    await page.getByLabel('操作', { exact: true }).selectOption('campaign.pause')
    await page.getByRole('button', { name: '筛选' }).click()
    await page.waitForURL(/action=campaign\.pause/)
    expect(await rows.count()).toBe(2)
    expect(await rows.nth(0).textContent()).toContain('weekly-digest')
    expect(await rows.nth(1).textContent()).toContain('spring-sale')
    for (const text of await rows.allTextContents()) expect(text).toContain('campaign.pause')
    await shot(page, 'community.png')

    // The export link carries the filter: the CSV holds the same two entries.
    const href = await page.getByRole('link', { name: /导出 CSV/ }).getAttribute('href')
    const csv = await (await page.request.get(`${server.url}${href}`)).text()
    const lines = csv.trim().split('\n')
    expect(lines).toHaveLength(3)
    expect(lines[1]).toContain('weekly-digest')
    expect(lines[2]).toContain('spring-sale')
  })

  it('fits a 375 px phone: the audit log as cards, then the groups and moderators', async () => {
    const page = await open(375, 'owner1', '/console/community/audit?action=campaign.pause')
    const width = () => page.evaluate(() => document.documentElement.scrollWidth)
    expect(await width()).toBeLessThanOrEqual(375)
    expect(await page.locator('#audit-log ~ table.data tbody tr').count()).toBe(2)
    await shot(page, 'community-375.png')
    await page.getByRole('link', { name: '管理员', exact: true }).click()
    await page.waitForURL(`${server.url}/console/community/moderators`)
    expect(await width()).toBeLessThanOrEqual(375)
    await page.getByRole('link', { name: '群与进群二维码' }).click()
    await page.waitForURL(`${server.url}/console/community`)
    expect(await width()).toBeLessThanOrEqual(375)
  })
})
