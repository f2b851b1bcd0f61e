import { spawn } from 'node:child_process'
import { type Kysely, sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as checkin from '../../handlers/checkin.js'
import { createRouter } from '../../handlers/index.js'
import * as preferences from '../../handlers/preferences.js'
import * as m0064 from '../../migrations/0064_push_outcomes_audit_retention.js'
import { forEachDatabase } from '../../test/databases.js'
import { holdTransaction, stillPending } from '../../test/held-transaction.js'
import { placeInSegment } from '../../test/segment-fixtures.js'
import { SAFE_ACCOUNT, startServer, testConfig } from '../../test/server.js'
import { createApp } from '../app.js'
import { translator } from '../bot/i18n.js'
import { type CommandSpec, type Handler, Router } from '../bot/router.js'
import { systemClock } from '../clock.js'
import { loadConfig } from '../config.js'
import type { Segment } from '../db/schema.js'
import { silentLogger } from '../logger.js'
import { createPusher } from '../sandbox/pusher.js'
import { type SandboxApi, startSandboxApi } from '../sandbox/wechat-api-server.js'
import { accountClient } from '../wechat/api/account-client.js'
import { createTag } from '../wechat/api/users.js'
import { campaignReport } from './campaign-counts.js'
import { moveCampaign } from './campaign-lifecycle.js'
import { markConversions, twoProportionZTest } from './campaign-report.js'
import { pruneCampaignRecipients } from './campaign-retention.js'
import {
  afterQuietHours,
  type CampaignSettings,
  capBoundary,
  capTime,
  dispatchCampaigns,
  dueSlot,
  pickVariant,
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

  it('evaluates a cron at the slot given, not at the minute the job happens to run', () => {
    const daily = { schedule_cron: '0 10 * * *', run_at: null }
    const tz = 'Asia/Shanghai'
    expect(dueSlot(daily, new Date('2026-12-03T02:01:05Z'), tz)).toBeNull()
    expect(dueSlot(daily, new Date('2026-12-03T02:00:00.200Z'), tz)).toEqual(
      new Date('2026-12-03T02:00:00Z'),
    )
    // a one-shot is due once its time has passed, whatever the slot
    const once = { schedule_cron: null, run_at: new Date('2026-12-03T02:00:30Z') }
    expect(
      dueSlot(once, new Date('2026-12-03T02:00:00Z'), tz, new Date('2026-12-03T02:01:00Z')),
    ).toEqual(once.run_at)
  })

  it('counts a run that is later than the slack at the minute it runs in (catch-up, resume)', () => {
    const s = { capSlackMinutes: 30 }
    const slot = new Date('2026-12-01T02:00:00Z')
    // a few ms or minutes late: the slot
    expect(capTime(slot, new Date('2026-12-01T02:01:05Z'), s)).toEqual(slot)
    // yesterday's 10:00 caught up at 09:59 today: counts as 09:59, so today's 10:00 slot is capped
    const late = capTime(slot, new Date('2026-12-02T01:59:30Z'), s)
    expect(late).toEqual(new Date('2026-12-02T01:59:00Z'))
    const today = new Date('2026-12-02T02:00:00Z')
    expect(late > capBoundary(today, { capHours: 24, ...s })!).toBe(true)
  })

  it('caps by slot with slack, and refuses a slack that swallows the cap', () => {
    const slot = new Date('2026-12-02T02:00:00Z')
    expect(capBoundary(slot, { capHours: 24, capSlackMinutes: 30 })).toEqual(
      new Date('2026-12-01T02:30:00Z'),
    )
    expect(capBoundary(slot, { capHours: 0, capSlackMinutes: 30 })).toBeNull()
    const config = loadConfig({})
    expect(config.campaigns).toMatchObject({ capSlackMinutes: 30, recipientsRetentionDays: 180 })
    expect(() => loadConfig({ CAMPAIGN_CAP_HOURS: '1', CAMPAIGN_CAP_SLACK_MINUTES: '60' })).toThrow(
      /CAMPAIGN_CAP_SLACK_MINUTES: must be less than CAMPAIGN_CAP_HOURS × 60 \(60\)/,
    )
    expect(loadConfig({ CAMPAIGN_CAP_HOURS: '0' }).campaigns.capHours).toBe(0)
    expect(() => loadConfig({ CAMPAIGN_RECIPIENTS_RETENTION_DAYS: '30' })).toThrow(
      /CAMPAIGN_RECIPIENTS_RETENTION_DAYS: must be at least 61/,
    )
  })
})

