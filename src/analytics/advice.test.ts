import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { activeOn, addMembers, paidOrder } from '../../test/analytics-fixtures.js'
import { forEachDatabase } from '../../test/databases.js'
import { SAFE_ACCOUNT, startServer, type TestServer, testConfig } from '../../test/server.js'
import { addDays } from '../community/community-time.js'
import { type AdviceFigures, adviseFrom, readAdviceFigures } from './advice.js'
import { ADVICE_RULES } from './advice-rules.js'

const TZ = 'Asia/Shanghai'
/** Monday 2026-11-16, 10:00 in Beijing: yesterday is 2026-11-15. */
const T0 = new Date('2026-11-16T02:00:00Z')
const TODAY = '2026-11-16'
const TOKEN = 'advice-operator-token-0123'

describe('advice rules', () => {
  const none: AdviceFigures = {
    activeVsBaseline: null,
    conversion: null,
    d7Retention: null,
    aovFen: null,
  }
  const figure = (value: number, sample = 1000) => ({ value, sample, params: {} })

  it('are high priority past the severe line, medium before it, high first', () => {
    const advice = adviseFrom(
      { ...none, conversion: figure(0.015), d7Retention: figure(0.0999) },
      { appid: 'wx1', locale: 'zh-CN' },
    )
    expect(advice.map((a) => [a.rule, a.area, a.priority])).toEqual([
      ['retention', '留存', 'high'],
      ['conversion', '转化', 'medium'],
    ])
  })

  it('link each suggestion to its action: the operator API under the account, the console', () => {
    const [growth] = adviseFrom(
      { ...none, activeVsBaseline: figure(0.5) },
      { appid: 'wx1', locale: 'zh-CN' },
    )
    expect(growth!.suggestions[0]).toEqual({
      text: '给 30 天没来的「流失风险」用户发一轮召回：积分待兑换提醒 + 回归礼',
      action: {
        label: '开启流失风险召回旅程',
        api: { method: 'POST', path: '/admin/api/accounts/wx1/campaigns/strategies' },
        console: '/console/journeys',
      },
    })
    // an action that is a journey says journey, in every language
    const [retention] = adviseFrom(
      { ...none, d7Retention: figure(0.05) },
      { appid: 'wx1', locale: 'en' },
    )
    expect(retention!.suggestions[0]!.action).toMatchObject({
      label: 'Switch on the welcome journey for new members',
      console: '/console/journeys',
    })
    for (const rule of ADVICE_RULES)
      for (const s of rule.suggestions)
        if (s.action.api?.path === 'campaigns/strategies') {
          expect(s.action.label['zh-CN']).toContain('旅程')
          expect(s.action.label.en).toContain('journey')
          expect(s.action.console).toBe('/console/journeys')
        }
    const [en] = adviseFrom({ ...none, aovFen: figure(9000) }, { appid: 'wx1', locale: 'en' })
    expect(en!.area).toBe('Order value')
  })

  it('need their sample: a handful of orders says nothing about order value', () => {
    expect(
      adviseFrom({ ...none, aovFen: figure(100, 9) }, { appid: 'wx1', locale: 'zh-CN' }),
    ).toEqual([])
  })
})

