import { expect, it } from 'vitest'
import { createRouter } from '../../handlers/index.js'
import { forEachDatabase } from '../../test/databases.js'
import { SAFE_ACCOUNT, testConfig } from '../../test/server.js'
import { createApp } from '../app.js'
import { redeem } from '../community/rewards.js'
import { silentLogger } from '../logger.js'

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
      ['points:evt-1', 'custom'],
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
      [{ delta: 5 }, 'reason: Invalid key: Expected "reason" but received undefined'],
      [
        { delta: 5, reason: 'x', extra: true },
        'extra: Invalid key: Expected never but received "extra"',
      ],
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
