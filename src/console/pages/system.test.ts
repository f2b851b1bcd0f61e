/**
 * 系统 over `app.request()`: health as /healthz reports it, accounts without secrets, the outbox
 * by kind, lane and status, each job's newest run, open alerts and the alert settings, and the
 * section's link to 运营账号 — on every test database.
 */
import type { Hono } from 'hono'
import { beforeAll, expect, it } from 'vitest'
import { createRouter } from '../../../handlers/index.js'
import { jobs as allJobs } from '../../../jobs/index.js'
import { paidOrder } from '../../../test/analytics-fixtures.js'
import { manualClock, seedOperators, signIn } from '../../../test/console-kit.js'
import { forEachDatabase } from '../../../test/databases.js'
import { PLAIN_ACCOUNT, SAFE_ACCOUNT, testConfig } from '../../../test/server.js'
import { createApp } from '../../app.js'
import { silentLogger } from '../../logger.js'
import { JOB_NAMES } from '../code-labels.js'

forEachDatabase('console: system', (get) => {
  const clock = manualClock(new Date('2026-11-20T02:00:00Z'))
  let app: Hono
  const minutesAgo = (n: number) => new Date(clock.now().getTime() - n * 60_000)

  beforeAll(async () => {
    const db = get().db
    await seedOperators(db, clock.now())
    app = createApp({
      config: testConfig({ WECHAT_SECRET: 'secret-that-must-not-show' }),
      db,
      router: createRouter(),
      logger: silentLogger,
      clock,
    })
    const item = (
      status: 'pending' | 'held' | 'sent',
      lane: 0 | 1 | 2,
      age: number,
      n: number,
    ) => ({
      appid: SAFE_ACCOUNT.appid,
      source: `test:${status}:${lane}:${n}`,
      openid: `o_${n}`,
      kind: 'custom' as const,
      payload: '{}',
      status,
      lane,
      next_attempt_at: minutesAgo(age),
      created_at: minutesAgo(age),
    })
    await db
      .insertInto('push_outbox')
      .values([
        item('pending', 0, 3, 1),
        item('pending', 0, 1, 2),
        item('held', 2, 90, 3),
        item('sent', 1, 30, 4),
      ])
      .execute()
    await db
      .insertInto('job_runs')
      .values([
        {
          job: 'campaigns',
          slot: minutesAgo(2),
          trigger: 'schedule',
          status: 'failed',
          worker: 'w1',
          result: null,
          error: 'WechatApiError 45009: reach max api daily quota limit',
          started_at: minutesAgo(2),
          finished_at: minutesAgo(2),
          lease_until: null,
        },
        {
          job: 'campaigns',
          slot: minutesAgo(3),
          trigger: 'schedule',
          status: 'succeeded',
          worker: 'w1',
          result: '{}',
          error: null,
          started_at: minutesAgo(3),
          finished_at: minutesAgo(3),
          lease_until: null,
        },
      ])
      .execute()
    await db
      .insertInto('alerts')
      .values({
        appid: SAFE_ACCOUNT.appid,
        rule: 'outbox_backlog',
        dim: 'reply',
        status: 'open',
        opened_at: minutesAgo(5),
        value: 300,
        threshold: 120,
        message: '回复通道积压：最久等待 300 秒',
        evaluated_at: minutesAgo(1),
      })
      .execute()
    // an unfinished refund, counted by status on the health card
    const { id } = await db
      .insertInto('members')
      .values({ appid: SAFE_ACCOUNT.appid, openid: 'o_refunds', first_seen_at: clock.now() })
      .returning('id')
      .executeTakeFirstOrThrow()
    const order = await paidOrder(db, SAFE_ACCOUNT.appid, {
      memberId: id,
      fen: 1000,
      paidAt: minutesAgo(60),
      no: 'sys-refund-1',
    })
    await db
      .insertInto('refunds')
      .values({
        order_id: order,
        out_refund_no: 'sys-refund-1-r1',
        amount_fen: 500,
        reason: 'test',
        status: 'processing',
        refund_id: null,
        error: null,
        next_attempt_at: null,
        created_at: minutesAgo(5),
        updated_at: minutesAgo(5),
      })
      .execute()
  })

  it('shows health, accounts (no secrets), outbox, jobs, alerts and settings to a viewer', async () => {
    const { cookie } = await signIn(app, 'viewer1')
    const res = await app.request('/console/system', { headers: { cookie } })
    expect(res.status).toBe(200)
    const html = await res.text()
    // Health, as /healthz computes it.
    const health = (await (await app.request('/healthz')).json()) as {
      outbox: { backlog: number }
    }
    expect(health.outbox.backlog).toBe(2)
    expect(html).toContain('到期待发：2；最久等待：3 分钟')
    expect(html).toContain('调度器上次启动任务：2 分钟前')
    // Accounts: the mode and whether a secret is set, never the secret, token or key.
    expect(html).toContain(SAFE_ACCOUNT.appid)
    expect(html).toContain(PLAIN_ACCOUNT.appid)
    expect(html).toContain('安全模式（加密）')
    expect(html).toContain('明文模式（不加密）')
    expect(html).toContain('已配置')
    for (const secret of ['secret-that-must-not-show', SAFE_ACCOUNT.aesKey, SAFE_ACCOUNT.token])
      expect(html).not.toContain(secret)
    // Outbox by lane and status: waiting (any age) and finished in the last day.
    expect(html).toMatch(/回复与跟进<\/td><td[^>]*>待发<\/td><td[^>]*>2<\/td><td[^>]*>3 分钟前/)
    expect(html).toMatch(/推送活动<\/td><td[^>]*>暂停（活动已暂停）<\/td><td[^>]*>1<\/td>/)
    expect(html).toMatch(/事务通知<\/td><td[^>]*>已发送<\/td><td[^>]*>1<\/td>/)
    expect(html).toContain('客服消息')
    // Jobs: the newest run failed; the last success was 3 minutes ago.
    expect(html).toMatch(/推送发送<\/span><\/td>[\s\S]*?失败<\/td><td[^>]*>3 分钟前<\/td>/)
    expect(html).toContain('reach max api daily quota limit')
    expect(html).toMatch(/过期数据清理<\/span><\/td>[\s\S]*?从未/)
    // Alerts and settings.
    expect(html).toContain('回复通道积压：最久等待 300 秒')
    expect(html).toContain('活跃会员下降')
    expect(html).toMatch(/活跃会员下降<\/td><td[^>]*>是<\/td><td[^>]*>10.0%<\/td>/)
    // The section: its nav link is this page, which links to 运营账号 (and back).
    expect(html).toContain('href="/console/system" aria-current="page"')
    expect(html).toContain('href="/console/system/operators"')
    const operators = await app.request('/console/system/operators', { headers: { cookie } })
    expect(await operators.text()).toContain('href="/console/system/operators" aria-current="page"')
    expect(html.length).toBeLessThan(100_000)
  })

  it('names unfinished refunds by status, with each language’s punctuation', async () => {
    const { cookie } = await signIn(app, 'viewer1')
    const page = async (lang: string) => {
      const res = await app.request(`/console/system?lang=${lang}`, { headers: { cookie } })
      const html = await res.text()
      // the health card's list
      return html.slice(html.indexOf('id="health"'), html.indexOf('id="accounts"'))
    }
    const zh = await page('zh-CN')
    expect(zh).toContain('未完成的退款：微信支付处理中 1')
    expect(zh).not.toContain('processing')
    const en = await page('en')
    expect(en).toContain('Refunds not finished: At WeChat Pay 1')
    expect(en).toContain('Database: OK, answered in')
    expect(en).toContain('Due, not sent: 2; longest wait: 3 min')
    expect(en).not.toMatch(/[：；，]/)
  })

  it('names the jobs in the operator’s language, the code kept as a hint', async () => {
    const { cookie } = await signIn(app, 'viewer1')
    const jobs = async (lang: string) => {
      const res = await app.request(`/console/system?lang=${lang}`, { headers: { cookie } })
      const html = await res.text()
      return html.slice(
        html.indexOf('id="jobs"'),
        html.indexOf('</section>', html.indexOf('id="jobs"')),
      )
    }
    const zh = await jobs('zh-CN')
    expect(zh).toContain('<span title="prune-inbound-events">清理入站消息记录</span>')
    expect(zh).toContain('<span title="recompute-segments">更新会员分层</span>')
    // every job cell is a label: no job code shows as text
    expect(zh).not.toMatch(/>[a-z]+(-[a-z]+)*</)
    const en = await jobs('en')
    expect(en).toContain('<span title="prune-inbound-events">Prune inbound events</span>')
    // every job of the job list has a label
    expect(
      allJobs.map((j) => j.name).filter((n) => !(JOB_NAMES as readonly string[]).includes(n)),
    ).toEqual([])
  })

  it('says English when asked', async () => {
    const { cookie } = await signIn(app, 'op1')
    const res = await app.request('/console/system?lang=en', { headers: { cookie } })
    const html = await res.text()
    expect(html).toContain('Scheduled jobs')
    expect(html).toContain('safe (encrypted)')
  })
})
