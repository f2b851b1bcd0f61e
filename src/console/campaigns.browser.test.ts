/**
 * 推送 in a real browser: an operator makes an A/B campaign for a segment (the audience estimate
 * updates as the audience changes), schedules it, the campaigns job runs and the outbox drains
 * to the sandbox WeChat API, and the report shows the figures per variant; a scheduled campaign is
 * edited before it sends (375 px and desktop). Screenshots go to test-output/console/. Skipped, saying so, only when no Chromium executable exists.
 */
import type { Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, expect, it, vi } from 'vitest'
import { campaignsJob } from '../../jobs/campaigns.js'
import { browserSuite, SHOTS } from '../../test/browser-kit.js'
import { passwordOf, seedOperators } from '../../test/console-kit.js'
import { placeInSegment } from '../../test/segment-fixtures.js'
import { SAFE_ACCOUNT, startServer, type TestServer, testConfig } from '../../test/server.js'
import { changeCampaign, createCampaign } from '../admin/actions/campaign-actions.js'
import { systemClock } from '../clock.js'
import { drainOutbox } from '../community/outbox.js'
import { databaseTokenStore } from '../community/token-store.js'
import { silentLogger } from '../logger.js'
import { type SandboxApi, startSandboxApi } from '../sandbox/wechat-api-server.js'
import { accountClient } from '../wechat/api/account-client.js'
import { consoleFormat } from './format.js'

vi.setConfig({ testTimeout: 90_000 })

const SECRET = 'console-campaign-secret'

