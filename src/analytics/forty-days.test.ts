/**
 * Issue #16's "done means": a small community over 40 simulated days — follows from invites,
 * posters and search, check-ins, invites, a two-variant campaign, purchases and a refund, churn —
 * played through the real entry points (forty-days-driver.ts), and every figure the analytics
 * engine reports compared with the figure computed independently from the script
 * (forty-days-expected.ts): the daily rollups, the cohort triangles, the K-factor, the campaign
 * funnel and its A/B test, the fitted k and m, the alert episode and its delivery, and advice.
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { product } from '../../test/analytics-fixtures.js'
import { forEachDatabase } from '../../test/databases.js'
import { sandboxClient } from '../../test/sandbox-client.js'
import { SAFE_ACCOUNT, startServer, type TestServer, testConfig } from '../../test/server.js'
import { type SandboxApi, startSandboxApi } from '../sandbox/wechat-api-server.js'
import { advise } from './advice.js'
import { writeAlertSettings } from './alert-rules.js'
import { analyticsFits } from './analytics-fits.js'
import { campaignAnalytics } from './campaigns.js'
import { cohortTriangle } from './cohorts.js'
import { playScript, type RunRecord } from './forty-days-driver.js'
import {
  day0IsMonday,
  expectedDay,
  expectedTriangle,
  type Facts,
  factsOf,
  olsSlope,
  retentionM,
  twoProportion,
} from './forty-days-expected.js'
import {
  ALERT_DAYS,
  actor,
  at,
  buildScript,
  CAMPAIGN,
  DAYS,
  dayName,
  PRICES,
  type Script,
} from './forty-days-script.js'
import { liveToday } from './series.js'

const TZ = 'Asia/Shanghai'
const TOKEN = 'forty-days-operator-token'
const APPID = SAFE_ACCOUNT.appid
const SECRET = 'forty-days-secret'
const closeTo = (a: number, b: number) => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b))

forEachDatabase('forty days of a community, end to end', (get) => {
  let wx: SandboxApi
  let server: TestServer
  const time = { now: at(0, 0) }
  const config = testConfig({
    ADMIN_TOKEN: TOKEN,
    PUBLIC_BASE_URL: 'https://quanzi.example',
    // one level of invite reward (friend_invite), no chain above it
    INVITE_CHAIN_REWARDS: '',
  })
  const script: Script = buildScript()
  const facts: Facts = factsOf(script)
  let run: RunRecord

  beforeAll(async () => {
    wx = await startSandboxApi({ secret: SECRET })
    const db = get().db
    const api = () => sandboxClient(db, { appid: APPID, secret: SECRET, baseUrl: wx.url })
    server = await startServer(db, { clock: { now: () => time.now }, config, api: () => api() })
    // the catalog and the moderators are configuration, set before day 0
    for (const [sku, fen] of Object.entries(PRICES))
      await product(db, APPID, { sku, fen, at: at(0, 0) })
    await db
      .insertInto('moderators')
      .values({
        channel: 'oa',
        external_id: script.moderator,
        scope: '*',
        role: 'admin',
        source: 'config',
      })
      .execute()
    await db
      .transaction()
      .execute((trx) => writeAlertSettings(trx, APPID, { robotChats: ['ops'] }, at(0, 0)))
    const admin = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${server.url}/admin/api/accounts/${APPID}${path}`, {
        method,
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      })
      return { status: res.status, json: await res.json() }
    }
    const started = Date.now()
    const concurrency = get().name === 'postgres' ? 8 : 1
    run = await playScript(script, { db, server, wx, config, api, time, admin, concurrency })
    console.info(`forty days played in ${Date.now() - started} ms`)
    time.now = at(DAYS, 10 * 60)
  }, 240_000)
  afterAll(async () => {
    await server?.close()
    await wx?.close()
  })

  it('is the community it means to be', () => {
    expect(day0IsMonday()).toBe(true)
    expect(script.members.length).toBeGreaterThan(80)
    expect(facts.active[ALERT_DAYS[0]]!.size).toBeGreaterThanOrEqual(20)
  })

  it('rolls up every day exactly: followers, activity, check-ins, points, commerce, invites and K', async () => {
    const rows = await get()
      .db.selectFrom('analytics_daily')
      .select(['metric', 'dim', 'value', (eb) => eb.cast<string>('day', 'text').as('day')])
      .where('appid', '=', APPID)
      .execute()
    const mismatches: string[] = []
    for (let d = 0; d < DAYS; d++) {
      const want = expectedDay(facts, d)
      const metrics = new Set([...want.keys()].map((k) => k.split('|')[0]))
      const got = new Map(
        rows
          .filter((r) => r.day === dayName(d) && metrics.has(r.metric))
          .map((r) => [`${r.metric}|${r.dim}`, Number(r.value)]),
      )
      for (const key of new Set([...want.keys(), ...got.keys()]))
        if (!closeTo(got.get(key) ?? 0, want.get(key) ?? 0))
          mismatches.push(`day ${d} ${key}: got ${got.get(key)}, want ${want.get(key)}`)
    }
    expect(mismatches).toEqual([])
    // the script did exercise the invite funnel: some days have K > 0
    const k = [...Array(DAYS).keys()].map((d) => expectedDay(facts, d).get('invites.k_factor|')!)
    expect(k.filter((x) => x > 0).length).toBeGreaterThan(2)
  })

  it('builds the retention triangles by follow day and by week, in all and per source', async () => {
    const db = get().db
    const q = { appid: APPID, from: dayName(0), to: dayName(DAYS - 1) }
    const shape = (rows: { start: string; size: number; retained: (number | null)[] }[]) =>
      rows.map(({ start, size, retained }) => ({ start, size, retained }))
    const day = await cohortTriangle(db, { ...q, grain: 'day', maxAge: DAYS - 1 })
    expect(day.builtThrough).toBe(dayName(DAYS - 1))
    expect(shape(day.cohorts)).toEqual(
      expectedTriangle(facts, { grain: 'day', maxAge: DAYS - 1, built: DAYS - 1 }),
    )
    const week = await cohortTriangle(db, { ...q, grain: 'week', maxAge: 4 })
    expect(shape(week.cohorts)).toEqual(
      expectedTriangle(facts, { grain: 'week', maxAge: 4, built: DAYS - 1 }),
    )
    for (const source of ['invite', 'qr', 'organic'] as const) {
      const bySource = await cohortTriangle(db, { ...q, grain: 'day', maxAge: 14, source })
      expect(shape(bySource.cohorts), source).toEqual(
        expectedTriangle(facts, { grain: 'day', maxAge: 14, built: DAYS - 1, source }),
      )
    }
  })

  it('fits k on the follower series and m on the pooled retention, as computed here', async () => {
    const fits = await analyticsFits(get().db, {
      appid: APPID,
      from: dayName(0),
      to: dayName(DAYS - 1),
    })
    const totals = [...Array(DAYS).keys()].map((t) => ({
      t,
      value: expectedDay(facts, t).get('followers.total|')!,
    }))
    const growth = olsSlope(totals)
    expect(fits.growth.fit!.n).toBe(growth.n)
    expect(closeTo(fits.growth.fit!.k, growth.k)).toBe(true)
    expect(closeTo(fits.growth.fit!.r0, growth.r0)).toBe(true)
    const rows = expectedTriangle(facts, { grain: 'day', maxAge: 30, built: DAYS - 1 })
    const retention = retentionM(rows, 30)
    expect(fits.retention.points).toEqual(retention.points)
    expect(closeTo(fits.retention.exponential!.m, retention.m)).toBe(true)
    expect(retention.m).toBeGreaterThan(0)
  })

  it('counts the campaign funnel per variant and tests the two proportions', async () => {
    // served from the rollups the nightly job built (every day through yesterday)
    const list = await campaignAnalytics(get().db, {
      appid: APPID,
      from: at(CAMPAIGN.sendDay, 0),
      to: at(CAMPAIGN.sendDay + 1, 0),
      today: dayName(DAYS),
      timeZone: TZ,
      live: liveToday(get().db),
    })
    expect(list.asOf).toBe(dayName(DAYS - 1))
    const [campaign] = list.campaigns
    // the audience: everyone following at 08:30 on the send day
    const following = script.members.filter((m) => {
      const left = script.steps.find((s) => s.kind === 'unfollow' && s.openid === m.openid)
      return m.followDay < CAMPAIGN.sendDay && (!left || left.day >= CAMPAIGN.sendDay)
    })
    expect(run.variants.size).toBe(following.length)
    // converted: any member action or purchase after the send and before the last mark inside
    // the 3-day window (the campaigns job marks at 23:30; the window closes on day 33 at 08:30)
    const from = at(CAMPAIGN.sendDay, CAMPAIGN.sendMinute).getTime()
    const to = at(CAMPAIGN.sendDay + CAMPAIGN.conversionDays - 1, 23 * 60 + 30).getTime()
    const acted = new Set(
      script.steps
        .filter((s) => s.kind !== 'unfollow' && s.kind !== 'refund')
        .filter((s) => {
          const t = at(s.day, s.minute).getTime()
          return t > from && t <= to
        })
        .map(actor),
    )
    const want = ['A', 'B'].map((variant) => {
      const who = [...run.variants].filter(([, v]) => v === variant).map(([o]) => o)
      return {
        variant,
        enqueued: who.length,
        sent: who.length,
        delivered: who.filter((o) => run.delivered.has(o)).length,
        clicked: who.filter((o) => run.clicked.has(o)).length,
        converted: who.filter((o) => acted.has(o)).length,
      }
    })
    expect(
      campaign!.variants.map(({ variant, enqueued, sent, delivered, clicked, converted }) => ({
        variant,
        enqueued,
        sent,
        delivered,
        clicked,
        converted,
      })),
    ).toEqual(want)
    const [a, b] = want as [(typeof want)[0], (typeof want)[0]]
    const test = twoProportion({ n: a.enqueued, x: a.converted }, { n: b.enqueued, x: b.converted })
    const conversion = campaign!.abTest!.conversion!
    expect(conversion.z).toBeCloseTo(test.z, 4)
    expect(Math.abs(conversion.pValue - test.pValue)).toBeLessThanOrEqual(1e-4)
    expect(conversion.significant).toBe(test.pValue < 0.05)
    expect(campaign!.quotaUsed).toBe(following.length)
  })

  it('opens an alert once when actives drop by more than 10 %, repeats it hourly, closes it on recovery and tells the moderators', async () => {
    const drops = run.alerts.map(({ day, minute, outcomes }) => ({
      day,
      minute,
      events: outcomes.filter((o) => o.rule === 'active_members_drop').map((o) => o.event),
    }))
    // day 31 has no sample a week before it (the evaluator's first day): nothing to judge
    expect(drops).toEqual([
      { day: 31, minute: 720, events: ['skipped'] },
      { day: 31, minute: 750, events: ['skipped'] },
      { day: 31, minute: 780, events: ['skipped'] },
      { day: 31, minute: 810, events: ['skipped'] },
      { day: 38, minute: 720, events: ['opened'] },
      { day: 38, minute: 750, events: [] },
      { day: 38, minute: 780, events: ['repeated'] },
      { day: 38, minute: 810, events: ['closed'] },
    ])
    // actives so far: members with a member action before noon on day 31 and day 38
    const before = (day: number, minute: number) =>
      new Set(
        script.steps
          .filter((s) => s.day === day && s.minute < minute && s.kind !== 'unfollow')
          .filter((s) => s.kind !== 'order' && s.kind !== 'refund')
          .map(actor),
      ).size
    const baseline = before(31, 720)
    const morning = before(38, 720)
    expect(before(31, 24 * 60)).toBe(baseline) // day 31: everyone came before noon
    expect(before(38, 810)).toBeGreaterThanOrEqual(0.9 * baseline) // recovered by 13:30
    const drop = (baseline - morning) / baseline
    expect(drop).toBeGreaterThan(0.1)
    const [alert] = await get()
      .db.selectFrom('alerts')
      .selectAll()
      .where('appid', '=', APPID)
      .where('rule', '=', 'active_members_drop')
      .execute()
    expect(alert).toMatchObject({ status: 'closed', notifications: 2, opened_at: at(38, 720) })
    expect(alert!.closed_at).toEqual(at(38, 810))
    const text = `活跃成员比上周同一时间少 ${(Math.round(drop * 1000) / 10).toFixed(1)}%：今天到现在 ${morning} 人，上周同期 ${baseline} 人`
    // the moderator, a follower who wrote today, by customer-service message; the ops robot
    const told = (method: string, to: string) =>
      wx.sent
        .filter((x) => x.method === method && x.touser === to)
        .map((x) => (x.body.text as { content: string }).content)
        .filter((c) => c.includes('活跃成员'))
    const expected = [
      expect.stringMatching(new RegExp(`^⚠️【告警】${text}`)),
      expect.stringMatching(new RegExp(`^⚠️【告警·已持续 60 分钟】${text}`)),
    ]
    expect(told('custom.send', script.moderator)).toEqual(expected)
    expect(told('webhook.send', 'robot:robot-ops')).toEqual(expected)
    expect(JSON.parse(alert!.delivery!)).toEqual({
      members: [script.moderator],
      robots: [{ chatId: 'ops', status: 'sent' }],
    })
  })

  it('advises from its figures: the ones computed here, and the rules they trigger', async () => {
    const today = DAYS
    const mean = (from: number, to: number) => {
      let n = 0
      for (let d = from; d <= to; d++) n += facts.active[d]!.size
      return n / (to - from + 1)
    }
    const recent = mean(today - 7, today - 1)
    const baseline = mean(today - 35, today - 8)
    const actives = new Set(facts.active.slice(today - 30).flatMap((s) => [...s])).size
    const month = facts.orders.filter((o) => o.day >= today - 30)
    const payers = new Set(month.map((o) => o.openid)).size
    const cohort = script.members.filter(
      (m) => m.followDay >= today - 37 && m.followDay <= today - 8,
    )
    const retained = cohort.filter((m) => facts.active[m.followDay + 7]!.has(m.openid)).length
    const gmv = month.reduce((n, o) => n + PRICES[o.sku], 0)
    const figures = {
      activeVsBaseline: { value: recent / baseline, sample: baseline },
      conversion: { value: payers / actives, sample: actives },
      d7Retention: { value: retained / cohort.length, sample: cohort.length },
      aovFen: { value: gmv / month.length, sample: month.length },
    }
    const { figures: got, advice } = await advise(get().db, {
      appid: APPID,
      now: time.now,
      timeZone: TZ,
      locale: 'zh-CN',
    })
    for (const [name, f] of Object.entries(figures)) {
      const g = got[name as keyof typeof got]!
      expect(closeTo(g.value, f.value), `${name}: ${g.value} vs ${f.value}`).toBe(true)
      expect(closeTo(g.sample, f.sample), `${name} sample`).toBe(true)
    }
    // the plan's rules: below 1× baseline, 2 %, 15 %, 150 元; high priority below 0.8, 1 %, 10 %, 100 元
    const rules = [
      {
        rule: 'growth',
        area: '用户增长',
        figure: 'activeVsBaseline',
        below: 1,
        severe: 0.8,
        min: 5,
      },
      {
        rule: 'conversion',
        area: '转化',
        figure: 'conversion',
        below: 0.02,
        severe: 0.01,
        min: 30,
      },
      { rule: 'retention', area: '留存', figure: 'd7Retention', below: 0.15, severe: 0.1, min: 20 },
      { rule: 'aov', area: '客单价', figure: 'aovFen', below: 15_000, severe: 10_000, min: 10 },
    ] as const
    const want = rules
      .filter((r) => figures[r.figure].sample >= r.min && figures[r.figure].value < r.below)
      .map((r) => ({
        rule: r.rule,
        area: r.area,
        priority: figures[r.figure].value < r.severe ? 'high' : 'medium',
        threshold: r.below,
      }))
      .sort((a, b) => (a.priority === b.priority ? 0 : a.priority === 'high' ? -1 : 1))
    expect(
      advice.map((a) => ({
        rule: a.rule,
        area: a.area,
        priority: a.priority,
        threshold: a.figure.threshold,
      })),
    ).toEqual(want)
    // the scenario is built to trigger 留存 (d7 below 15 %) and 客单价 (orders of 9.90–199 元)
    expect(want.map((w) => w.rule)).toEqual(expect.arrayContaining(['retention', 'aov']))
    const retention = advice.find((a) => a.rule === 'retention')!
    expect(retention.title).toContain(`（${retained}/${cohort.length}）`)
    expect(retention.suggestions.length).toBeGreaterThan(0)
  })
})
