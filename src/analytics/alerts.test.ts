import type { Kysely } from 'kysely'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { alertsJob } from '../../jobs/alerts.js'
import { addMembers, alertNotices, alertRows } from '../../test/analytics-fixtures.js'
import { forEachDatabase } from '../../test/databases.js'
import { SAFE_ACCOUNT, startServer, type TestServer, testConfig } from '../../test/server.js'
import { systemClock } from '../clock.js'
import { enqueue } from '../community/outbox.js'
import { startOutboxWorker } from '../community/outbox-worker.js'
import { databaseTokenStore } from '../community/token-store.js'
import type { Database } from '../db/schema.js'
import { silentLogger } from '../logger.js'
import { startSandboxApi } from '../sandbox/wechat-api-server.js'
import { accountClient } from '../wechat/api/account-client.js'
import { writeAlertSettings } from './alert-rules.js'
import { type EvaluateOptions, evaluateAlerts } from './alerts.js'
import { readTraffic, trafficCounter } from './traffic-counter.js'

const TZ = 'Asia/Shanghai'
const T0 = new Date('2026-11-16T02:00:00Z')
const at = (minutes: number) => new Date(T0.getTime() + minutes * 60_000)
const TOKEN = 'alerts-operator-token-0123'

forEachDatabase('alerts: delivery, episodes across instances, settings', (get, dbName) => {
  let wecom: Awaited<ReturnType<typeof startSandboxApi>>
  beforeAll(async () => {
    wecom = await startSandboxApi()
  })
  afterAll(() => wecom.close())
  const app = (name: string) => `wx_${dbName}_${name}`

  /** An account with moderators: two reachable (OA, and WeCom linked by 绑定), one not. */
  async function community(appid: string) {
    const { db } = get()
    const recent = at(-60)
    const [modOa, modWc] = await addMembers(db, appid, `${appid}_mod`, 2, at(-1440), {
      last_inbound_at: recent,
    })
    await addMembers(db, appid, `${appid}_old`, 1, at(-1440), { last_inbound_at: at(-3 * 1440) })
    await addMembers(db, appid, `${appid}_fan`, 1, at(-1440), { last_inbound_at: recent })
    void modOa
    await db
      .insertInto('member_identities')
      .values({
        channel: 'wecom_aibot',
        external_id: `${appid}_wc`,
        member_id: modWc!,
        linked_at: recent,
      })
      .execute()
    await db
      .insertInto('moderators')
      .values([
        {
          channel: 'oa',
          external_id: `${appid}_mod0`,
          scope: '*',
          role: 'admin',
          source: 'config',
        },
        {
          channel: 'oa',
          external_id: `${appid}_old0`,
          scope: '*',
          role: 'moderator',
          source: 'config',
        },
        {
          channel: 'wecom_aibot',
          external_id: `${appid}_wc`,
          scope: `${appid}_chat`,
          role: 'moderator',
          source: 'config',
        },
      ])
      .execute()
    return {
      keys: { [`${appid}_chat`]: `${appid}_key`, [`${appid}_other`]: `${appid}_key2` },
      baseUrl: wecom.url,
    }
  }
  const robotSends = (key: string) =>
    wecom.sent.filter((s) => s.method === 'webhook.send' && s.appid === key)
  /** Evaluates, then plays the outbox worker: what was queued is sent (no backlog builds up). */
  const evaluate = async (
    db: Kysely<Database>,
    appid: string,
    now: Date,
    extra: Partial<EvaluateOptions> & Pick<EvaluateOptions, 'robots'>,
  ) => {
    const outcomes = await evaluateAlerts({
      db,
      appid,
      now,
      timeZone: TZ,
      locale: 'zh-CN',
      quietHours: null,
      ...extra,
    })
    await db.updateTable('push_outbox').set({ status: 'sent' }).where('appid', '=', appid).execute()
    return outcomes
  }

  it('delivers to reachable moderators through the outbox and to the moderators’ group robots', async () => {
    const { db } = get()
    const appid = app('deliver')
    const robots = await community(appid)
    let open = 3
    const mismatches = async () => open
    const opened = await evaluate(db, appid, at(0), { robots, mismatches })
    const [alert] = await alertRows(db, appid)
    expect(opened).toContainEqual({
      rule: 'reconciliation_mismatches',
      dim: '',
      event: 'opened',
      id: Number(alert!.id),
      notified: true,
    })
    // the OA moderator and the WeCom moderator linked to a follower; not the one outside the
    // 48-hour window, not an ordinary follower
    let notices = await alertNotices(db, appid)
    expect(notices.map((n) => [n.openid, n.source, n.kind, n.lane])).toEqual([
      [`${appid}_mod0`, `alert:${alert!.id}:1`, 'custom', 1],
      [`${appid}_mod1`, `alert:${alert!.id}:1`, 'custom', 1],
    ])
    expect(JSON.parse(notices[0]!.payload)).toEqual({
      msgtype: 'text',
      text: { content: '⚠️【告警】对账有 3 处差异待处理（阈值 1）。' },
    })
    // the robot of the chat a moderator is scoped to, not the other configured robot
    expect(robotSends(`${appid}_key`).map((s) => s.body.text)).toEqual([
      { content: '⚠️【告警】对账有 3 处差异待处理（阈值 1）。' },
    ])
    expect(robotSends(`${appid}_key2`)).toHaveLength(0)
    expect(JSON.parse((await alertRows(db, appid))[0]!.delivery!)).toEqual({
      members: [`${appid}_mod0`, `${appid}_mod1`],
      robots: [{ chatId: `${appid}_chat`, status: 'sent' }],
    })

    // within the hour: nothing more
    await evaluate(db, appid, at(30), { robots, mismatches })
    expect(await alertNotices(db, appid)).toHaveLength(2)
    // the account sends alerts to another chat's robot from now on
    await db
      .transaction()
      .execute((trx) => writeAlertSettings(trx, appid, { robotChats: [`${appid}_other`] }, at(31)))
    open = 4
    await evaluate(db, appid, at(60), { robots, mismatches })
    notices = await alertNotices(db, appid)
    expect(notices.slice(2).map((n) => [n.openid, n.source])).toEqual([
      [`${appid}_mod0`, `alert:${alert!.id}:2`],
      [`${appid}_mod1`, `alert:${alert!.id}:2`],
    ])
    const repeat = '⚠️【告警·已持续 60 分钟】对账有 4 处差异待处理（阈值 1）。'
    expect(JSON.parse(notices[2]!.payload).text.content).toBe(repeat)
    expect(robotSends(`${appid}_key2`).map((s) => s.body.text)).toEqual([{ content: repeat }])
    expect(robotSends(`${appid}_key`)).toHaveLength(1)

    // recovered, then back within the hour: a new episode, but nobody is told again until an
    // hour after the last delivery
    open = 0
    await evaluate(db, appid, at(61), { robots, mismatches })
    open = 1
    await evaluate(db, appid, at(62), { robots, mismatches })
    expect(await alertNotices(db, appid)).toHaveLength(4)
    const rows = await alertRows(db, appid)
    expect(rows.map((r) => [r.status, r.notifications])).toEqual([
      ['closed', 2],
      ['open', 0],
    ])
    await evaluate(db, appid, at(120), { robots, mismatches })
    notices = await alertNotices(db, appid)
    expect(notices.slice(4).map((n) => n.source)).toEqual([
      `alert:${rows[1]!.id}:1`,
      `alert:${rows[1]!.id}:1`,
    ])
  })

  it('speaks English when the account does', async () => {
    const { db } = get()
    const appid = app('english')
    const robots = await community(appid)
    await evaluate(db, appid, at(0), { robots, mismatches: async () => 2, locale: 'en' })
    const [notice] = await alertNotices(db, appid)
    expect(JSON.parse(notice!.payload).text.content).toBe(
      '⚠️ [alert] 2 reconciliation mismatches are open (threshold 1).',
    )
  })

  it('an account that cannot send: its backlog is not judged, moderators hear from robots only', async () => {
    const { db } = get()
    const appid = app('nosecret')
    const robots = await community(appid)
    await enqueue(
      db,
      [{ appid, source: 'n-1', openid: 'o_x', kind: 'custom', payload: {}, notBefore: at(-30) }],
      at(-30),
    )
    const outcomes = await evaluateAlerts({
      db,
      appid,
      now: at(0),
      timeZone: TZ,
      locale: 'zh-CN',
      quietHours: null,
      robots,
      mismatches: async () => 1,
      sends: false,
    })
    expect(outcomes).toContainEqual({
      rule: 'outbox_backlog',
      event: 'skipped',
      reason: 'not here',
    })
    expect((await alertRows(db, appid)).map((r) => r.rule)).toEqual(['reconciliation_mismatches'])
    expect(await alertNotices(db, appid)).toHaveLength(0)
    expect(robotSends(`${appid}_key`)).toHaveLength(1)
  })

  it('a disabled rule is not evaluated and its open alert closes', async () => {
    const { db } = get()
    const appid = app('disabled')
    const robots = { keys: {}, baseUrl: wecom.url }
    await evaluate(db, appid, at(0), { robots, mismatches: async () => 2 })
    await db
      .transaction()
      .execute((trx) =>
        writeAlertSettings(
          trx,
          appid,
          { rules: { reconciliation_mismatches: { enabled: false } } },
          at(1),
        ),
      )
    const outcomes = await evaluate(db, appid, at(2), { robots, mismatches: async () => 2 })
    expect(outcomes).toContainEqual({
      rule: 'reconciliation_mismatches',
      event: 'skipped',
      reason: 'disabled',
    })
    expect((await alertRows(db, appid)).map((r) => r.status)).toEqual(['closed'])
  })

  it.runIf(dbName === 'postgres')(
    'two evaluators at once open one episode and deliver it once; a repeat goes out once',
    async () => {
      for (let round = 0; round < 5; round++) {
        const appid = app(`race${round}`)
        const robots = await community(appid)
        const mismatches = async () => 5
        const [a, b] = [get().open(), get().open()]
        const both = await Promise.all([
          evaluate(a, appid, at(0), { robots, mismatches }),
          evaluate(b, appid, at(0), { robots, mismatches }),
        ])
        const opened = both.flat().filter((o) => o.event === 'opened')
        expect(opened).toHaveLength(1)
        expect(await alertRows(get().db, appid)).toHaveLength(1)
        expect(await alertNotices(get().db, appid)).toHaveLength(2)
        expect(robotSends(`${appid}_key`)).toHaveLength(1)
        const again = await Promise.all([
          evaluate(a, appid, at(60), { robots, mismatches }),
          evaluate(b, appid, at(60), { robots, mismatches }),
        ])
        expect(again.flat().filter((o) => o.event === 'repeated')).toHaveLength(1)
        expect((await alertRows(get().db, appid))[0]!.notifications).toBe(2)
        expect(await alertNotices(get().db, appid)).toHaveLength(4)
        expect(robotSends(`${appid}_key`)).toHaveLength(2)
      }
    },
  )

  it('counts refused pushes of configured accounts and outbox results into traffic_counts', async () => {
    const { db } = get()
    const clock = { now: () => at(0) }
    const traffic = trafficCounter(db, clock)
    const server = await startServer(db, { clock, traffic })
    try {
      const ts = Math.floor(at(0).getTime() / 1000)
      const post = (path: string) =>
        fetch(`${server.url}/wechat${path}?signature=${'0'.repeat(40)}&timestamp=${ts}&nonce=n1`, {
          method: 'POST',
          body: '<xml></xml>',
        })
      expect((await post(`/${SAFE_ACCOUNT.appid}`)).status).toBe(401)
      expect((await post('')).status).toBe(401)
      expect((await post('/wx_not_an_account')).status).toBe(404)
    } finally {
      await server.close()
    }
    const appid = app('traffic')
    const api = accountClient({
      tokenStore: databaseTokenStore(db, systemClock),
      appid,
      secret: 'any',
      baseUrl: wecom.url,
      mode: 'stable',
      clock: { now: () => new Date() },
      logger: silentLogger,
      backoffMs: 1,
    })
    await enqueue(
      db,
      [
        {
          appid,
          source: 'traffic-1',
          openid: 'o_traffic',
          kind: 'template',
          payload: { template_id: 'TPL_1', data: { thing1: { value: '你好' } } },
        },
        // refused before sending (a template needs a keyword): a failed send
        {
          appid,
          source: 'traffic-2',
          openid: 'o_traffic',
          kind: 'template',
          payload: { template_id: 'TPL_1', data: {} },
        },
      ],
      at(0),
    )
    const worker = startOutboxWorker({
      db,
      api,
      appid,
      clock,
      logger: silentLogger,
      timeZone: TZ,
      rate: { perSecond: 0, burst: 1 },
      pollMs: 20,
      traffic,
    })
    const statuses = () =>
      db
        .selectFrom('push_outbox')
        .select('status')
        .where('appid', '=', appid)
        .orderBy('source')
        .execute()
    for (let i = 0; i < 200; i++) {
      if ((await statuses()).every((r) => r.status === 'sent' || r.status === 'failed')) break
      await new Promise((r) => setTimeout(r, 25))
    }
    await worker.stop()
    expect((await statuses()).map((r) => r.status)).toEqual(['sent', 'failed'])
    await traffic.flush()
    const window = [at(-1), at(1)] as const
    expect(await readTraffic(db, SAFE_ACCOUNT.appid, ...window)).toEqual({
      push_refused: 2,
      send_sent: 0,
      send_failed: 0,
    })
    expect(await readTraffic(db, 'wx_not_an_account', ...window)).toEqual({
      push_refused: 0,
      send_sent: 0,
      send_failed: 0,
    })
    expect(await readTraffic(db, appid, ...window)).toEqual({
      push_refused: 0,
      send_sent: 1,
      send_failed: 1,
    })
  })

  it('the alerts job evaluates every account and prunes old samples and counts', async () => {
    const { db } = get()
    const config = testConfig()
    const old = new Date(T0.getTime() - 9 * 86_400_000)
    await db
      .insertInto('alert_samples')
      .values({ appid: SAFE_ACCOUNT.appid, metric: 'x', at: old, value: 1 })
      .execute()
    await db
      .insertInto('traffic_counts')
      .values({ appid: SAFE_ACCOUNT.appid, minute: old, name: 'push_refused', n: 1 })
      .execute()
    const result = await alertsJob.run({
      db,
      clock: { now: () => T0 },
      logger: silentLogger,
      config,
      slot: T0,
    })
    expect(Object.keys(result)).toEqual(config.accounts.map((a) => a.appid))
    expect(
      await db.selectFrom('alert_samples').selectAll().where('at', '=', old).execute(),
    ).toHaveLength(0)
    expect(
      await db.selectFrom('traffic_counts').selectAll().where('minute', '=', old).execute(),
    ).toHaveLength(0)
  })

  it('operator API: alert settings validated, applied and audited; open and recent alerts', async () => {
    const { db } = get()
    const appid = SAFE_ACCOUNT.appid
    const clock = { now: () => at(0) }
    const server: TestServer = await startServer(db, {
      clock,
      config: testConfig({
        ADMIN_TOKEN: TOKEN,
        WECOM_GROUP_ROBOTS: JSON.stringify({ 'chat-ops': 'robot-ops' }),
      }),
    })
    try {
      const call = (method: string, path: string, body?: unknown) =>
        fetch(`${server.url}/admin/api/analytics/${path}`, {
          method,
          headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
          body: body === undefined ? undefined : JSON.stringify(body),
        })
      let res = await call('GET', 'alert-settings')
      expect(res.status).toBe(200)
      let view = await res.json()
      expect(view.rules.error_rate.effective).toEqual({
        enabled: true,
        threshold: 0.05,
        windowMinutes: 15,
        minSamples: 20,
        repeatMinutes: 60,
      })
      expect(view.robotChats).toEqual({ configured: ['chat-ops'], override: null, effective: [] })
      for (const [body, message] of [
        [{ rules: { error_rate: { threshold: 2 } } }, 'must be at most 0.99'],
        [{ rules: { error_rate: { repeatMinutes: 30 } } }, 'must be at least 60'],
        [{ rules: { outbox_backlog: { windowMinutes: 5 } } }, 'windowMinutes'],
        [{ rules: { nope: {} } }, 'nope'],
        [{ robotChats: ['chat-unknown'] }, 'no group robot is configured for chat-unknown'],
      ] as const) {
        res = await call('PUT', 'alert-settings', body)
        expect(res.status).toBe(400)
        expect(JSON.stringify(await res.json())).toContain(message)
      }
      res = await call('PUT', 'alert-settings', {
        rules: { error_rate: { threshold: 0.1 }, job_stalled: { enabled: false } },
        robotChats: ['chat-ops'],
      })
      expect(res.status).toBe(200)
      view = await res.json()
      expect(view.rules.error_rate.overrides).toEqual({ threshold: 0.1 })
      expect(view.rules.error_rate.effective.threshold).toBe(0.1)
      expect(view.rules.job_stalled.effective.enabled).toBe(false)
      expect(view.robotChats.effective).toEqual(['chat-ops'])
      const audited = await db
        .selectFrom('audit_log')
        .select(['action', 'details'])
        .where('appid', '=', appid)
        .where('action', '=', 'analytics.alert_settings')
        .execute()
      expect(audited).toHaveLength(1)
      // a field reset to its default leaves the others
      res = await call('PUT', 'alert-settings', { rules: { job_stalled: { enabled: null } } })
      view = await res.json()
      expect(view.rules.job_stalled.overrides).toEqual({})
      expect(view.rules.error_rate.overrides).toEqual({ threshold: 0.1 })

      await evaluateAlerts({
        db,
        appid,
        now: at(0),
        timeZone: TZ,
        locale: 'zh-CN',
        quietHours: null,
        robots: { keys: {}, baseUrl: wecom.url },
        mismatches: async () => 1,
      })
      res = await call('GET', 'alerts?limit=5')
      expect(res.status).toBe(200)
      const listed = await res.json()
      expect(listed.open.map((a: { rule: string }) => a.rule)).toContain(
        'reconciliation_mismatches',
      )
      expect(listed.recent.length).toBeGreaterThan(0)
      expect((await call('GET', 'alerts?limit=0')).status).toBe(400)
    } finally {
      await server.close()
    }
  })
})