browserSuite('campaigns in a browser', (db, browser) => {
  let wx: SandboxApi
  beforeAll(async () => {
    wx = await startSandboxApi({ secret: SECRET })
  })
  afterAll(async () => {
    await wx?.close()
  })
  const appid = SAFE_ACCOUNT.appid
  // No quiet hours: the pushes go out whenever the test runs.
  const config = testConfig({ QUIET_HOURS: 'off' })
  let server: TestServer
  let ahead = 0
  const foreign: string[] = []

  beforeAll(async () => {
    const now = new Date()
    await seedOperators(db().db, now)
    const member = (i: number, segment: 'at_risk' | 'loyal') => ({
      appid,
      openid: `o_push_${segment}_${i}`,
      subscribed: true,
      first_seen_at: new Date(now.getTime() - 90 * 86_400_000),
    })
    for (const [segment, n] of [
      ['at_risk', 240],
      ['loyal', 20],
    ] as const) {
      const rows = await db()
        .db.insertInto('members')
        .values(Array.from({ length: n }, (_, i) => member(i, segment)))
        .returning('id')
        .execute()
      await placeInSegment(
        db().db,
        appid,
        rows.map((r) => r.id),
        segment,
      )
    }
    // The console reads the campaign's figures up to its own today: the test's events happen a few
    // minutes ahead of the real clock, so the console is moved to them before it reads (otherwise,
    // just before local midnight, they fall on a day the console has not reached yet).
    server = await startServer(db().db, {
      config,
      clock: { now: () => new Date(Date.now() + ahead) },
    })
  })
  afterAll(async () => {
    await server?.close()
  })
  afterEach(() => {
    ahead = 0
  })

  it('makes, schedules and reports an A/B campaign for a segment', async () => {
    const context = await browser().newContext({
      viewport: { width: 1280, height: 900 },
      locale: 'zh-CN',
    })
    const page: Page = await context.newPage()
    page.on('request', (r) => {
      if (!r.url().startsWith(server.url)) foreign.push(r.url())
    })
    await page.goto(`${server.url}/console/login`)
    await page.getByLabel('用户名').fill('op1')
    await page.getByLabel('密码').fill(passwordOf('op1'))
    await page.getByLabel('密码').press('Enter')
    await page.waitForURL(`${server.url}/console`)

    await page.goto(`${server.url}/console/campaigns/new`)
    const estimate = page.locator('[data-out="audience"]')
    expect(await estimate.textContent()).toBe('受众 240 人，现在可触达 240 人')
    await page.getByLabel('受众类型').selectOption('all')
    await expect.poll(() => estimate.textContent()).toBe('受众 260 人，现在可触达 260 人')
    await page.getByLabel('受众类型').selectOption('segment')
    await page.getByLabel('分层').selectOption('at_risk')
    await expect.poll(() => estimate.textContent()).toBe('受众 240 人，现在可触达 240 人')

    await page.getByLabel('名称').fill('沉默召回 A/B')
    await page.getByLabel('启用 A/B 测试（版本 B）').check()
    for (const [key, text] of [
      ['A', '回来领积分'],
      ['B', '老朋友，送你 50 积分'],
    ] as const) {
      await page.getByLabel(`版本 ${key} 模板 ID`).fill('TPL_RECALL')
      await page.getByLabel(`版本 ${key} 字段 1 名（如 thing1）`).fill('thing1')
      await page.getByLabel(`版本 ${key} 字段 1 内容`).fill(text)
      await page.getByLabel(`版本 ${key} 权重（1–100）`).fill('50')
    }
    expect(await page.locator('[data-mirror="b_value1"]').textContent()).toBe(
      '老朋友，送你 50 积分',
    )
    // One minute ahead, in the community's time zone (datetime-local).
    const fmt = consoleFormat('zh-CN', config.timeZone)
    const at = new Date(Math.ceil((Date.now() + 60_000) / 60_000) * 60_000)
    await page.getByLabel(/^发送时间/).fill(fmt.dateTime(at).replace(' ', 'T'))
    await expect.poll(() => page.locator('[data-out="runs"]').textContent()).toBe(fmt.dateTime(at))
    await page.getByLabel('发送方式').selectOption('cron')
    await page.getByLabel(/^Cron 表达式/).fill('0 10 * * 1')
    await expect
      .poll(() => page.locator('[data-out="runs"]').textContent())
      .toMatch(/^(\d{4}-\d\d-\d\d 10:00，){4}\d{4}-\d\d-\d\d 10:00$/)
    await page.getByLabel('发送方式').selectOption('at')
    await page.screenshot({ path: `${SHOTS}campaign-new.png`, fullPage: true })
    await page.getByRole('button', { name: '创建草稿' }).click()
    await page.waitForURL(/created=/)
    expect(await page.getByRole('status').first().textContent()).toContain(
      '已创建草稿“沉默召回 A/B”',
    )
    await page.getByRole('button', { name: '排期 沉默召回 A/B' }).click()
    await page.waitForURL(/move=schedule/)
    expect(await page.locator('table.data').textContent()).toContain('已排期')

    // The campaigns job, a minute after the send time; then the outbox to the sandbox.
    const later = { now: () => new Date(at.getTime() + 60_000) }
    const run = await campaignsJob.run({
      db: db().db,
      clock: later,
      logger: silentLogger,
      config,
      slot: later.now(),
    })
    expect(run).toMatchObject({ runs: 1, enqueued: 240 })
    const api = accountClient({
      tokenStore: databaseTokenStore(db().db, systemClock),
      appid,
      secret: SECRET,
      baseUrl: wx.url,
      mode: 'stable',
      clock: systemClock,
      logger: silentLogger,
      backoffMs: 1,
    })
    await drainOutbox({
      db: db().db,
      api,
      appid,
      clock: later,
      logger: silentLogger,
      timeZone: config.timeZone,
      rate: { perSecond: 0, burst: 1 },
    })
    // Some come back: members active after the push convert on the next job run.
    const recipients = await db()
      .db.selectFrom('campaign_recipients')
      .select(['member_id', 'variant'])
      .execute()
    const back = recipients.filter((r, i) => (r.variant === 'B' ? i % 3 === 0 : i % 10 === 0))
    await db()
      .db.updateTable('members')
      .set({ last_active_at: new Date(at.getTime() + 2 * 60_000) })
      .where(
        'id',
        'in',
        back.map((r) => r.member_id),
      )
      .execute()
    const again = { now: () => new Date(at.getTime() + 3 * 60_000) }
    await campaignsJob.run({
      db: db().db,
      clock: again,
      logger: silentLogger,
      config,
      slot: again.now(),
    })

    ahead = Math.max(0, again.now().getTime() - Date.now())
    await page.goto(`${server.url}/console/campaigns`)
    const row = await page.locator('table.data tbody tr').first().textContent()
    expect(row).toContain('已结束') // a one-shot campaign ends with its run
    expect(row).toContain(`240 → 0 → 0 → ${back.length}`)
    await page.screenshot({ path: `${SHOTS}campaigns.png`, fullPage: true })

    await page.getByRole('link', { name: '报告' }).first().click()
    await page.waitForFunction(() => document.querySelector('[data-chart][data-ready="1"]'))
    // the funnel's rows, one per variant (the reach card above has its own table)
    const rows = await page
      .locator('section[aria-labelledby="funnel"] table.data tbody tr')
      .allTextContents()
    const perVariant = (key: string) => recipients.filter((r) => r.variant === key).length
    expect(rows).toHaveLength(2)
    // the reach card: A, B and their total, in distinct members (one run: each member once)
    const reach = await page
      .locator('section[aria-labelledby="reach"] table.data tbody tr')
      .allTextContents()
    expect(reach).toHaveLength(3)
    expect(reach[0]).toContain(String(perVariant('A')))
    expect(reach[2]).toContain(String(recipients.length))
    expect(rows[0]).toContain(String(perVariant('A')))
    expect(rows[1]).toContain(String(perVariant('B')))
    expect(await page.locator('[data-verdict]').textContent()).toMatch(
      /^B 的转化率比 A 高 \d+\.\d 个百分点，差异(显著（p = [<\d. ]+）|还不显著)/,
    )
    await page.screenshot({ path: `${SHOTS}campaign-report.png`, fullPage: true })
    expect(foreign).toEqual([])
    await context.close()
  })

  it('edits a scheduled campaign before it sends, on a 375 px phone too', async () => {
    const deps = { db: db().db, clock: systemClock }
    const k = await createCampaign(
      deps,
      { name: 'op1' },
      {
        appid,
        name: '周末提醒',
        audience: { segment: 'loyal' },
        template: { template_id: 'TPL_WEEKEND', data: { thing1: { value: '周末见' } } },
        schedule: { cron: '0 10 * * 6' },
        conversionDays: 7,
      },
    )
    await changeCampaign(deps, { name: 'op1' }, { appid, id: k.id, move: 'schedule' })
    const context = await browser().newContext({
      viewport: { width: 375, height: 800 },
      locale: 'zh-CN',
    })
    const page: Page = await context.newPage()
    await page.goto(`${server.url}/console/login`)
    await page.getByLabel('用户名').fill('op1')
    await page.getByLabel('密码').fill(passwordOf('op1'))
    await page.getByLabel('密码').press('Enter')
    await page.waitForURL(`${server.url}/console`)
    await page.goto(`${server.url}/console/campaigns`)
    await page.getByRole('link', { name: '编辑 周末提醒' }).click()
    await page.waitForURL(`${server.url}/console/campaigns/${k.id}/edit`)
    expect(await page.getByLabel('名称').inputValue()).toBe('周末提醒')
    expect(await page.getByLabel(/^Cron 表达式/).inputValue()).toBe('0 10 * * 6')
    const estimate = page.locator('[data-out="audience"]')
    expect(await estimate.textContent()).toBe('受众 20 人，现在可触达 20 人')
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375)
    await page.screenshot({ path: `${SHOTS}campaign-edit-375.png`, fullPage: true })
    await page.setViewportSize({ width: 1280, height: 900 })
    await page.getByLabel('名称').fill('周日提醒')
    await page.getByLabel('版本 A 字段 1 内容').fill('周日见')
    await page.getByLabel(/^Cron 表达式/).fill('0 10 * * 0')
    await expect
      .poll(() => page.locator('[data-out="runs"]').textContent())
      .toMatch(/^(\d{4}-\d\d-\d\d 10:00，){4}\d{4}-\d\d-\d\d 10:00$/)
    await page.screenshot({ path: `${SHOTS}campaign-edit.png`, fullPage: true })
    await page.getByRole('button', { name: '保存修改' }).click()
    await page.waitForURL(/edited=/)
    expect(await page.getByRole('status').first().textContent()).toContain('已保存“周日提醒”的修改')
    const row = await page.locator('table.data tbody tr').first().textContent()
    expect(row).toContain('周日提醒')
    expect(row).toContain('0 10 * * 0')
    expect(row).toContain('已排期')
    await context.close()
  })

  it('asks before stopping a campaign, on a 390 px phone', async () => {
    const deps = { db: db().db, clock: systemClock }
    const k = await createCampaign(
      deps,
      { name: 'op1' },
      {
        appid,
        name: '每日提醒',
        audience: { segment: 'loyal' },
        template: { template_id: 'TPL_DAILY', data: { thing1: { value: '今天见' } } },
        schedule: { cron: '0 10 * * *' },
        conversionDays: 7,
      },
    )
    await changeCampaign(deps, { name: 'op1' }, { appid, id: k.id, move: 'schedule' })
    const status = async () =>
      (
        await db()
          .db.selectFrom('campaigns')
          .select('status')
          .where('id', '=', k.id)
          .executeTakeFirstOrThrow()
      ).status
    const context = await browser().newContext({
      viewport: { width: 390, height: 844 },
      locale: 'zh-CN',
    })
    const page: Page = await context.newPage()
    await page.goto(`${server.url}/console/login`)
    await page.getByLabel('用户名').fill('op1')
    await page.getByLabel('密码').fill(passwordOf('op1'))
    await page.getByLabel('密码').press('Enter')
    await page.waitForURL(`${server.url}/console`)
    await page.goto(`${server.url}/console/campaigns`)
    await page.getByRole('link', { name: '停止 每日提醒' }).click()
    await page.waitForURL(`${server.url}/console/campaigns/${k.id}/finish`)
    expect(await page.getByRole('alertdialog').textContent()).toContain('不能恢复')
    expect(await status()).toBe('scheduled')
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390)
    await page.screenshot({ path: `${SHOTS}campaign-stop-390.png`, fullPage: true })
    await page.getByRole('button', { name: '确认停止' }).click()
    await page.waitForURL(/moved=/)
    expect(await status()).toBe('finished')
    expect(await page.getByRole('status').first().textContent()).toContain('“每日提醒”已停止')
    await context.close()
  })
})
