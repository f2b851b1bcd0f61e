import { spawn } from 'node:child_process'
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRouter } from '../../handlers/index.js'
import { forEachDatabase } from '../../test/databases.js'
import { SAFE_ACCOUNT, startServer, testConfig } from '../../test/server.js'
import { createApp } from '../app.js'
import { translator } from '../bot/i18n.js'
import { systemClock } from '../clock.js'
import { silentLogger } from '../logger.js'
import { createPusher } from '../sandbox/pusher.js'
import { type SandboxApi, startSandboxApi } from '../sandbox/wechat-api-server.js'
import { accountClient } from '../wechat/api/account-client.js'
import { createTag } from '../wechat/api/users.js'
import {
  afterQuietHours,
  type CampaignSettings,
  dispatchCampaigns,
  markConversions,
  pickVariant,
  twoProportionZTest,
} from './campaigns.js'
import { seenInGroup } from './moderation.js'
import { drainOutbox, recordDelivery } from './outbox.js'
import { databaseTokenStore } from './token-store.js'

const SECRET = 'campaign-secret'
const TOKEN = 'campaign-operator-token'
const t = translator('zh-CN')
let wx: SandboxApi
beforeAll(async () => {
  wx = await startSandboxApi({ secret: SECRET })
})
afterAll(() => wx.close())

describe('campaign helpers', () => {
  it('holds pushes during quiet hours (wrapping midnight) until they end', () => {
    const s = { timeZone: 'Asia/Shanghai', quietHours: { from: 22 * 60, to: 8 * 60 } }
    const at = (iso: string) => afterQuietHours(new Date(iso), s).toISOString()
    expect(at('2026-11-25T14:59:00Z')).toBe('2026-11-26T00:00:00.000Z') // 22:59 local → 08:00
    expect(at('2026-11-25T13:59:00Z')).toBe('2026-11-25T13:59:00.000Z') // 21:59 local: now
    expect(at('2026-11-25T15:30:00Z')).toBe('2026-11-26T00:00:00.000Z') // 23:30 → 08:00
    expect(at('2026-11-25T19:00:30Z')).toBe('2026-11-26T00:00:00.000Z') // 03:00 → 08:00
    expect(at('2026-11-26T00:00:00Z')).toBe('2026-11-26T00:00:00.000Z') // 08:00: open
    expect(afterQuietHours(new Date('2026-11-25T15:30:00Z'), { ...s, quietHours: null })).toEqual(
      new Date('2026-11-25T15:30:00Z'),
    )
  })

  it('splits by weight, stably, and tests two proportions', () => {
    const variants = [
      { key: 'A', weight: 70, template: { template_id: 'T', data: {} } },
      { key: 'B', weight: 30, template: { template_id: 'T', data: {} } },
    ]
    const picks = Array.from({ length: 10_000 }, (_, i) => pickVariant(7, i, variants).key)
    const a = picks.filter((k) => k === 'A').length
    expect(a).toBeGreaterThan(6800)
    expect(a).toBeLessThan(7200)
    expect(pickVariant(7, 42, variants).key).toBe(pickVariant(7, 42, variants).key)
    // 12/100 vs 5/100: z ≈ 1.79, not significant at 5 %; 120/1000 vs 50/1000 is
    expect(twoProportionZTest({ n: 100, x: 12 }, { n: 100, x: 5 })).toMatchObject({
      z: 1.7749,
      pValue: 0.0759,
      significant: false,
    })
    expect(twoProportionZTest({ n: 1000, x: 120 }, { n: 1000, x: 50 })?.significant).toBe(true)
    expect(twoProportionZTest({ n: 0, x: 0 }, { n: 10, x: 1 })).toBeNull()
  })
})