forEachDatabase('advice from the account’s figures', (get) => {
  let server: TestServer
  beforeAll(async () => {
    server = await startServer(get().db, {
      clock: { now: () => T0 },
      config: testConfig({ ADMIN_TOKEN: TOKEN }),
    })
  })
  afterAll(() => server.close())
  const appid = SAFE_ACCOUNT.appid
  const read = () => readAdviceFigures(get().db, { appid, now: T0, timeZone: TZ })
  const advise = async () => adviseFrom(await read(), { appid, locale: 'zh-CN' })
  const dau = async (day: string, value: number) => {
    const { db } = get()
    await db
      .insertInto('analytics_daily')
      .values({ appid, metric: 'activity.dau', day, dim: '', value })
      .onConflict((oc) => oc.columns(['appid', 'metric', 'day', 'dim']).doUpdateSet({ value }))
      .execute()
    await db
      .insertInto('analytics_days')
      .values({ appid, day, built_at: T0 })
      .onConflict((oc) => oc.doNothing())
      .execute()
  }

  it('growth: active members below the account’s own 28-day baseline', async () => {
    for (let k = 1; k <= 35; k++) await dau(addDays(TODAY, -k), 100)
    expect((await read()).activeVsBaseline?.value).toBe(1)
    expect((await advise()).map((a) => a.rule)).not.toContain('growth')
    await dau(addDays(TODAY, -1), 99)
    const growth = (await advise()).find((a) => a.rule === 'growth')!
    expect(growth.figure.value).toBeCloseTo(699 / 700, 10)
    expect(growth.title).toBe('近 7 天日均活跃 99.9 人，低于此前 28 天的日均 100.0 人（99.86%）')
    expect(growth.priority).toBe('medium')
  })

  it('conversion: fewer than 2 % of active members paid in 30 days', async () => {
    const { db } = get()
    const ids = await addMembers(db, appid, 'o_conv_', 201, T0)
    await activeOn(db, appid, addDays(TODAY, -3), ids.slice(0, 200))
    for (const [i, id] of ids.slice(0, 4).entries())
      await paidOrder(db, appid, {
        memberId: id,
        fen: 20_000,
        paidAt: new Date(T0.getTime() - (i + 1) * 86_400_000),
        no: `conv-${i}`,
      })
    // 4 of 200: exactly 2 %
    expect((await read()).conversion?.value).toBe(0.02)
    expect((await advise()).map((a) => a.rule)).not.toContain('conversion')
    await activeOn(db, appid, addDays(TODAY, -2), ids.slice(200))
    const conversion = (await advise()).find((a) => a.rule === 'conversion')!
    expect(conversion.title).toBe('近 30 天活跃成员的购买转化率 1.99%（4/201），低于 2%')
    expect(conversion.priority).toBe('medium')
  })

  it('retention: fewer than 15 % of new followers active on their 7th day', async () => {
    const { db } = get()
    const followDay = addDays(TODAY, -10)
    const ids = await addMembers(db, appid, 'o_ret_', 21, T0)
    const follow = (id: number) =>
      db
        .insertInto('follow_events')
        .values({
          appid,
          member_id: id,
          at: new Date(`${followDay}T04:00:00Z`),
          day: followDay,
          kind: 'follow',
          scene: null,
          source: 'organic',
        })
        .execute()
    for (const id of ids.slice(0, 20)) await follow(id)
    // 3 of 20 active on the 7th day (another one on the 6th: not retained)
    await activeOn(db, appid, addDays(followDay, 7), ids.slice(0, 3))
    await activeOn(db, appid, addDays(followDay, 6), ids.slice(3, 4))
    expect((await read()).d7Retention?.value).toBe(0.15)
    expect((await advise()).map((a) => a.rule)).not.toContain('retention')
    await follow(ids[20]!)
    const retention = (await advise()).find((a) => a.rule === 'retention')!
    expect(retention.title).toBe('新关注用户 7 日留存 14.29%（3/21），低于 15%')
  })

  it('order value: GMV per order under 150 yuan over 30 days, through the operator API', async () => {
    const { db } = get()
    const money = async (gmv: number) => {
      for (const [metric, value] of [
        ['commerce.gmv_fen', gmv],
        ['commerce.orders', 10],
      ] as const)
        await db
          .insertInto('analytics_daily')
          .values({ appid, metric, day: addDays(TODAY, -5), dim: '', value })
          .onConflict((oc) => oc.columns(['appid', 'metric', 'day', 'dim']).doUpdateSet({ value }))
          .execute()
    }
    await money(150_000)
    expect((await read()).aovFen?.value).toBe(15_000)
    expect((await advise()).map((a) => a.rule)).not.toContain('aov')
    await money(149_990)
    const res = await fetch(`${server.url}/admin/api/analytics/advice`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    })
    expect(res.status).toBe(200)
    const body = await res.json()
    const aov = body.advice.find((a: { rule: string }) => a.rule === 'aov')
    expect(aov.title).toBe('近 30 天客单价 149.99 元（10 单），低于 150 元')
    expect(aov.figure).toEqual({ name: 'aovFen', value: 14_999, threshold: 15_000, sample: 10 })
    expect(aov.suggestions[0].action.api.path).toBe(`/admin/api/accounts/${appid}/shop/products`)
    expect(body.figures.aovFen.value).toBe(14_999)
  })
})