forEachDatabase('campaigns', (get, dbName) => {
  const appid = SAFE_ACCOUNT.appid
  const clock = { at: new Date('2026-11-25T02:00:00Z'), now: () => clock.at } // 10:00 Shanghai
  const settings: CampaignSettings = {
    timeZone: 'Asia/Shanghai',
    capHours: 24,
    capSlackMinutes: 30,
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
  const dispatch = (o: Partial<Parameters<typeof dispatchCampaigns>[1]> = {}) =>
    dispatchCampaigns(get().db, { now: clock.now(), slot: clock.now(), settings, t, ...o })
  const member = async (
    openid: string,
    { segment = 'active', ...fields }: Record<string, unknown> & { segment?: Segment } = {},
  ) => {
    const row = await get()
      .db.insertInto('members')
      .values({
        appid,
        openid,
        subscribed: true,
        first_seen_at: new Date('2026-10-01T00:00:00Z'),
        last_active_at: new Date('2026-11-20T00:00:00Z'),
        ...fields,
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    await placeInSegment(get().db, appid, [row.id], segment)
    return row
  }
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
    // the re-engagement strategies: one journey per segment (paused), created once
    const templates = { new: template('N'), at_risk: template('R'), loyal: template('L') }
    const strategies = await admin('POST', '/campaigns/strategies', { templates })
    expect(strategies.status).toBe(201)
    const made = strategies.json.created as { id: number; segment: string; status: string }[]
    expect(made.map((x) => [x.segment, x.status])).toEqual([
      ['new', 'paused'],
      ['at_risk', 'paused'],
      ['loyal', 'paused'],
    ])
    const again = await admin('POST', '/campaigns/strategies', { templates })
    expect(again.json.created).toEqual([])
    // journeys in the operator API: list, switch on and off, report
    const listed = await admin('GET', '/journeys')
    expect((listed.json.journeys as { key: string }[]).map((j) => j.key)).toEqual([
      'welcome',
      'recall',
      'vip',
    ])
    const recall = made[1]!.id
    const on = await admin('POST', `/journeys/${recall}/activate`)
    expect([on.status, on.json.status]).toEqual([200, 'active'])
    expect((await admin('POST', `/journeys/${recall}/activate`)).status).toBe(409)
    expect((await admin('POST', `/journeys/${recall}/pause`)).json.status).toBe('paused')
    const report = await admin('GET', `/journeys/${recall}/report`)
    expect(report.json).toMatchObject({
      journey: { key: 'recall', segment: 'at_risk' },
      enrollments: { started: 0 },
      steps: [{ key: 'offer', audience: 0, converted: 0 }],
    })
    expect((await admin('GET', '/journeys/999999/report')).status).toBe(404)
    expect((await admin('GET', '/journeys/x/report')).status).toBe(404)
  })

  it('checks strategy templates as campaign templates (every line break), and will not switch on a journey whose step WeChat would refuse', async () => {
    const ok = template('S')
    const multiline = {
      template_id: 'TPL_RECALL',
      data: { first: { value: '第一行\n第二行，这个字段一共超过了二十个字的限制哦' } },
    }
    const broken = (value: string) => ({ template_id: 'TPL_RECALL', data: { thing1: { value } } })
    const journeysBefore = (await admin('GET', '/journeys')).json
    const refused = await admin('POST', '/campaigns/strategies', {
      templates: { new: ok, at_risk: multiline, loyal: ok },
    })
    expect(refused.status).toBe(400)
    expect(refused.json.code).toBe('BAD_REQUEST')
    expect(String(refused.json.message)).toMatch(/^templates\.at_risk\.data\.first: /)
    for (const value of ['a\rb', 'a\u2028b', 'a\u2029b', 'a\u0085b']) {
      const r = await admin('POST', '/campaigns/strategies', {
        templates: { new: ok, at_risk: ok, loyal: broken(value) },
      })
      expect([r.status, r.json.message], JSON.stringify(value)).toEqual([
        400,
        expect.stringMatching(/^templates\.loyal\.data\.thing1\.value: no line breaks/),
      ])
      const campaign = await admin('POST', '/campaigns', {
        name: 'x',
        audience: {},
        template: broken(value),
        schedule: { cron: '0 10 * * *' },
      })
      expect([campaign.status, campaign.json.message], JSON.stringify(value)).toEqual([
        400,
        expect.stringMatching(/^variants\.0\.template\.data\.thing1\.value: no line breaks/),
      ])
    }
    expect((await admin('GET', '/journeys')).json).toEqual(journeysBefore)
    // a journey stored with such a template (before templates were checked) stays off
    const now = clock.now()
    const step = { key: 'offer', delayHours: 0, channel: 'template', cap: true, goal: 'active' }
    const legacy = await get()
      .db.insertInto('journeys')
      .values({
        appid,
        key: `legacy-${dbName}`,
        name: 'legacy recall',
        segment: 'at_risk',
        status: 'paused',
        steps: JSON.stringify([{ ...step, template: multiline }]),
        created_at: now,
        updated_at: now,
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    const on = await admin('POST', `/journeys/${legacy.id}/activate`)
    expect([on.status, on.json.code]).toEqual([400, 'BAD_REQUEST'])
    expect(String(on.json.message)).toMatch(/^steps\.0\.template\.data\.first: /)
    const stored = await get()
      .db.selectFrom('journeys')
      .select('status')
      .where('id', '=', legacy.id)
      .executeTakeFirstOrThrow()
    expect(stored.status).toBe('paused')
  })

  it('sends an A/B campaign to its segment once, honouring opt-out, reachability, cap and quiet hours, and reports it', async () => {
    const ids: number[] = []
    for (let i = 0; i < 40; i++)
      ids.push((await member(`o_ab_${dbName}_${i}`, { points_balance: i })).id)
    await member(`o_ab_${dbName}_optout`, { marketing_opt_out: true })
    await member(`o_ab_${dbName}_left`, { subscribed: false })
    await member(`o_ab_${dbName}_capped`, { last_campaign_at: new Date('2026-11-25T00:00:00Z') })
    await member(`o_ab_${dbName}_dormant`, { segment: 'dormant' })
    // made and scheduled at 22:50 in Shanghai for 23:00 (a time that has passed is refused)
    clock.at = new Date('2026-11-25T14:50:00Z')
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
    expect((await admin('POST', `/campaigns/${id}/schedule`)).status).toBe(200)
    // 23:30 in Shanghai: due, inside quiet hours
    clock.at = new Date('2026-11-25T15:30:00Z')
    const [first, second] = await Promise.all([dispatch(), dispatch()])
    expect(first.enqueued + second.enqueued).toBe(40)
    expect(await dispatch()).toEqual({ runs: 0, enqueued: 0 }) // its one run is enqueued
    // quiet until 08:00
    const before = wx.sentCount()
    await drain()
    expect(wx.sentCount()).toBe(before)
    // its pushes queued, the one-shot runs on (it can be paused or finished); it ends with them
    const status = () =>
      get()
        .db.selectFrom('campaigns')
        .select('status')
        .where('id', '=', id)
        .executeTakeFirstOrThrow()
    expect(await status()).toEqual({ status: 'running' })
    clock.at = new Date('2026-11-26T00:00:00Z')
    await drain()
    expect(await dispatch()).toEqual({ runs: 0, enqueued: 0 })
    expect(await status()).toEqual({ status: 'finished' })
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
    // a tag WeChat does not know is the caller's mistake: a 400 naming WeChat's errcode
    const unknownTag = await admin('POST', '/tags/999/members', { openids: [`o_tag_${dbName}_1`] })
    expect(unknownTag.status).toBe(400)
    expect(unknownTag.json).toMatchObject({
      code: 'WECHAT_REFUSED',
      errcode: 45159,
      errmsg: 'invalid tag id',
    })
    expect(unknownTag.json.message).toContain('45159 invalid tag id')
    // WeChat failing on its side (or the account lacking the permission) stays a 502
    wx.fault('tags.batchtagging', { errcode: 48001, errmsg: 'api unauthorized' })
    const upstream = await admin('POST', '/tags/999/members', { openids: [`o_tag_${dbName}_1`] })
    expect(upstream.status).toBe(502)
    expect(upstream.json.code).toBe('WECHAT_ERROR')
    expect(await get().db.selectFrom('member_tags').selectAll().execute()).toEqual([])
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

  // An audience of its own: the members of a group nobody else is in.
  const groupAudience = async (name: string, n: number, fields: Record<string, unknown> = {}) => {
    const chatId = `wr-${name}-${dbName}`
    const ids: number[] = []
    for (let i = 0; i < n; i++) {
      const { id } = await member(`o_${name}_${dbName}_${i}`, fields)
      await seenInGroup(get().db, {
        channel: 'wecom_customer',
        chatId,
        memberId: id,
        now: new Date(),
      })
      ids.push(id)
    }
    return { audience: { group: { channel: 'wecom_customer', chatId } }, ids }
  }
  const outboxOf = (id: number) =>
    get()
      .db.selectFrom('push_outbox')
      .select(['openid', 'status', 'lane'])
      .where('source', 'like', `campaign:${id}:%`)
      .orderBy('openid')
      .execute()
  const runOf = (id: number) =>
    get()
      .db.selectFrom('campaign_runs')
      .select(['status', 'cursor'])
      .where('campaign_id', '=', id)
      .executeTakeFirstOrThrow()
  const launch = async (body: Record<string, unknown>) => {
    const created = await admin('POST', '/campaigns', {
      ...(body.variants ? {} : { template: template('X') }),
      ...body,
    })
    expect(created.status, JSON.stringify(created.json)).toBe(201)
    const id = created.json.id as number
    expect((await admin('POST', `/campaigns/${id}/schedule`)).status).toBe(200)
    return id
  }

  it('caps by slot: a daily campaign reaches its members every day, whenever in the minute its run starts', async () => {
    const { audience } = await groupAudience('daily', 5)
    const id = await launch({ name: '每日', audience, schedule: { cron: '0 10 * * *' } })
    const run = (iso: string, slot = iso) =>
      dispatch({ now: new Date(iso), slot: new Date(slot) }).then((r) => r.enqueued)
    expect(await run('2026-12-01T02:00:00.500Z')).toBe(5) // 10:00:00.500 in Shanghai
    expect(await run('2026-12-02T02:00:00.200Z')).toBe(5) // 300 ms earlier in the minute
    // the runner catching up the 10:00 slot at 10:01:05
    expect(await run('2026-12-03T02:01:05Z', '2026-12-03T02:00:00Z')).toBe(5)
    expect(await run('2026-12-03T02:02:00Z')).toBe(0) // not due at 10:02
    expect((await admin('POST', `/campaigns/${id}/finish`)).status).toBe(200)
    // within the cap less its slack (23 h 30 min): a one-shot 23 h 20 min later is capped, one
    // 23 h 45 min later is not
    const capped = await launch({
      name: '23h20',
      audience,
      schedule: { at: '2026-12-04T01:20:00Z' },
    })
    expect(await run('2026-12-04T01:20:00Z')).toBe(0)
    const report = await campaignReport(get().db, capped)
    expect(report.variants[0]!.skipped.capped).toBe(5)
    await launch({ name: '23h45', audience, schedule: { at: '2026-12-04T01:45:00Z' } })
    expect(await run('2026-12-04T01:45:00Z')).toBe(5)
  })

  it('pauses within one batch: queued pushes are held, and resuming releases them and continues the run', async () => {
    const { audience, ids } = await groupAudience('pause', 6)
    clock.at = new Date('2026-12-10T02:00:00Z')
    const id = await launch({ name: '暂停', audience, schedule: { at: '2026-12-10T02:00:00Z' } })
    let paused: Record<string, unknown> | undefined
    const first = await dispatch({
      batchSize: 2,
      onBatch: async () => {
        paused ??= (await admin('POST', `/campaigns/${id}/pause`)).json
      },
    })
    expect(first.enqueued).toBe(2)
    expect(paused).toMatchObject({ status: 'paused', outbox: { held: 2 } })
    expect(await outboxOf(id)).toEqual([
      { openid: `o_pause_${dbName}_0`, status: 'held', lane: 2 },
      { openid: `o_pause_${dbName}_1`, status: 'held', lane: 2 },
    ])
    expect(await runOf(id)).toEqual({ status: 'enqueuing', cursor: ids[1] })
    await drain()
    const sentTo = () => wx.sent.filter((s) => s.touser.startsWith(`o_pause_${dbName}_`))
    expect(sentTo()).toHaveLength(0)
    clock.at = new Date('2026-12-10T02:05:00Z')
    expect(await dispatch()).toEqual({ runs: 0, enqueued: 0 })

    const resumed = await admin('POST', `/campaigns/${id}/resume`)
    expect(resumed.json).toMatchObject({ status: 'running', outbox: { released: 2 } })
    expect(await dispatch()).toEqual({ runs: 1, enqueued: 4 })
    expect((await outboxOf(id)).map((r) => r.status)).toEqual(Array(6).fill('pending'))
    await drain()
    expect(sentTo()).toHaveLength(6)
    expect(new Set(sentTo().map((s) => s.touser)).size).toBe(6)
    expect(await runOf(id)).toMatchObject({ status: 'enqueued', cursor: ids[5] })
    expect(await dispatch()).toEqual({ runs: 0, enqueued: 0 }) // its pushes settled: it ends
    expect((await admin('GET', `/campaigns/${id}/report`)).json.campaign).toMatchObject({
      status: 'finished',
    })
  })

  it('a one-shot whose pushes wait for the quiet hours can still be paused and finished: finish cancels them', async () => {
    const { audience } = await groupAudience('quiet', 4)
    // 23:00 in Shanghai: enqueued, held until 08:00
    clock.at = new Date('2026-12-13T15:00:00Z')
    const id = await launch({ name: '夜里', audience, schedule: { at: '2026-12-13T15:00:00Z' } })
    expect(await dispatch()).toEqual({ runs: 1, enqueued: 4 })
    expect((await runOf(id)).status).toBe('enqueued')
    expect((await admin('GET', `/campaigns/${id}/report`)).json.campaign).toMatchObject({
      status: 'running',
    })
    const paused = await admin('POST', `/campaigns/${id}/pause`)
    expect([paused.status, paused.json]).toMatchObject([
      200,
      { status: 'paused', outbox: { held: 4 } },
    ])
    expect(await dispatch()).toEqual({ runs: 0, enqueued: 0 }) // held: not ended
    const resumed = await admin('POST', `/campaigns/${id}/resume`)
    expect(resumed.json).toMatchObject({ status: 'running', outbox: { released: 4 } })
    expect(await dispatch()).toEqual({ runs: 0, enqueued: 0 }) // sent once: not again
    const finished = await admin('POST', `/campaigns/${id}/finish`)
    expect([finished.status, finished.json]).toMatchObject([
      200,
      { status: 'finished', outbox: { cancelled: 4 }, runsStopped: 0 },
    ])
    clock.at = new Date('2026-12-14T00:00:00Z') // 08:00
    await drain()
    expect(wx.sent.some((s) => s.touser.startsWith(`o_quiet_${dbName}_`))).toBe(false)
    const report = await admin('GET', `/campaigns/${id}/report`)
    expect(report.json.variants).toMatchObject([
      { enqueued: 4, sent: 0, withdrawn: { optedOut: 0, cancelled: 4 }, queued: 0 },
    ])
  })

  it('finishing stops the run within one batch and cancels its queued pushes; the run is never resumed', async () => {
    const { audience } = await groupAudience('finish', 6)
    clock.at = new Date('2026-12-11T02:00:00Z')
    const id = await launch({ name: '停止', audience, schedule: { at: '2026-12-11T02:00:00Z' } })
    let finished: Record<string, unknown> | undefined
    const first = await dispatch({
      batchSize: 2,
      onBatch: async () => {
        finished ??= (await admin('POST', `/campaigns/${id}/finish`)).json
      },
    })
    expect(first.enqueued).toBe(2)
    expect(finished).toMatchObject({
      status: 'finished',
      outbox: { cancelled: 2 },
      runsStopped: 1,
    })
    expect((await outboxOf(id)).map((r) => r.status)).toEqual(['cancelled', 'cancelled'])
    expect((await runOf(id)).status).toBe('stopped')
    clock.at = new Date('2026-12-11T03:00:00Z') // long after the run's lease
    expect(await dispatch()).toEqual({ runs: 0, enqueued: 0 })
    await drain()
    expect(wx.sent.some((s) => s.touser.startsWith(`o_finish_${dbName}_`))).toBe(false)
    expect((await admin('POST', `/campaigns/${id}/pause`)).status).toBe(409)
  })

  it.skipIf(dbName !== 'postgres')(
    'a run that starts while a pause is being committed waits for it and enqueues nothing',
    async () => {
      const { audience } = await groupAudience('race', 3)
      clock.at = new Date('2026-12-12T02:00:00Z')
      const id = await launch({
        name: '并发暂停',
        audience,
        schedule: { at: '2026-12-12T02:00:00Z' },
      })
      const held = await holdTransaction(get().open(), (trx) =>
        moveCampaign(trx, { appid, id, move: 'pause', now: clock.now() }),
      )
      const dispatching = dispatch()
      expect(await stillPending(dispatching)).toBe(true) // waiting for the campaign row
      held.commit()
      expect(await held.done).toMatchObject({ moved: true, status: 'paused' })
      // The run's claim waited for the pause, then found the campaign paused: nothing claimed.
      expect(await dispatching).toEqual({ runs: 0, enqueued: 0 })
      expect(await outboxOf(id)).toEqual([])
      const runs = get().db.selectFrom('campaign_runs').select('slot').where('campaign_id', '=', id)
      expect(await runs.execute()).toEqual([])
    },
  )

  it('marks conversions incrementally: members active since the last mark, inside their window', async () => {
    const { audience, ids } = await groupAudience('conv', 4, {
      last_active_at: new Date('2026-12-01T00:00:00Z'),
    })
    clock.at = new Date('2026-12-20T02:00:00Z')
    const id = await launch({
      name: '转化',
      audience,
      schedule: { at: '2026-12-20T02:00:00Z' },
      conversionDays: 2,
    })
    expect((await dispatch()).enqueued).toBe(4)
    await drain() // sent at 02:00: conversions count from then
    const set = (i: number, fields: Record<string, Date>) =>
      get().db.updateTable('members').set(fields).where('id', '=', ids[i]!).execute()
    const converted = async () =>
      (
        await get()
          .db.selectFrom('campaign_recipients')
          .select(['member_id', 'converted_at'])
          .where('campaign_id', '=', id)
          .orderBy('member_id')
          .execute()
      ).map((r) => r.converted_at?.toISOString() ?? null)
    const mark = (iso: string) => markConversions(get().db, new Date(iso))
    await mark('2026-12-20T02:01:00Z')
    expect(await converted()).toEqual([null, null, null, null])
    await set(0, { last_active_at: new Date('2026-12-20T03:00:00Z') })
    await mark('2026-12-20T03:01:00Z')
    // active at 03:00:30 but committed after the 03:01 mark: the next mark's overlap finds it
    await set(1, { last_active_at: new Date('2026-12-20T03:00:30Z') })
    await set(2, { last_purchased_at: new Date('2026-12-21T00:00:00Z') })
    await mark('2026-12-21T00:01:00Z')
    // after the 2-day window
    await set(3, { last_active_at: new Date('2026-12-23T00:00:00Z') })
    await mark('2026-12-23T00:01:00Z')
    expect(await converted()).toEqual([
      '2026-12-20T03:00:00.000Z',
      '2026-12-20T03:00:30.000Z',
      '2026-12-21T00:00:00.000Z',
      null,
    ])
    expect(await mark('2026-12-23T00:02:00Z')).toBe(0)
    const watermark = await get()
      .db.selectFrom('campaign_watermarks')
      .select('marked_at')
      .where('name', '=', 'conversions')
      .executeTakeFirstOrThrow()
    expect(watermark.marked_at).toEqual(new Date('2026-12-23T00:02:00Z'))
  })

  it('counts a conversion only after a push that was sent: not while it is held, nor for one that failed', async () => {
    const { audience, ids } = await groupAudience('unsent', 4, {
      last_active_at: new Date('2026-12-01T00:00:00Z'),
    })
    // 23:00 in Shanghai: the 4 pushes wait for 08:00
    clock.at = new Date('2026-12-21T15:00:00Z')
    const id = await launch({
      name: '未发送不算',
      audience,
      schedule: { at: '2026-12-21T15:00:00Z' },
      conversionDays: 2,
    })
    expect((await dispatch()).enqueued).toBe(4)
    const set = (i: number, at: string) =>
      get()
        .db.updateTable('members')
        .set({ last_active_at: new Date(at) })
        .where('id', '=', ids[i]!)
        .execute()
    const report = async () =>
      (await campaignReport(get().db, id)).variants.map((v) => ({
        sent: v.sent,
        failed: v.failed,
        converted: v.converted,
        rate: v.conversionRate,
      }))
    // active at 23:30 (积分, a check-in…) while every push is held: nobody received one
    await set(0, '2026-12-21T15:30:00Z')
    expect(await markConversions(get().db, new Date('2026-12-21T15:40:00Z'))).toBe(0)
    expect(await report()).toEqual([{ sent: 0, failed: 0, converted: 0, rate: 0 }])
    // 08:00: three are sent, WeChat refuses one for good
    clock.at = new Date('2026-12-22T00:00:00Z')
    wx.fault('template.send', { errcode: 40037, errmsg: 'invalid template_id' })
    await drain()
    const failed = await get()
      .db.selectFrom('push_outbox')
      .innerJoin('members', 'members.openid', 'push_outbox.openid')
      .select('members.id')
      .where('push_outbox.source', 'like', `campaign:${id}:%`)
      .where('push_outbox.status', '=', 'failed')
      .executeTakeFirstOrThrow()
    const failedAt = ids.indexOf(failed.id)
    // everyone is active after 08:00: the three who received it convert, the failed one does not
    for (let i = 0; i < 4; i++) await set(i, '2026-12-22T01:00:00Z')
    expect(await markConversions(get().db, new Date('2026-12-22T01:10:00Z'))).toBe(3)
    expect(await report()).toEqual([{ sent: 3, failed: 1, converted: 3, rate: 0.75 }])
    const converted = await get()
      .db.selectFrom('campaign_recipients')
      .select(['member_id', 'converted_at'])
      .where('campaign_id', '=', id)
      .where('converted_at', 'is not', null)
      .execute()
    expect(converted.map((r) => r.member_id).sort()).toEqual(
      ids.filter((_, i) => i !== failedAt).sort(),
    )
  })

  it('does not count a 退订 answering the push as a conversion, even when the mark comes between its receive and its opt-out; acting again converts', async () => {
    const { audience, ids } = await groupAudience('quit', 4, {
      last_active_at: new Date('2026-12-01T00:00:00Z'),
    })
    clock.at = new Date('2026-12-25T02:00:00Z')
    const id = await launch({
      name: '退订不算转化',
      audience,
      schedule: { at: '2026-12-25T02:00:00Z' },
      conversionDays: 3,
    })
    expect((await dispatch()).enqueued).toBe(4)
    await drain()
    // the bot's 签到 and 退订 through the real webhook; `between` runs after a push's receive
    // (which moves last_active_at) and before its handler (which opts out)
    let between = async () => {}
    class GappedRouter extends Router {
      override command(spec: CommandSpec, handler: Handler) {
        return super.command(spec, async (ctx) => {
          await between()
          return handler(ctx)
        })
      }
    }
    const router = new GappedRouter()
    for (const family of [checkin, preferences]) family.register(router)
    const server = await startServer(get().db, { clock, router })
    const mark = (at: Date) => markConversions(get().db, at)
    const minutes = (at: Date, n: number) => new Date(at.getTime() + n * 60_000)
    const converted = async () =>
      (
        await get()
          .db.selectFrom('campaign_recipients')
          .select(['member_id', 'converted_at'])
          .where('campaign_id', '=', id)
          .orderBy('member_id')
          .execute()
      ).map((r) => r.converted_at?.toISOString() ?? null)
    try {
      const chat = server.pusher()
      const say = async (i: number, text: string) =>
        (await chat.text(`o_quit_${dbName}_${i}`, text)).reply!.Content
      // an hour after the push: 0 and 1 answer 退订 / TD, 2 checks in
      const t1 = new Date('2026-12-25T03:00:00Z')
      clock.at = t1
      expect(await say(0, '退订')).toMatch(/^已退订活动推送/)
      expect(await say(1, 'TD')).toMatch(/^已退订活动推送/)
      await say(2, '签到')
      expect(await mark(minutes(t1, 2))).toBe(1)
      // 2 converted before opting out: stays converted, at its check-in
      clock.at = minutes(t1, 10)
      expect(await say(2, '退订')).toMatch(/^已退订活动推送/)
      // 3's 退订 with the minute's mark between its receive and its opt-out
      const t3 = minutes(t1, 20)
      clock.at = t3
      let markedBetween: number | undefined
      between = async () => {
        markedBetween = await mark(new Date(t3.getTime() + 1000))
      }
      expect(await say(3, '退订')).toMatch(/^已退订活动推送/)
      between = async () => {}
      expect(markedBetween).toBe(0)
      expect(await mark(minutes(t3, 2))).toBe(0)
      // 1 comes back two hours later and checks in: converted then
      const t2 = new Date('2026-12-25T05:00:00Z')
      clock.at = t2
      await say(1, '签到')
      expect(await mark(minutes(t2, 1))).toBe(1)
      expect(await mark(minutes(t2, 10))).toBe(0)
    } finally {
      await server.close()
    }
    expect(await converted()).toEqual([
      null,
      '2026-12-25T05:00:00.000Z',
      '2026-12-25T03:00:00.000Z',
      null,
    ])
    const optedOut = await get()
      .db.selectFrom('members')
      .select(['marketing_opt_out', 'marketing_opted_out_at'])
      .where('id', 'in', ids)
      .orderBy('id')
      .execute()
    expect(optedOut).toEqual([
      { marketing_opt_out: true, marketing_opted_out_at: new Date('2026-12-25T03:00:00Z') },
      { marketing_opt_out: true, marketing_opted_out_at: new Date('2026-12-25T03:00:00Z') },
      { marketing_opt_out: true, marketing_opted_out_at: new Date('2026-12-25T03:10:00Z') },
      { marketing_opt_out: true, marketing_opted_out_at: new Date('2026-12-25T03:20:00Z') },
    ])
    const report = await campaignReport(get().db, id)
    expect(report.variants.map((v) => [v.enqueued, v.converted])).toEqual([[4, 2]])
  })

  it('prunes old recipients into rollups: the report is the same before and after', async () => {
    const { audience, ids } = await groupAudience('prune', 8)
    await get()
      .db.updateTable('members')
      .set({ marketing_opt_out: true })
      .where('id', '=', ids[6]!)
      .execute()
    // capped on the first day only
    await get()
      .db.updateTable('members')
      .set({ last_campaign_at: new Date('2027-01-04T20:00:00Z') })
      .where('id', '=', ids[7]!)
      .execute()
    const id = await launch({
      name: '留存',
      audience,
      variants: [
        { key: 'A', weight: 50, template: template('A') },
        { key: 'B', weight: 50, template: template('B') },
      ],
      schedule: { cron: '0 10 * * *' },
      conversionDays: 3,
    })
    for (const day of ['2027-01-05', '2027-01-06']) {
      clock.at = new Date(`${day}T02:00:00Z`)
      await dispatch()
      if (day === '2027-01-06') {
        // once the second run enqueued them: member 5 opts out (退订), so its push is withdrawn
        // when it is sent; member 4's waits for a retry, so finishing the campaign cancels it
        await get()
          .db.updateTable('members')
          .set({ marketing_opt_out: true })
          .where('id', '=', ids[5]!)
          .execute()
        await get()
          .db.updateTable('push_outbox')
          .set({ next_attempt_at: new Date('2027-01-06T03:00:00Z') })
          .where('source', '=', `campaign:${id}:2027-01-06T02:00:00.000Z`)
          .where('openid', '=', `o_prune_${dbName}_4`)
          .execute()
      }
      await drain()
    }
    // a failure, an unknown outcome, a delivery receipt, a click, a conversion — on the first
    // day's run
    const day1 = (openid: string) =>
      get()
        .db.updateTable('push_outbox')
        .where('source', '=', `campaign:${id}:2027-01-05T02:00:00.000Z`)
        .where('openid', '=', openid)
    await day1(`o_prune_${dbName}_0`).set({ status: 'failed' }).execute()
    await day1(`o_prune_${dbName}_4`)
      .set({ status: 'unknown', errmsg: 'outcome unknown, not sent again: test' })
      .execute()
    await day1(`o_prune_${dbName}_1`).set({ delivery: 'success' }).execute()
    const link = await get()
      .db.selectFrom('campaign_recipients')
      .select('link_code')
      .where('campaign_id', '=', id)
      .where('member_id', '=', ids[2]!)
      .where('slot', '=', new Date('2027-01-05T02:00:00Z'))
      .executeTakeFirstOrThrow()
    expect((await app().request(`/r/${link.link_code}`)).status).toBe(302)
    await get()
      .db.updateTable('members')
      .set({ last_active_at: new Date('2027-01-05T05:00:00Z') })
      .where('id', '=', ids[3]!)
      .execute()
    await markConversions(get().db, new Date('2027-01-05T05:01:00Z'))
    expect((await admin('POST', `/campaigns/${id}/finish`)).status).toBe(200)

    const before = await campaignReport(get().db, id)
    type Count = 'audience' | 'enqueued' | 'sent' | 'failed' | 'unknown' | 'queued'
    const total = (k: Count | 'delivered' | 'clicked' | 'converted') =>
      before.variants.reduce((n, v) => n + v[k], 0)
    const withdrawn = (k: 'optedOut' | 'cancelled') =>
      before.variants.reduce((n, v) => n + v.withdrawn[k], 0)
    // every enqueued recipient in one outcome: 13 enqueued = 9 sent + 1 failed + 1 opted out
    // since its run + 1 cancelled by the finish + 1 unknown, none still queued
    expect([total('audience'), total('enqueued'), total('sent'), total('failed')]).toEqual([
      16, 13, 9, 1,
    ])
    expect([withdrawn('optedOut'), withdrawn('cancelled'), total('unknown')]).toEqual([1, 1, 1])
    expect(before.variants.map((v) => v.queued)).toEqual([0, 0])
    expect([total('delivered'), total('clicked'), total('converted')]).toEqual([1, 1, 1])
    // every campaign of the suite so far: the same reports after pruning
    const reports = async () => {
      const all = await get().db.selectFrom('campaigns').select('id').orderBy('id').execute()
      return Promise.all(all.map((c) => campaignReport(get().db, c.id)))
    }
    const everyBefore = await reports()
    const left = async () =>
      (
        await get()
          .db.selectFrom('campaign_recipients')
          .select(['slot', 'member_id'])
          .where('campaign_id', '=', id)
          .execute()
      ).map((r) => r.slot.toISOString())
    // 180 days after the second day less 12 h: only the first day's run is old enough
    const prune = (iso: string) =>
      pruneCampaignRecipients(get().db, { now: new Date(iso), retentionDays: 180, batchSize: 3 })
    const first = await prune('2027-07-04T14:00:00Z')
    expect(first.recipients).toBeGreaterThanOrEqual(8)
    expect(await left()).toEqual(Array(8).fill('2027-01-06T02:00:00.000Z'))
    expect(await campaignReport(get().db, id)).toEqual(before)
    expect(await prune('2027-07-04T14:00:00Z')).toEqual({ runs: 0, recipients: 0 })
    expect(await prune('2028-01-01T00:00:00Z')).toMatchObject({ runs: 1, recipients: 8 })
    expect(await left()).toEqual([])
    expect(await campaignReport(get().db, id)).toEqual(before)
    expect(await reports()).toEqual(everyBefore)
    // a cron run's row goes with its recipients
    const runs = await get()
      .db.selectFrom('campaign_runs')
      .select('slot')
      .where('campaign_id', '=', id)
      .execute()
    expect(runs).toEqual([])
    // and the campaign's finished outbox items with them (the report kept their counts)
    const items = await get()
      .db.selectFrom('push_outbox')
      .select('status')
      .where('source', 'like', `campaign:${id}:%`)
      .where('status', 'in', ['sent', 'failed', 'skipped', 'cancelled', 'unknown'])
      .execute()
    expect(items).toEqual([])
    // the tracked link of a pruned recipient no longer redirects
    expect((await app().request(`/r/${link.link_code}`)).status).toBe(404)
  })
})

forEachDatabase('migration 0064: a rollup counts every enqueued recipient', (get) => {
  it('counts what an older rollup held apart from sent and failed as unknown', async () => {
    const db = get().db
    const migrating = db as unknown as Kysely<unknown>
    await m0064.down(migrating)
    const slot = new Date('2026-01-05T02:00:00Z')
    const { id } = await db
      .insertInto('campaigns')
      .values({
        appid: SAFE_ACCOUNT.appid,
        name: '旧汇总',
        status: 'finished',
        audience: '{}',
        variants: '[]',
        schedule_cron: null,
        run_at: slot,
        created_at: slot,
        updated_at: slot,
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    // as pruning wrote it before: 3 of the 10 enqueued were withdrawn or unknown, counted nowhere
    await sql`insert into campaign_rollups (campaign_id, slot, variant, audience, enqueued, capped,
        opted_out, unreachable, sent, failed, delivered, clicked, converted)
      values (${id}, ${slot}, 'A', 12, 10, 1, 1, 0, 6, 1, 5, 2, 1)`.execute(db)
    await m0064.up(migrating)
    const [a] = (await campaignReport(db, id)).variants
    expect(a).toMatchObject({
      enqueued: 10,
      sent: 6,
      failed: 1,
      withdrawn: { optedOut: 0, cancelled: 0 },
      unknown: 3,
      queued: 0,
    })
  })
})