forEachDatabase('campaigns', (get, dbName) => {
  const appid = SAFE_ACCOUNT.appid
  const clock = { at: new Date('2026-11-25T02:00:00Z'), now: () => clock.at } // 10:00 Shanghai
  const settings: CampaignSettings = {
    timeZone: 'Asia/Shanghai',
    capHours: 24,
    quietHours: { from: 22 * 60, to: 8 * 60 },
    publicBaseUrl: 'https://quanzi.example',
  }
  const app = () =>
    createApp({
      config: testConfig({ ADMIN_TOKEN: TOKEN }),
      db: get().db,
      router: createRouter(),
      logger: silentLogger,
      clock,
      api: () => api(),
    })
  const admin = async (method: string, path: string, body?: unknown) => {
    const res = await app().request(`/admin/api/accounts/${appid}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    return { status: res.status, json: (await res.json()) as Record<string, unknown> }
  }
  const api = () =>
    accountClient({
      tokenStore: databaseTokenStore(get().db, systemClock),
      appid,
      secret: SECRET,
      baseUrl: wx.url,
      mode: 'stable',
      clock: { now: () => new Date() },
      logger: silentLogger,
      backoffMs: 1,
    })
  const drain = () =>
    drainOutbox({
      db: get().db,
      api: api(),
      appid,
      clock,
      logger: silentLogger,
      timeZone: 'Asia/Shanghai',
      rate: { perSecond: 0, burst: 1 },
    })
  const dispatch = () => dispatchCampaigns(get().db, { now: clock.now(), settings, t })
  const member = (openid: string, fields: Record<string, unknown> = {}) =>
    get()
      .db.insertInto('members')
      .values({
        appid,
        openid,
        subscribed: true,
        first_seen_at: new Date('2026-10-01T00:00:00Z'),
        last_active_at: new Date('2026-11-20T00:00:00Z'),
        segment: 'active',
        ...fields,
      })
      .returning('id')
      .executeTakeFirstOrThrow()
  const template = (key: string) => ({
    template_id: 'TPL_RECALL',
    data: { thing1: { value: `回归礼${key}` }, number2: { value: '{{points}}' } },
    url: `https://shop.example/recall?v=${key}`,
  })

  it('validates campaigns and moves them through their lifecycle', async () => {
    const bad = async (body: Record<string, unknown>, message: RegExp) => {
      const r = await admin('POST', '/campaigns', body)
      expect(r.status, JSON.stringify(body)).toBe(400)
      expect(String(r.json.message)).toMatch(message)
    }
    const base = {
      name: 'x',
      audience: {},
      template: template('A'),
      schedule: { cron: '0 10 * * *' },
    }
    await bad({ ...base, audience: { segment: 'vip' } }, /^audience\.segment: one of/)
    await bad({ ...base, schedule: { cron: '0 25 * * *' } }, /^schedule\.cron/)
    await bad(
      { ...base, template: { ...template('A'), data: { first: { value: 'x' } } } },
      /data\.first/,
    )
    await bad(
      { ...base, variants: [{ key: 'A', weight: 1, template: template('A') }] },
      /variants|template/,
    )
    const created = await admin('POST', '/campaigns', base)
    expect(created.status).toBe(201)
    const id = created.json.id
    expect((await admin('POST', `/campaigns/${id}/resume`)).status).toBe(409)
    expect((await admin('POST', `/campaigns/${id}/schedule`)).json.status).toBe('scheduled')
    expect((await admin('POST', `/campaigns/${id}/pause`)).json.status).toBe('paused')
    expect((await admin('POST', `/campaigns/${id}/finish`)).json.status).toBe('finished')
    expect((await admin('GET', '/campaigns/999999/report')).status).toBe(404)
    // the re-engagement strategies: one draft per segment, created once
    const templates = { new: template('N'), at_risk: template('R'), loyal: template('L') }
    const strategies = await admin('POST', '/campaigns/strategies', { templates })
    expect(strategies.status).toBe(201)
    const made = strategies.json.created as { audience: { segment: string }; status: string }[]
    expect(made.map((x) => [x.audience.segment, x.status])).toEqual([
      ['new', 'draft'],
      ['at_risk', 'draft'],
      ['loyal', 'draft'],
    ])
    const again = await admin('POST', '/campaigns/strategies', { templates })
    expect(again.json.created).toEqual([])
  })

  it('sends an A/B campaign to its segment once, honouring opt-out, reachability, cap and quiet hours, and reports it', async () => {
    const ids: number[] = []
    for (let i = 0; i < 40; i++)
      ids.push((await member(`o_ab_${dbName}_${i}`, { points_balance: i })).id)
    await member(`o_ab_${dbName}_optout`, { marketing_opt_out: true })
    await member(`o_ab_${dbName}_left`, { subscribed: false })
    await member(`o_ab_${dbName}_capped`, { last_campaign_at: new Date('2026-11-25T00:00:00Z') })
    await member(`o_ab_${dbName}_dormant`, { segment: 'dormant' })
    // 23:30 in Shanghai: inside quiet hours
    clock.at = new Date('2026-11-25T15:30:00Z')
    const created = await admin('POST', '/campaigns', {
      name: '召回 A/B',
      audience: { segment: 'active' },
      variants: [
        { key: 'A', weight: 50, template: template('A') },
        { key: 'B', weight: 50, template: template('B') },
      ],
      schedule: { at: '2026-11-25T15:00:00Z' },
      conversionDays: 3,
    })
    const id = created.json.id as number
    // a draft is not sent
    expect(await dispatch()).toEqual({ runs: 0, enqueued: 0 })
    await admin('POST', `/campaigns/${id}/schedule`)
    const [first, second] = await Promise.all([dispatch(), dispatch()])
    expect(first.enqueued + second.enqueued).toBe(40)
    expect(await dispatch()).toEqual({ runs: 0, enqueued: 0 }) // finished (one-shot)
    // quiet until 08:00
    const before = wx.sentCount()
    await drain()
    expect(wx.sentCount()).toBe(before)
    clock.at = new Date('2026-11-26T00:00:00Z')
    await drain()
    const sent = wx.sent.filter((s) => s.touser.startsWith(`o_ab_${dbName}_`))
    expect(sent).toHaveLength(40)
    expect(new Set(sent.map((s) => s.touser)).size).toBe(40)
    const body = sent.find((s) => s.touser === `o_ab_${dbName}_7`)!.body as {
      url: string
      data: Record<string, { value: string }>
    }
    expect(body.data.number2!.value).toBe('7') // per-member variable
    expect(body.url).toMatch(/^https:\/\/quanzi\.example\/r\/[A-Za-z0-9]{12}$/)

    // a delivery receipt, a click through the tracked link, a conversion
    await recordDelivery(get().db, {
      appid,
      msgid: String(sent[0]!.msgid),
      status: 'success',
      now: clock.now(),
    })
    const code = body.url.split('/r/')[1]!
    const click = await app().request(`/r/${code}`)
    expect(click.status).toBe(302)
    expect(click.headers.get('location')).toMatch(/^https:\/\/shop\.example\/recall\?v=[AB]$/)
    expect((await app().request('/r/nope')).status).toBe(404)
    await get()
      .db.updateTable('members')
      .set({ last_active_at: new Date('2026-11-26T01:00:00Z') })
      .where('openid', 'in', [`o_ab_${dbName}_1`, `o_ab_${dbName}_2`, `o_ab_${dbName}_3`])
      .execute()
    expect(await markConversions(get().db, new Date('2026-11-26T02:00:00Z'))).toBe(3)
    expect(await markConversions(get().db, new Date('2026-11-26T02:00:00Z'))).toBe(0)

    const report = await admin('GET', `/campaigns/${id}/report`)
    expect(report.json.campaign).toMatchObject({ status: 'finished' })
    type Row = Record<string, number> & { variant: string; skipped: Record<string, number> }
    const variants = report.json.variants as Row[]
    const total = (k: string) => variants.reduce((n, v) => n + (v[k] ?? 0), 0)
    const skipped = (k: string) => variants.reduce((n, v) => n + (v.skipped[k] ?? 0), 0)
    expect(variants.map((v) => v.variant)).toEqual(['A', 'B'])
    expect(total('enqueued')).toBe(40)
    expect(total('sent')).toBe(40)
    expect(total('delivered')).toBe(1)
    expect(total('clicked')).toBe(1)
    expect(total('converted')).toBe(3)
    expect([skipped('optedOut'), skipped('unreachable'), skipped('capped')]).toEqual([1, 1, 1])
    expect(report.json.abTest).toMatchObject({ compared: ['A', 'B'] })
  })

  it('reaches a tag set through the operator API', async () => {
    for (const i of [1, 2, 3]) await member(`o_tag_${dbName}_${i}`, { segment: 'dormant' })
    // a tag WeChat does not know is refused by WeChat, and said so
    const unknownTag = await admin('POST', '/tags/999/members', { openids: [`o_tag_${dbName}_1`] })
    expect(unknownTag.status).toBe(502)
    expect(unknownTag.json.code).toBe('WECHAT_ERROR')
    const tag = await createTag(api(), `vip-${dbName}`)
    const tagged = await admin('POST', `/tags/${tag.id}/members`, {
      openids: [`o_tag_${dbName}_1`, `o_tag_${dbName}_2`],
    })
    expect(tagged.json).toEqual({ tagid: tag.id, tagged: 2 })
    expect((await admin('POST', `/tags/${tag.id}/members`, { openids: ['o_nobody'] })).status).toBe(
      404,
    )
    clock.at = new Date('2026-11-28T02:00:00Z')
    const created = await admin('POST', '/campaigns', {
      name: '标签活动',
      audience: { tag: tag.id },
      template: template('T'),
      schedule: { at: '2026-11-28T02:00:00Z' },
    })
    await admin('POST', `/campaigns/${created.json.id}/schedule`)
    expect((await dispatch()).enqueued).toBe(2)
    const report = await admin('GET', `/campaigns/${created.json.id}/report`)
    expect((report.json.variants as { audience: number }[])[0]!.audience).toBe(2)
  })

  it('reaches the members of a group', async () => {
    const ids = []
    for (const i of [1, 2, 3])
      ids.push((await member(`o_grp_${dbName}_${i}`, { segment: 'dormant' })).id)
    for (const id of ids.slice(0, 2))
      await seenInGroup(get().db, {
        channel: 'wecom_customer',
        chatId: `wr-${dbName}`,
        memberId: id,
        now: new Date(),
      })
    clock.at = new Date('2026-11-29T02:00:00Z')
    const created = await admin('POST', '/campaigns', {
      name: '群成员专享',
      audience: { group: { channel: 'wecom_customer', chatId: `wr-${dbName}` } },
      template: template('G'),
      schedule: { at: '2026-11-29T02:00:00Z' },
    })
    expect(created.status).toBe(201)
    await admin('POST', `/campaigns/${created.json.id}/schedule`)
    expect((await dispatch()).enqueued).toBe(2)
  })

  it('opts out with 退订 / TD and back in with 订阅', async () => {
    const { id } = await member(`o_pref_${dbName}`)
    const flag = async () =>
      (
        await get()
          .db.selectFrom('members')
          .select('marketing_opt_out')
          .where('id', '=', id)
          .executeTakeFirstOrThrow()
      ).marketing_opt_out
    const server = await startServer(get().db)
    try {
      const chat = createPusher({ url: `${server.url}/wechat`, account: SAFE_ACCOUNT })
      expect((await chat.text(`o_pref_${dbName}`, 'TD')).reply!.Content).toMatch(/^已退订活动推送/)
      expect(await flag()).toBe(true)
      expect((await chat.text(`o_pref_${dbName}`, '订阅')).reply!.Content).toMatch(/^已重新订阅/)
      expect(await flag()).toBe(false)
    } finally {
      await server.close()
    }
  })

  it('pauses on 45009 until the next community day, then resumes by itself', async () => {
    await member(`o_quota_${dbName}`, { segment: 'loyal' })
    clock.at = new Date('2026-11-27T02:00:00Z') // 10:00
    const created = await admin('POST', '/campaigns', {
      name: '忠诚用户抢先购',
      audience: { segment: 'loyal' },
      template: template('L'),
      schedule: { at: '2026-11-27T02:00:00Z' },
    })
    await admin('POST', `/campaigns/${created.json.id}/schedule`)
    expect((await dispatch()).enqueued).toBe(1)
    wx.fault('template.send', { errcode: 45009, errmsg: 'reach max api daily quota limit' })
    await drain()
    const report = await admin('GET', `/campaigns/${created.json.id}/report`)
    expect(report.json.quotaPausedUntil).toBe('2026-11-27T16:00:00.000Z') // local midnight
    clock.at = new Date('2026-11-27T15:00:00Z')
    await drain()
    expect(wx.sent.some((s) => s.touser === `o_quota_${dbName}`)).toBe(false)
    clock.at = new Date('2026-11-27T16:00:01Z')
    await drain()
    expect(wx.sent.filter((s) => s.touser === `o_quota_${dbName}`)).toHaveLength(1)
  })

  it.skipIf(dbName !== 'postgres')(
    'reaches every recipient exactly once when processes are killed mid-enqueue and mid-send',
    async () => {
      const crashApp = `wx${Date.now().toString(16).slice(-16).padStart(16, '0')}`
      await get()
        .db.insertInto('members')
        .values(
          Array.from({ length: 300 }, (_, i) => ({
            appid: crashApp,
            openid: `o_kill_${i}`,
            subscribed: true,
            first_seen_at: new Date(),
            segment: 'active' as const,
          })),
        )
        .execute()
      await get()
        .db.insertInto('campaigns')
        .values({
          appid: crashApp,
          name: 'crash',
          status: 'scheduled',
          audience: '{}',
          variants: JSON.stringify([{ key: 'A', weight: 1, template: template('K') }]),
          run_at: new Date(Date.now() - 1000),
          created_at: new Date(),
          updated_at: new Date(),
        })
        .execute()
      const schema = (await sql<{ s: string }>`select current_schema() as s`.execute(get().db))
        .rows[0]!.s
      const args = (mode: string) => [
        '--import',
        'tsx',
        'test/fixtures/campaign-child.ts',
        process.env.TEST_DATABASE_URL!,
        schema,
        wx.url,
        crashApp,
        SECRET,
        mode,
      ]
      const run = (mode: string) =>
        spawn(process.execPath, args(mode), { stdio: ['ignore', 'pipe', 'inherit'] })
      const exit = (p: ReturnType<typeof run>) =>
        new Promise<number | null>((r) => p.once('exit', (code) => r(code)))
      const sentTo = () => wx.sent.filter((s) => s.appid === crashApp)
      // 1. killed by SIGKILL right after its first batch of 100 was committed
      expect(await exit(run('die-after-first-batch'))).toBeNull()
      const recipients = async () =>
        (
          await sql<{ n: number }>`select count(*)::int as n from campaign_recipients r
            join campaigns c on c.id = r.campaign_id where c.appid = ${crashApp}`.execute(get().db)
        ).rows[0]!.n
      expect(await recipients()).toBe(100)
      await new Promise((r) => setTimeout(r, 600)) // its lease runs out
      // 2. continues the run, starts sending, and is killed mid-send
      wx.setLatency(15)
      try {
        const second = run('run')
        await new Promise<void>((resolve) => {
          const timer = setInterval(() => {
            if (sentTo().length >= 30) {
              clearInterval(timer)
              resolve()
            }
          }, 5)
        })
        second.kill('SIGKILL')
        await exit(second)
        // 3. finishes
        expect(await exit(run('run'))).toBe(0)
      } finally {
        wx.setLatency(0)
      }
      expect(await recipients()).toBe(300)
      expect(sentTo()).toHaveLength(300)
      expect(new Set(sentTo().map((s) => s.touser)).size).toBe(300)
    },
    60_000,
  )
})
