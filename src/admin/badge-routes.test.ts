import { expect, it } from 'vitest'
import { createRouter } from '../../handlers/index.js'
import { forEachDatabase } from '../../test/databases.js'
import { SAFE_ACCOUNT, testConfig } from '../../test/server.js'
import { createApp } from '../app.js'
import { awardBadges } from '../community/badges.js'
import { silentLogger } from '../logger.js'

const TOKEN = 'badge-operator-token-0123'
const base = `/admin/api/accounts/${SAFE_ACCOUNT.appid}`

forEachDatabase('operator API: badges', (get) => {
  const app = () =>
    createApp({
      config: testConfig({ ADMIN_TOKEN: TOKEN }),
      db: get().db,
      router: createRouter(),
      logger: silentLogger,
    })
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await app().request(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    return { status: res.status, json: await res.json() }
  }
  const audits = () =>
    get()
      .db.selectFrom('audit_log')
      .select(['action', 'target'])
      .where('action', 'like', 'badge.%')
      .orderBy('id')
      .execute()

  it('lists the defaults, adds a rule without code, and refuses bad input changing nothing', async () => {
    const listed = await call('GET', '/badges')
    expect(listed.status).toBe(200)
    expect(listed.json.badges.map((b: { key: string }) => b.key)).toEqual([
      'streak_7',
      'streak_30',
      'checkins_100',
      'first_invite',
      'invites_10',
      'first_purchase',
      'activity_champion',
    ])
    const predicate = {
      all: [
        { counter: 'checkins', atLeast: 50 },
        { counter: 'purchases', atLeast: 3 },
      ],
    }
    const put = await call('PUT', '/badges/loyal_buyer', {
      name: '忠实买家',
      description: '签到 50 天且下单 3 次',
      predicate,
    })
    expect(put.status).toBe(200)
    for (const [key, body, field] of [
      ['Bad-Key', { name: 'x', predicate }, null],
      ['bad_counter', { name: 'x', predicate: { counter: 'balance', atLeast: 1 } }, 'predicate'],
      ['bad_sql', { name: 'x', predicate: 'streak >= 7' }, 'predicate'],
      ['bad_name', { name: '第一行\n第二行', predicate }, 'name'],
      ['bad_long', { name: '徽'.repeat(21), predicate }, 'name'],
      ['bad_extra', { name: 'x', predicate, sql: 'drop table members' }, null],
    ] as const) {
      const r = await call('PUT', `/badges/${key}`, body)
      expect(r.status, key).toBe(400)
      if (field) expect(JSON.stringify(r.json), key).toContain(field)
    }
    const after = await call('GET', '/badges')
    const keys = after.json.badges.map((b: { key: string }) => b.key)
    expect(keys).toContain('loyal_buyer')
    expect(keys.filter((k: string) => k.startsWith('bad') || k === 'Bad-Key')).toEqual([])
    expect(after.json.badges.find((b: { key: string }) => b.key === 'loyal_buyer')).toMatchObject({
      name: '忠实买家',
      predicate,
      enabled: true,
      overridden: true,
      holders: 0,
    })
    expect(await audits()).toEqual([{ action: 'badge.update', target: 'loyal_buyer' }])
  })

  it('switches a default off for the account (audited once), so it is no longer awarded', async () => {
    const m = await get()
      .db.insertInto('members')
      .values({ appid: SAFE_ACCOUNT.appid, openid: 'o_badge_api', first_seen_at: new Date() })
      .returning('id')
      .executeTakeFirstOrThrow()
    expect((await call('PATCH', '/badges/first_purchase', { enabled: false })).status).toBe(200)
    expect((await call('PATCH', '/badges/first_purchase', { enabled: false })).status).toBe(200)
    expect((await call('PATCH', '/badges/nothing_here', { enabled: false })).status).toBe(404)
    expect((await call('PATCH', '/badges/first_purchase', { enabled: 'no' })).status).toBe(400)
    const rule = (await call('GET', '/badges')).json.badges.find(
      (b: { key: string }) => b.key === 'first_purchase',
    )
    expect(rule).toMatchObject({ enabled: false, overridden: true, name: '首次购买' })
    await get()
      .db.updateTable('members')
      .set({ purchase_count: 1 })
      .where('id', '=', m.id)
      .execute()
    const now = new Date()
    expect(await awardBadges(get().db, m.id, { purchases: null }, { now })).toEqual([])
    expect((await call('PATCH', '/badges/first_purchase', { enabled: true })).status).toBe(200)
    expect(await awardBadges(get().db, m.id, { purchases: null }, { now })).toMatchObject([
      { key: 'first_purchase' },
    ])
    const held = await call('GET', '/members/o_badge_api/badges')
    expect(held.json.badges).toMatchObject([{ key: 'first_purchase', name: '首次购买' }])
    expect((await call('GET', '/members/o_nobody/badges')).status).toBe(404)
    expect((await audits()).filter((a) => a.target === 'first_purchase')).toEqual([
      { action: 'badge.disable', target: 'first_purchase' },
      { action: 'badge.enable', target: 'first_purchase' },
    ])
  })
})
