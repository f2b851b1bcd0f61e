/**
 * 系统 → 告警设置 over `app.request()`: an owner or operator changes thresholds (percent in the
 * form, a fraction in the engine), windows and intervals through `updateAlertSettings` (audited with
 * their name); a field equal to its default drops the override; a viewer is refused; bad input is
 * refused with each field's message and nothing saved; the admin API's PUT runs the same action —
 * on every test database.
 */
import type { Hono } from 'hono'
import { beforeAll, expect, it } from 'vitest'
import { createRouter } from '../../../handlers/index.js'
import { manualClock, postForm, seedOperators, signIn } from '../../../test/console-kit.js'
import { forEachDatabase } from '../../../test/databases.js'
import { SAFE_ACCOUNT, testConfig } from '../../../test/server.js'
import { readAlertSettings } from '../../analytics/alert-rules.js'
import { createApp } from '../../app.js'
import { silentLogger } from '../../logger.js'

const appid = SAFE_ACCOUNT.appid
const TOKEN = 'operator-token-0123456789'

forEachDatabase('console: alert settings', (get) => {
  const clock = manualClock(new Date('2026-11-20T02:00:00Z'))
  let app: Hono
  type Who = { cookie: string; csrf: string }
  let op: Who
  let viewer: Who
  const db = () => get().db
  const formOf = async (who: Who) => {
    const res = await app.request('/console/system/alert-settings', {
      headers: { cookie: who.cookie },
    })
    return { status: res.status, html: await res.text() }
  }
  /** The form as shown, with `changes`. */
  const submit = async (changes: Record<string, string | undefined>, who: Who = op) => {
    const { html } = await formOf(op)
    const fields: Record<string, string> = { _csrf: who.csrf }
    for (const m of html.matchAll(
      /<input id="alert-[^"]+" name="([^"]+)" inputmode="decimal" value="([^"]*)"/g,
    ))
      fields[m[1]!] = m[2]!
    for (const m of html.matchAll(/<input type="checkbox" name="([^"]+)" checked/g))
      fields[m[1]!] = 'on'
    for (const [k, v] of Object.entries(changes))
      if (v === undefined) delete fields[k]
      else fields[k] = v
    return postForm(app, '/console/system/alert-settings', who.cookie, fields)
  }
  const stored = async () =>
    (
      await db()
        .selectFrom('alert_settings')
        .select('settings')
        .where('appid', '=', appid)
        .executeTakeFirst()
    )?.settings
  const audits = () =>
    db()
      .selectFrom('audit_log')
      .select(['actor', 'target', 'details'])
      .where('action', '=', 'analytics.alert_settings')
      .orderBy('id')
      .execute()

  beforeAll(async () => {
    await seedOperators(db(), clock.now())
    app = createApp({
      config: testConfig({ ADMIN_TOKEN: TOKEN }),
      db: db(),
      router: createRouter(),
      logger: silentLogger,
      clock,
    })
    op = await signIn(app, 'op1')
    viewer = await signIn(app, 'viewer1')
  })

  it('shows the form in each rule’s unit, linked from 系统 for operators only', async () => {
    const { status, html } = await formOf(op)
    expect(status).toBe(200)
    expect(html).toMatch(/活跃会员下降<\/legend>[\s\S]*?阈值（%）[\s\S]*?value="10"/)
    expect(html).toMatch(
      /错误率<\/legend>[\s\S]*?value="5"[\s\S]*?统计窗口（分钟）[\s\S]*?value="15"/,
    )
    expect(html).toMatch(/回复耗时 P95<\/legend>[\s\S]*?阈值（秒）[\s\S]*?value="3"/)
    expect(html).toContain('阈值（连续未成功的周期数）')
    expect(html).toMatch(
      /返现转账卡住<\/legend>[\s\S]*?value="1"[\s\S]*?统计窗口（分钟）[\s\S]*?value="1440"/,
    )
    expect(html).toMatch(
      /返现转账失败<\/legend>[\s\S]*?value="1"[\s\S]*?统计窗口（分钟）[\s\S]*?value="1440"/,
    )
    expect(html).toContain('name="_csrf"')
    const system = await app.request('/console/system', { headers: { cookie: op.cookie } })
    expect(await system.text()).toContain('href="/console/system/alert-settings">修改告警设置')
    const forViewer = await app.request('/console/system', { headers: { cookie: viewer.cookie } })
    expect(await forViewer.text()).not.toContain('修改告警设置')
    expect((await formOf(viewer)).status).toBe(403)
  })

  it('saves a change through the audited action; the default drops the override', async () => {
    const res = await submit({
      'active_members_drop.threshold': '7',
      'error_rate.windowMinutes': '30',
      'outbox_backlog.threshold': '900',
      'job_stalled.enabled': undefined,
    })
    expect(res.status).toBe(303)
    expect(res.headers.get('location')).toBe('/console/system?saved=1#alert-settings')
    const s = await readAlertSettings(db(), appid)
    expect(s.rules.active_members_drop.threshold).toBe(0.07)
    expect(s.rules.error_rate.windowMinutes).toBe(30)
    expect(s.rules.outbox_backlog.threshold).toBe(900)
    expect(s.rules.job_stalled.enabled).toBe(false)
    expect(JSON.parse((await stored())!).rules).toEqual({
      active_members_drop: { threshold: 0.07 },
      error_rate: { windowMinutes: 30 },
      outbox_backlog: { threshold: 900 },
      job_stalled: { enabled: false },
    })
    const [entry] = await audits()
    expect(entry).toMatchObject({ actor: 'op1', target: appid })
    expect(JSON.parse(entry!.details).stored.rules.active_members_drop).toEqual({ threshold: 0.07 })
    const saved = await app.request('/console/system?saved=1', { headers: { cookie: op.cookie } })
    const html = await saved.text()
    expect(html).toContain('告警设置已保存')
    expect(html).toMatch(/活跃会员下降<\/td><td[^>]*>是<\/td><td[^>]*>7.0%<\/td>/)

    // Back to the default (or empty): the override is dropped.
    await submit({ 'active_members_drop.threshold': '10', 'error_rate.windowMinutes': '' })
    expect(JSON.parse((await stored())!).rules).toEqual({
      outbox_backlog: { threshold: 900 },
      job_stalled: { enabled: false },
    })
  })

  it('refuses a viewer and bad input; nothing is saved', async () => {
    const before = await stored()
    const audited = (await audits()).length
    expect((await submit({ 'outbox_backlog.threshold': '60' }, viewer)).status).toBe(403)
    const bad = await submit({
      'active_members_drop.threshold': '150',
      'outbox_backlog.threshold': '30.5',
      'error_rate.repeatMinutes': '5',
      'job_stalled.threshold': 'lots',
    })
    expect(bad.status).toBe(400)
    const html = await bad.text()
    expect(html).toContain('告警设置有误，未保存')
    expect(html).toMatch(/id="alert-active_members_drop-threshold-hint">须不大于 99</)
    expect(html).toMatch(/id="alert-outbox_backlog-threshold-hint">须为整数</)
    expect(html).toMatch(/id="alert-error_rate-repeatMinutes-hint">须不小于 60</)
    expect(html).toMatch(/id="alert-job_stalled-threshold-hint">须为数字</)
    expect(html).toContain('value="lots"')
    expect(await stored()).toBe(before)
    expect(await audits()).toHaveLength(audited)
  })

  it('the admin API’s PUT runs the same action (audited as the API operator)', async () => {
    const put = (body: unknown) =>
      app.request('/admin/api/analytics/alert-settings', {
        method: 'PUT',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      })
    const res = await put({ rules: { refunds_failing: { threshold: 3 } } })
    expect(res.status).toBe(200)
    expect((await readAlertSettings(db(), appid)).rules.refunds_failing.threshold).toBe(3)
    expect((await audits()).at(-1)).toMatchObject({ actor: 'operator' })
    const before = await stored()
    expect((await put({ robotChats: ['no-such-chat'] })).status).toBe(400)
    expect((await put({ rules: { error_rate: { threshold: 2 } } })).status).toBe(400)
    expect((await put({ rules: { transfers_stuck: { threshold: 0 } } })).status).toBe(400)
    expect((await put({ rules: { transfers_failed: { threshold: 0 } } })).status).toBe(400)
    expect(await stored()).toBe(before)
  })
})
