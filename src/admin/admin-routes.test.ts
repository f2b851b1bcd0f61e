import type { Kysely } from 'kysely'
import { expect, it } from 'vitest'
import { createRouter } from '../../handlers/index.js'
import * as m0060 from '../../migrations/0060_admin_ledger_keys.js'
import { manualClock } from '../../test/console-kit.js'
import { forEachDatabase } from '../../test/databases.js'
import { SAFE_ACCOUNT, testConfig } from '../../test/server.js'
import { createApp } from '../app.js'
import { redeem } from '../community/rewards.js'
import { silentLogger } from '../logger.js'
import { REFUSAL_AUDIT_RATE } from './admin-auth.js'

const TOKEN = 'operator-token-0123456789'
const base = `/admin/api/accounts/${SAFE_ACCOUNT.appid}`

forEachDatabase('operator API', (get) => {
  const app = () =>
    createApp({
      config: testConfig({ ADMIN_TOKEN: TOKEN }),
      db: get().db,
      router: createRouter(),
      logger: silentLogger,
    })
  const call = (method: string, path: string, body?: unknown, token = TOKEN) =>
    app().request(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    })
  const seedMember = async (openid: string) =>
    get()
      .db.insertInto('members')
      .values({
        appid: SAFE_ACCOUNT.appid,
        openid,
        first_seen_at: new Date(),
        last_active_at: new Date(),
      })
      .returning('id')
      .executeTakeFirstOrThrow()

  it('refuses missing or wrong tokens, and is off without ADMIN_TOKEN', async () => {
    expect((await call('GET', '/rules', undefined, 'wrong-token-xxxxxxxxxxxx')).status).toBe(401)
    expect((await app().request(`${base}/rules`)).status).toBe(401)
    const off = createApp({
      config: testConfig(),
      db: get().db,
      router: createRouter(),
      logger: silentLogger,
    })
    const res = await off.request(`${base}/rules`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    })
    expect(res.status).toBe(404)
    expect(await res.json()).toEqual({
      code: 'NOT_FOUND',
      message: 'operator API disabled: set ADMIN_TOKEN',
    })
    const other = await app().request('/admin/api/accounts/wx9999999999999999/rules', {
      headers: { authorization: `Bearer ${TOKEN}` },
    })
    expect(other.status).toBe(404)
    expect((await other.json()).message).toBe('unknown account')
  })

  it('audits a burst of unauthenticated calls per address, then one a minute; authenticated ones always', async () => {
    const db = get().db
    const clock = manualClock(new Date('2026-11-20T02:00:00Z'))
    const peered = createApp({
      config: testConfig({ ADMIN_TOKEN: TOKEN }),
      db,
      router: createRouter(),
      logger: silentLogger,
      clock,
      clientAddress: (c) => c.req.header('x-test-peer'),
    })
    const from = (peer: string, path: string, token?: string) =>
      peered.request(`${base}${path}`, {
        method: 'POST',
        headers: { 'x-test-peer': peer, ...(token ? { authorization: `Bearer ${token}` } : {}) },
      })
    const refusals = async (peer: string, actor: string) =>
      Number(
        (
          await db
            .selectFrom('audit_log')
            .select((eb) => eb.fn.countAll<string>().as('n'))
            .where('action', '=', 'refused')
            .where('actor', '=', actor)
            .where('client_address', '=', peer)
            .executeTakeFirstOrThrow()
        ).n,
      )
    const flood = await Promise.all(
      Array.from({ length: 300 }, (_, i) => from('198.51.100.7', `/${'x'.repeat(250)}${i}`)),
    )
    // Every one is still answered 401, the same way.
    expect(new Set(flood.map((r) => r.status))).toEqual(new Set([401]))
    expect(new Set(await Promise.all(flood.map((r) => r.text())))).toEqual(
      new Set([JSON.stringify({ code: 'UNAUTHORIZED', message: 'missing or wrong bearer token' })]),
    )
    expect(await refusals('198.51.100.7', 'anonymous')).toBe(REFUSAL_AUDIT_RATE.burst)
    // Another address is audited; the first gets one more a minute later.
    expect((await from('198.51.100.8', '/rules')).status).toBe(401)
    expect(await refusals('198.51.100.8', 'anonymous')).toBe(1)
    clock.advance(60_000)
    expect((await from('198.51.100.7', '/rules')).status).toBe(401)
    expect((await from('198.51.100.7', '/rules')).status).toBe(401)
    expect(await refusals('198.51.100.7', 'anonymous')).toBe(REFUSAL_AUDIT_RATE.burst + 1)
    // With the token, from the flooded address: every refusal is audited.
    for (let i = 0; i < 10; i++)
      expect((await from('198.51.100.7', `/nowhere-${i}`, TOKEN)).status).toBe(404)
    expect(await refusals('198.51.100.7', 'operator')).toBe(10)
  })

  it('grants and deducts with a reason, idempotently, never below zero, with an audit trail', async () => {
    await seedMember('o_admin')
    const grant = await call('POST', '/members/o_admin/points', {
      delta: 120,
      reason: '活动奖励',
      idempotencyKey: 'evt-1',
    })
    expect(grant.status).toBe(201)
    expect(await grant.json()).toEqual({ status: 'applied', balance: 120, level: 'bronze' })
    expect(
      await (
        await call('POST', '/members/o_admin/points', {
          delta: 120,
          reason: '活动奖励',
          idempotencyKey: 'evt-1',
        })
      ).json(),
    ).toMatchObject({ status: 'duplicate', balance: 120 })
    const tooMuch = await call('POST', '/members/o_admin/points', {
      delta: -500,
      reason: '违规扣分',
    })
    expect(tooMuch.status).toBe(409)
    expect(await tooMuch.json()).toMatchObject({ code: 'INSUFFICIENT_POINTS', balance: 120 })
    expect(
      (await call('POST', '/members/o_admin/points', { delta: -20, reason: '违规扣分' })).status,
    ).toBe(201)
    const ledger = await (await call('GET', '/members/o_admin/ledger')).json()
    expect(ledger).toMatchObject({ balance: 100, lifetime: 120 })
    expect(
      ledger.entries.map((e: { delta: number; rule: string; reference: string }) => [
        e.delta,
        e.rule,
        e.reference,
      ]),
    ).toEqual([
      [-20, 'deduct', '违规扣分'],
      [120, 'grant', '活动奖励'],
    ])
    const log = await get()
      .db.selectFrom('audit_log')
      .select(['action', 'target', 'details'])
      .where('target', '=', 'o_admin')
      .orderBy('id')
      .execute()
    expect(log.map((l) => l.action)).toEqual(['points.grant', 'points.deduct'])
    expect(JSON.parse(log[0]!.details)).toMatchObject({ delta: 120, reason: '活动奖励' })
    // the member is told, once per change, through the outbox (customer-service text)
    const notices = await get()
      .db.selectFrom('push_outbox')
      .select(['source', 'kind', 'payload'])
      .where('openid', '=', 'o_admin')
      .orderBy('id')
      .execute()
    expect(notices.map((n) => [n.source, n.kind])).toEqual([
      ['points:admin:evt-1', 'custom'],
      [expect.stringMatching(/^points:admin:/), 'custom'],
    ])
    expect(JSON.parse(notices[0]!.payload as string)).toEqual({
      msgtype: 'text',
      text: { content: '积分变动 +120（活动奖励），当前积分 120' },
    })
    const levelUp = await call('POST', '/members/o_admin/points', {
      delta: 900,
      reason: '年度之星',
    })
    expect(await levelUp.json()).toMatchObject({ balance: 1000, level: 'silver' })
    const last = await get()
      .db.selectFrom('push_outbox')
      .select('payload')
      .where('openid', '=', 'o_admin')
      .orderBy('id', 'desc')
      .executeTakeFirstOrThrow()
    expect(JSON.parse(last.payload as string).text.content).toBe(
      '积分变动 +900（年度之星），当前积分 1000\n恭喜升级为 银牌！赚取积分 2 倍 🎉',
    )
    expect((await call('POST', '/members/o_nobody/points', { delta: 1, reason: 'x' })).status).toBe(
      404,
    )
  })

  it('validates JSON and names the field', async () => {
    await seedMember('o_val')
    const cases: [unknown, string][] = [
      ['{not json', 'body must be JSON'],
      [{ delta: 1.5, reason: 'x' }, 'delta: must be a whole number'],
      [{ delta: 0, reason: 'x' }, 'delta: must not be 0'],
      [{ delta: 5 }, 'reason: is required'],
      [{ delta: 5, reason: 'x', extra: true }, 'extra: is not a known field'],
      [{ delta: '5', reason: 7 }, 'delta: must be a number; reason: must be a string'],
    ]
    for (const [body, message] of cases) {
      const res = await call('POST', '/members/o_val/points', body)
      expect(res.status, message).toBe(400)
      expect((await res.json()).message).toBe(message)
    }
  })

  it('manages rules and rewards, and cancels redemptions', async () => {
    const rules = await (await call('GET', '/rules')).json()
    expect(rules.rules.find((r: { rule: string }) => r.rule === 'checkin')).toEqual({
      rule: 'checkin',
      points: 5,
      capCount: 1,
      capPeriod: 'day',
      enabled: true,
      overridden: false,
    })
    expect(
      (await call('PUT', '/rules/checkin', { points: 8, capCount: 1, capPeriod: 'day' })).status,
    ).toBe(200)
    expect((await call('PUT', '/rules/checkin', { points: 8, capCount: 1 })).status).toBe(400)
    // A 0-point rule made every award of it a zero ledger delta the ledger refuses: the member's
    // check-in failed with an apology. Turning a rule off is `enabled: false`.
    expect((await call('PUT', '/rules/checkin', { points: 0 })).status).toBe(400)
    const after = await (await call('GET', '/rules')).json()
    expect(after.rules.find((r: { rule: string }) => r.rule === 'checkin')).toMatchObject({
      points: 8,
      overridden: true,
    })

    expect((await (await call('GET', '/rewards')).json()).rewards).toHaveLength(4)
    const created = await call('POST', '/rewards', {
      code: 9,
      name: '限定周边',
      cost: 50,
      stock: 2,
    })
    expect(created.status).toBe(201)
    expect((await call('POST', '/rewards', { code: 9, name: 'dup', cost: 1 })).status).toBe(409)
    expect(
      await (await call('PATCH', '/rewards/9', { stock: 5, enabled: true })).json(),
    ).toMatchObject({ code: 9, stock: 5 })
    expect((await call('PATCH', '/rewards/99', { stock: 5 })).status).toBe(404)

    const m = await seedMember('o_cancel')
    await call('POST', '/members/o_cancel/points', { delta: 60, reason: 'seed' })
    const r = await redeem(get().db, {
      appid: SAFE_ACCOUNT.appid,
      memberId: m.id,
      code: 9,
      now: new Date(),
      timeZone: 'Asia/Shanghai',
    })
    if (r.status !== 'redeemed') throw new Error(r.status)
    expect(await (await call('POST', `/redemptions/${r.redemptionId}/cancel`)).json()).toEqual({
      status: 'cancelled',
    })
    expect(await (await call('POST', `/redemptions/${r.redemptionId}/cancel`)).json()).toEqual({
      status: 'already_cancelled',
    })
    expect((await (await call('GET', '/members/o_cancel/ledger')).json()).balance).toBe(60)
    const actions = await get()
      .db.selectFrom('audit_log')
      .select('action')
      .where('appid', '=', SAFE_ACCOUNT.appid)
      .execute()
    expect(actions.map((a) => a.action)).toEqual(
      expect.arrayContaining([
        'rule.update',
        'reward.create',
        'reward.update',
        'redemption.cancel',
      ]),
    )
  })

  it('keeps an operator key out of the internal keys: refund:1 does not block the refund', async () => {
    await call('POST', '/rewards', { code: 19, name: '徽章', cost: 50, stock: 2 })
    const m = await seedMember('o_key')
    await call('POST', '/members/o_key/points', { delta: 60, reason: 'seed' })
    const r = await redeem(get().db, {
      appid: SAFE_ACCOUNT.appid,
      memberId: m.id,
      code: 19,
      now: new Date(),
      timeZone: 'Asia/Shanghai',
    })
    if (r.status !== 'redeemed') throw new Error(r.status)
    expect(r.balance).toBe(10)
    const crm = { delta: 1, reason: 'CRM refund', idempotencyKey: `refund:${r.redemptionId}` }
    expect((await call('POST', '/members/o_key/points', crm)).status).toBe(201)
    // a replay of the operator's key still applies once
    expect(await (await call('POST', '/members/o_key/points', crm)).json()).toMatchObject({
      status: 'duplicate',
      balance: 11,
    })
    expect(await (await call('POST', `/redemptions/${r.redemptionId}/cancel`)).json()).toEqual({
      status: 'cancelled',
    })
    const ledger = await (await call('GET', '/members/o_key/ledger')).json()
    expect(ledger.balance).toBe(61)
    expect(ledger.entries.map((e: { rule: string; delta: number }) => [e.rule, e.delta])).toEqual([
      ['redeem_refund', 50],
      ['grant', 1],
      ['redeem', -50],
      ['grant', 60],
    ])
  })

  it('migration 0060 moves operator keys stored bare under admin:, so replays stay duplicates', async () => {
    const m = await seedMember('o_old_key')
    // as the grants wrote them before: operators' keys bare, generated ones under admin:
    const entry = (rule: string, idempotency_key: string) => ({
      appid: SAFE_ACCOUNT.appid,
      member_id: m.id,
      delta: 5,
      rule,
      idempotency_key,
      reference: 'before 0060',
      balance_after: 5,
      day: '2026-11-20',
      created_at: new Date(),
    })
    const generated = 'admin:0b7c3e1a-5d2f-4c8e-9a6b-1f2e3d4c5b6a'
    await get()
      .db.insertInto('points_ledger')
      .values([
        entry('grant', 'crm-77'),
        entry('deduct', 'refund:999'),
        entry('grant', generated),
        entry('checkin', 'old-checkin-key'),
      ])
      .execute()
    await m0060.up(get().db as unknown as Kysely<unknown>)
    const keys = await get()
      .db.selectFrom('points_ledger')
      .select('idempotency_key')
      .where('member_id', '=', m.id)
      .orderBy('id')
      .execute()
    expect(keys.map((k) => k.idempotency_key)).toEqual([
      'admin:crm-77',
      'admin:refund:999',
      generated,
      'old-checkin-key',
    ])
    const replay = await call('POST', '/members/o_old_key/points', {
      delta: 5,
      reason: 'CRM',
      idempotencyKey: 'crm-77',
    })
    expect(await replay.json()).toMatchObject({ status: 'duplicate' })
  })

  it('serves the invite report with validated periods', async () => {
    const ok = await call('GET', '/invites/report?from=2026-11-01&to=2026-11-24')
    expect(ok.status).toBe(200)
    expect(await ok.json()).toMatchObject({
      from: '2026-11-01',
      to: '2026-11-24',
      totals: { invites: 0 },
      campaigns: [],
      topInviters: [],
    })
    const bad = async (query: string, message: string) => {
      const res = await call('GET', `/invites/report?${query}`)
      expect(res.status).toBe(400)
      expect((await res.json()).message).toBe(message)
    }
    await bad('from=2026-13-01', 'from: must be a date YYYY-MM-DD')
    await bad('from=yesterday', 'from: must be a date YYYY-MM-DD')
    await bad('from=2026-11-24&to=2026-11-01', 'from: must not be after to')
    await bad('from=2024-01-01&to=2026-11-24', 'to: the period is at most 366 days')
    // campaign QRs need the account's API
    await seedMember('o_campaign')
    const noApi = await call('POST', '/members/o_campaign/invite-qr', { campaign: 'spring' })
    expect(noApi.status).toBe(409)
    const badCampaign = await call('POST', '/members/o_campaign/invite-qr', { campaign: 'a b' })
    expect(badCampaign.status).toBe(400)
    expect((await badCampaign.json()).message).toBe('campaign: 1–40 letters, digits or -')
  })
})
