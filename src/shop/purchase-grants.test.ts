/**
 * Points that follow the money, end to end through HTTP against the sandbox WeChat Pay server:
 * payment → frozen (待到账), the release job over `POST /admin/jobs/release-points/run`, refunds
 * through the operator API and REFUND.SUCCESS notifications. After every step the ledger invariant
 * holds for every member: Σ available deltas = points_balance, Σ frozen = points_frozen.
 */
import { sql } from 'kysely'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { findJob } from '../../jobs/index.js'
import { runJobSlot } from '../../jobs/runner.js'
import { forEachDatabase } from '../../test/databases.js'
import { expectLedgerInvariant } from '../../test/points-invariant.js'
import { SAFE_ACCOUNT, startServer, type TestServer, testConfig } from '../../test/server.js'
import { computeDay } from '../analytics/rollup.js'
import { localDay } from '../community/community-time.js'
import { silentLogger } from '../logger.js'
import type { ShopRouteOptions } from '../routes/shop.js'
import type { SandboxPay } from '../sandbox/pay-server.js'
import { startSandboxShop } from '../sandbox/sandbox-shop.js'
import { type SandboxApi, startSandboxApi } from '../sandbox/wechat-api-server.js'
import { nodeShop } from './node-shop.js'
import { createOrder } from './orders.js'
import { releaseFrozenPoints } from './purchase-grants.js'
import { requestRefund, settleRefund } from './refunds.js'

const DAY = 86_400_000
const ADMIN = 'frozen-operator-token-0123'

let wx: SandboxApi
beforeAll(async () => {
  wx = await startSandboxApi()
})
afterAll(() => wx.close())

forEachDatabase('points that follow the money, end to end', (get, name) => {
  let server: TestServer
  let pay: SandboxPay
  let shop: ShopRouteOptions['shop']
  // One community day for the suite (a Wednesday, 12:00 Asia/Shanghai; the release job's runs
  // jump days ahead and back): the first message of the day earns daily_login and the analytics
  // test reads "today", so on the real clock a run across local midnight saw 当前积分 20 for 10 and
  // no frozen entry on the new day. The server, its jobs, the seeds, the direct calls and the OA
  // pushes read this clock, and so do the sandbox Pay's notifications (their timestamp is checked
  // against the server's clock). The shop's own calls to the sandbox Pay (request and response
  // signatures) keep the real clock on both ends: they decide no day.
  let at = Date.parse('2026-11-18T04:00:00Z')
  const offset = { ms: 0 }
  const clock = { now: () => new Date(at + offset.ms) }
  const config = testConfig({ ADMIN_TOKEN: ADMIN })
  let users = 0

  beforeAll(async () => {
    const sandbox = await startSandboxShop({ notifyUrl: 'http://placeholder/pay/notify', clock })
    pay = sandbox.pay
    shop = await nodeShop(sandbox.config, {
      appid: SAFE_ACCOUNT.appid,
      apiBase: wx.url,
      logger: silentLogger,
      pointsFreezeDays: 7,
    })
    server = await startServer(get().db, {
      config,
      clock,
      shop,
      jobs: {
        tokens: [],
        run: async (job) => {
          const found = findJob(job)
          if (!found) return undefined
          const deps = { db: get().db, clock, logger: silentLogger, config, shop }
          const outcome = await runJobSlot(found, deps, {
            slot: clock.now(),
            trigger: 'manual',
            worker: 'test',
          })
          return { job, ...outcome }
        },
      },
    })
    shop.settings.notifyUrl = `${server.url}/pay/notify`
  })
  afterAll(async () => {
    await server.close()
    await pay.close()
  })

  // biome-ignore lint/suspicious/noExplicitAny: response JSON, checked by the assertions
  type Json = Record<string, any>
  const http = async (
    path: string,
    init: { method?: string; token?: string; body?: unknown; headers?: Record<string, string> },
  ) => {
    const res = await fetch(`${server.url}${path}`, {
      method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
      headers: {
        'content-type': 'application/json',
        ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
        ...init.headers,
      },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    })
    return { status: res.status, json: (await res.json()) as Json }
  }
  const mp = (path: string, token: string, body?: unknown) =>
    http(`/api/mp${path}`, { token, body })
  const admin = (path: string, body?: unknown) =>
    http(`/admin/api/accounts/${SAFE_ACCOUNT.appid}${path}`, { token: ADMIN, body })

  /** An OA follower who also logs in to the mini program (the same unionid: one member). */
  const follower = async () => {
    const n = ++users
    const openid = `o_fz_${n}_${Math.random().toString(36).slice(2, 8)}`
    const unionid = `union-fz-${n}-${Math.random().toString(36).slice(2, 8)}`
    const row = await get()
      .db.insertInto('members')
      .values({ appid: SAFE_ACCOUNT.appid, openid, unionid, first_seen_at: clock.now() })
      .returning('id')
      .executeTakeFirstOrThrow()
    const code = wx.loginCode(shop.settings.mpAppid, `o_mp_fz_${n}`, unionid)
    const login = await http('/api/mp/login', { body: { code } })
    expect(login.json.member.id).toBe(row.id)
    return { id: row.id, openid, token: login.json.token as string }
  }
  /** Buys and pays through the mini-program API and the sandbox Pay server. */
  const buyAndPay = async (token: string, sku: string) => {
    const order = await mp('/orders', token, { sku })
    expect(order.status).toBe(201)
    const no = order.json.order.outTradeNo as string
    expect((await pay.pay(no)).answer!.status).toBe(204)
    const paid = await mp(`/orders/${no}`, token)
    expect(paid.json.order.status).toBe('paid')
    return { no, paidAt: new Date(paid.json.order.paidAt) }
  }
  /** An operator refund (HTTP), then WeChat Pay's REFUND.SUCCESS notification (HTTP). */
  const refund = async (no: string, amountFen: number, outRefundNo: string) => {
    const r = await admin(`/shop/orders/${no}/refunds`, {
      amountFen,
      reason: '退款',
      outRefundNo,
    })
    expect(r.status).toBe(201)
    expect((await pay.completeRefund(outRefundNo)).answer?.status).toBe(204)
  }
  const me = async (token: string) => (await mp('/me', token)).json.member as Json
  const runRelease = async (atMs: number) => {
    at += 1000 // each run its own job slot (a run claims the job at its clock time, once)
    offset.ms = atMs
    try {
      const r = await http('/admin/jobs/release-points/run', { token: ADMIN, method: 'POST' })
      expect(r.json).toMatchObject({ job: 'release-points', status: 'ran' })
      return r.json.result as { members: number; grants: number; points: number }
    } finally {
      offset.ms = 0
    }
  }
  const ledger = (memberId: number) =>
    get()
      .db.selectFrom('points_ledger')
      .select(['rule', 'state', 'delta'])
      .where('member_id', '=', memberId)
      .orderBy('id')
      .execute()
  const grant = (no: string) =>
    get()
      .db.selectFrom('purchase_grants as g')
      .innerJoin('orders as o', 'o.id', 'g.order_id')
      .select([
        'g.points',
        'g.points_status',
        'g.points_taken_back',
        'g.points_shortfall',
        'g.membership_days',
        'g.membership_days_taken_back',
      ])
      .where('o.out_trade_no', '=', no)
      .executeTakeFirstOrThrow()
  /** `YYYY-MM-DD HH:MM` in Asia/Shanghai (UTC+8, no DST). */
  const shanghai = (at: Date) =>
    new Date(at.getTime() + 8 * 3600_000).toISOString().slice(0, 16).replace('T', ' ')

  it('freezes a purchase’s points (待到账), releases them after the window, once', async () => {
    const u = await follower()
    const oa = server.pusher()
    await oa.text(u.openid, '你好') // the day's first message: daily_login +10, available
    const { no, paidAt } = await buyAndPay(u.token, 'vip-30') // 30 yuan
    const releasesAt = new Date(paidAt.getTime() + 7 * DAY)
    // first_purchase 100 + purchase 30 (1 per yuan), frozen: not spendable, not for levels
    expect(await me(u.token)).toMatchObject({
      points: 10,
      pendingPoints: 130,
      pendingReleaseAt: releasesAt.toISOString(),
    })
    expect(await ledger(u.id)).toEqual([
      { rule: 'daily_login', state: 'available', delta: 10 },
      { rule: 'first_purchase', state: 'frozen', delta: 100 },
      { rule: 'purchase', state: 'frozen', delta: 30 },
    ])
    expect(await grant(no)).toMatchObject({ points: 130, points_status: 'frozen' })
    await expectLedgerInvariant(get().db)
    // the OA chat shows them as 待到账 with when they release; the level ignores them
    expect((await oa.text(u.openid, '积分')).reply!.Content).toBe(
      `当前积分 10，等级 铜牌\n待到账 130 积分（购物所得，最早 ${shanghai(releasesAt)} 到账；退款将取消）\n再获得 990 积分即可升级为 银牌`,
    )
    const profile = (await oa.text(u.openid, '我的')).reply!.Content as string
    expect(profile).toContain('积分 10（累计 10）')
    expect(profile).toContain(`待到账 130 积分（购物所得，最早 ${shanghai(releasesAt)} 到账`)
    // the payment earned 首次购买 (badges.ts): told through the outbox, listed in 我的
    expect(profile).toContain('徽章 1 枚：首次购买')
    const badgeNotices = await get()
      .db.selectFrom('push_outbox')
      .select('source')
      .where('openid', '=', u.openid)
      .where('source', 'like', 'badge:%')
      .execute()
    expect(badgeNotices).toEqual([{ source: 'badge:first_purchase' }])

    // a day before the window ends: nothing; after it: released, counted as earned, once
    const early = await runRelease(6 * DAY)
    expect(await grant(no)).toMatchObject({ points_status: 'frozen' })
    expect(early.grants).toBe(0)
    const released = await runRelease(7 * DAY + 60_000)
    expect(released).toEqual({ members: 1, grants: 1, points: 130, levelUps: 0 })
    expect(await grant(no)).toMatchObject({ points: 130, points_status: 'released' })
    expect(await me(u.token)).toMatchObject({
      points: 140,
      pendingPoints: 0,
      pendingReleaseAt: null,
    })
    expect((await runRelease(7 * DAY + 120_000)).grants).toBe(0)
    expect((await ledger(u.id)).slice(3)).toEqual([
      { rule: 'points_release', state: 'frozen', delta: -130 },
      { rule: 'points_release', state: 'available', delta: 130 },
    ])
    const row = await get()
      .db.selectFrom('members')
      .select(['points_balance', 'points_frozen', 'points_lifetime'])
      .where('id', '=', u.id)
      .executeTakeFirstOrThrow()
    expect(row).toEqual({ points_balance: 140, points_frozen: 0, points_lifetime: 140 })
    expect((await oa.text(u.openid, '积分')).reply!.Content).toBe(
      '当前积分 140，等级 铜牌\n再获得 860 积分即可升级为 银牌',
    )
    await expectLedgerInvariant(get().db)
  })

  it('counts purchase points in analytics when released, not while frozen', async () => {
    const u = await follower()
    await buyAndPay(u.token, 'vip-30') // frozen today
    const day = localDay(clock.now(), 'Asia/Shanghai')
    const figures = await computeDay(
      get().db,
      { appid: SAFE_ACCOUNT.appid, day, timeZone: 'Asia/Shanghai' },
      { families: ['points'] },
    )
    const figure = (metric: string, dim = '') =>
      figures.find((f) => f.metric === metric && f.dim === dim)?.value ?? 0
    const entries = await get()
      .db.selectFrom('points_ledger')
      .select(['state', 'delta', sql<string>`day::text`.as('day')])
      .where('appid', '=', SAFE_ACCOUNT.appid)
      .execute()
    const today = entries.filter((e) => e.day === day)
    expect(today.filter((e) => e.state === 'frozen').map((e) => e.delta)).toContain(30)
    const available = today.filter((e) => e.state === 'available')
    expect(figure('points.issued')).toBe(
      available.filter((e) => e.delta > 0).reduce((n, e) => n + e.delta, 0),
    )
    expect(figure('points.issued', 'purchase')).toBe(0)
    // the day's closing stock: available points at its end (releases of later days not among it)
    expect(figure('points.outstanding')).toBe(
      entries
        .filter((e) => e.state === 'available' && e.day <= day)
        .reduce((n, e) => n + e.delta, 0),
    )
    await expectLedgerInvariant(get().db)
  })

  it('cancels frozen points when refunded within the window: partial refunds proportionally, never more than earned; a full refund takes back the membership days', async () => {
    const u = await follower()
    const { no } = await buyAndPay(u.token, 'vip-90') // 80 yuan, 90 days
    expect(await grant(no)).toMatchObject({ points: 180, membership_days: 90 })
    const before = await me(u.token)
    expect(before.pendingPoints).toBe(180)
    const daysLeft = (m: Json) =>
      (new Date(m.membership.expiresAt).getTime() - clock.now().getTime()) / DAY
    expect(Math.round(daysLeft(before))).toBe(90)

    await refund(no, 1000, `RF-${no}-1`) // 1/8 of 180 = 22.5 → 22
    expect(await grant(no)).toMatchObject({ points_taken_back: 22, points_status: 'frozen' })
    await refund(no, 1000, `RF-${no}-2`) // 2/8 → 45 in all: 23 more, not 22
    expect(await grant(no)).toMatchObject({ points_taken_back: 45, points_status: 'frozen' })
    const partly = await me(u.token)
    expect(partly.pendingPoints).toBe(135)
    expect(Math.round(daysLeft(partly))).toBe(90) // partial refunds keep the membership
    await expectLedgerInvariant(get().db)

    await refund(no, 6000, `RF-${no}-3`) // the rest: all 180, the 90 days
    expect(await grant(no)).toMatchObject({
      points: 180,
      points_taken_back: 180,
      points_shortfall: 0,
      points_status: 'cancelled',
      membership_days_taken_back: 90,
    })
    expect(await me(u.token)).toMatchObject({ points: 0, pendingPoints: 0, membership: null })
    expect((await ledger(u.id)).filter((e) => e.rule === 'purchase_refund')).toEqual([
      { rule: 'purchase_refund', state: 'frozen', delta: -22 },
      { rule: 'purchase_refund', state: 'frozen', delta: -23 },
      { rule: 'purchase_refund', state: 'frozen', delta: -135 },
    ])
    // the window passes: nothing left to release
    await runRelease(8 * DAY)
    expect(await grant(no)).toMatchObject({ points_status: 'cancelled' })
    expect(await me(u.token)).toMatchObject({ points: 0, pendingPoints: 0 })
    await expectLedgerInvariant(get().db)
  })

  it('deducts released points on a later refund, never below zero, recording what was already spent', async () => {
    const u = await follower()
    const { no } = await buyAndPay(u.token, 'vip-30')
    const other = await buyAndPay(u.token, 'flash-tea') // 8.91 yuan at the VIP price: 8 points
    expect(await grant(other.no)).toMatchObject({ points: 8 })
    await runRelease(7 * DAY + 60_000)
    expect(await me(u.token)).toMatchObject({ points: 138, pendingPoints: 0 })
    // the member spends 120 of them
    const spend = await admin(`/members/${u.openid}/points`, {
      delta: -120,
      reason: '兑换礼品',
      idempotencyKey: `spend-${no}`,
    })
    expect(spend.json).toMatchObject({ status: 'applied', balance: 18 })

    // half refunded: 65 of the order's 130 due back, 18 there — 47 short
    await refund(no, 1500, `RF-${no}-half`)
    expect(await grant(no)).toMatchObject({
      points_status: 'released',
      points_taken_back: 65,
      points_shortfall: 47,
    })
    expect((await me(u.token)).points).toBe(0)
    await expectLedgerInvariant(get().db)
    // new points arrive; the rest of the refund takes them, and records the remainder
    await admin(`/members/${u.openid}/points`, {
      delta: 50,
      reason: '活动奖励',
      idempotencyKey: `grant-${no}`,
    })
    await refund(no, 1500, `RF-${no}-rest`)
    expect(await grant(no)).toMatchObject({
      points_taken_back: 130,
      points_shortfall: 62,
      membership_days_taken_back: 30,
    })
    expect(await me(u.token)).toMatchObject({ points: 0, membership: null })
    // lifetime loses all 130 the order earned, spent or not (migrations/0082): they were never
    // earned; what else was released and granted stays
    const row = await get()
      .db.selectFrom('members')
      .select(['points_balance', 'points_lifetime'])
      .where('id', '=', u.id)
      .executeTakeFirstOrThrow()
    expect(row).toEqual({ points_balance: 0, points_lifetime: 58 })
    expect((await ledger(u.id)).filter((e) => e.rule === 'purchase_refund')).toEqual([
      { rule: 'purchase_refund', state: 'available', delta: -18 },
      { rule: 'purchase_refund', state: 'available', delta: -50 },
    ])
    // operators see what could not be taken back
    const shortfalls = await admin('/shop/points-shortfalls')
    expect(shortfalls.json.shortfalls).toContainEqual(
      expect.objectContaining({
        outTradeNo: no,
        openid: u.openid,
        points: 130,
        takenBack: 130,
        shortfall: 62,
      }),
    )
    // the other order is untouched
    expect(await grant(other.no)).toMatchObject({ points_taken_back: 0, points_status: 'released' })
    await expectLedgerInvariant(get().db)
  })

  it('moves frozen points and grants to the follower a mini-program user links to with 绑定', async () => {
    const n = ++users
    const login = await http('/api/mp/login', {
      body: { code: wx.loginCode(shop.settings.mpAppid, `o_mp_fz_solo_${n}`) }, // no unionid
    })
    const token = login.json.token as string
    const mpMember = login.json.member.id as number
    const { no } = await buyAndPay(token, 'vip-30')
    expect(await me(token)).toMatchObject({ id: mpMember, points: 0, pendingPoints: 130 })
    // the follower asks the OA chat for a code (their first message today: daily_login +10)
    const openid = `o_fz_link_${n}_${Math.random().toString(36).slice(2, 8)}`
    const oa = server.pusher()
    const code = /(\d{6})/.exec((await oa.text(openid, '绑定')).reply!.Content as string)![1]!
    const bound = await mp('/bind', token, { code })
    expect(bound.status).toBe(200)
    const follower = bound.json.member.id as number
    expect(follower).not.toBe(mpMember)
    expect(await me(token)).toMatchObject({ id: follower, points: 10, pendingPoints: 130 })
    expect((await ledger(mpMember)).at(-1)).toEqual({
      rule: 'mp_link_out',
      state: 'frozen',
      delta: -130,
    })
    await expectLedgerInvariant(get().db)
    // released to the follower, and a refund takes them back from the follower
    await runRelease(7 * DAY + 60_000)
    expect(await me(token)).toMatchObject({ points: 140, pendingPoints: 0 })
    await refund(no, 3000, `RF-${no}-linked`)
    expect(await grant(no)).toMatchObject({ points_taken_back: 130, points_shortfall: 0 })
    expect(await me(token)).toMatchObject({ points: 10, membership: null })
    const old = await get()
      .db.selectFrom('members')
      .select(['points_balance', 'points_frozen'])
      .where('id', '=', mpMember)
      .executeTakeFirstOrThrow()
    expect(old).toEqual({ points_balance: 0, points_frozen: 0 })
    await expectLedgerInvariant(get().db)
  })

  it('pays first_purchase once per person: a purchase after 绑定 moved the first one pays purchase only', async () => {
    const n = ++users
    const login = await http('/api/mp/login', {
      body: { code: wx.loginCode(shop.settings.mpAppid, `o_mp_fz_once_${n}`) }, // no unionid
    })
    const token = login.json.token as string
    await buyAndPay(token, 'vip-30') // first_purchase 100 + purchase 30, on the mini-program member
    const openid = `o_fz_once_${n}_${Math.random().toString(36).slice(2, 8)}`
    const code = /(\d{6})/.exec(
      (await server.pusher().text(openid, '绑定')).reply!.Content as string,
    )![1]!
    const bound = await mp('/bind', token, { code })
    expect(bound.status).toBe(200)
    const follower = bound.json.member.id as number
    expect(await me(token)).toMatchObject({ id: follower, pendingPoints: 130 })
    await buyAndPay(token, 'vip-30') // the same person's second purchase: 30, no first_purchase
    expect(await me(token)).toMatchObject({ id: follower, pendingPoints: 160 })
    const earned = (await ledger(follower)).filter((e) => e.state === 'frozen' && e.delta > 0)
    expect(earned.map((e) => e.rule)).toEqual(['mp_link_in', 'purchase'])
    await expectLedgerInvariant(get().db)
    // released, as the tests after this one expect no grant left frozen
    await runRelease(7 * DAY + 60_000)
    expect(await me(token)).toMatchObject({ pendingPoints: 0 })
  })

  it.skipIf(name !== 'postgres')(
    'releases each grant once with two releases at once, and a release racing a refund settles one way',
    async () => {
      const [a, b, c] = [get().open(), get().open(), get().open()]
      const buyers = await get()
        .db.insertInto('members')
        .values(
          Array.from({ length: 24 }, (_, i) => ({
            appid: shop.settings.mpAppid,
            openid: `o_fz_race_${i}`,
            first_seen_at: clock.now(),
          })),
        )
        .returning(['id', 'openid'])
        .execute()
      const orders: string[] = []
      for (const m of buyers) {
        const created = await createOrder(get().db, shop.gateway, shop.settings, {
          memberId: m.id,
          mpOpenid: m.openid,
          sku: 'vip-30',
          now: clock.now(),
        })
        if (created.status !== 'created') throw new Error(created.status)
        expect((await pay.pay(created.order.out_trade_no)).answer!.status).toBe(204)
        orders.push(created.order.out_trade_no)
      }
      const later = new Date(clock.now().getTime() + 7 * DAY + 60_000)

      // half of them: two release passes at once
      const plain = orders.slice(0, 12)
      const racing = orders.slice(12)
      for (const no of racing) {
        const r = await requestRefund(get().db, shop.gateway, shop.settings, {
          outTradeNo: no,
          amountFen: 3000,
          reason: '退款',
          outRefundNo: `RR-${no}`,
          now: clock.now(),
        })
        expect(r).toMatchObject({ refundStatus: 'processing' })
      }
      // the other half: their full refunds settle while both passes run
      const [[first, second], settled] = await Promise.all([
        Promise.all([
          releaseFrozenPoints(a, { now: later, batch: 5 }),
          releaseFrozenPoints(b, { now: later, batch: 5 }),
        ]),
        Promise.all(racing.map((no) => settleRefund(c, `RR-${no}`, 'SUCCESS', clock.now()))),
      ])
      expect(settled).toEqual(racing.map(() => 'settled'))
      const grants = await get()
        .db.selectFrom('purchase_grants as g')
        .innerJoin('orders as o', 'o.id', 'g.order_id')
        .innerJoin('members as m', 'm.id', 'g.member_id')
        .select([
          'o.out_trade_no',
          'g.points_status',
          'g.points_taken_back',
          'g.points_shortfall',
          'm.points_balance',
          'm.points_frozen',
        ])
        .where('o.out_trade_no', 'in', orders)
        .execute()
      const byNo = new Map(grants.map((g) => [g.out_trade_no, g]))
      for (const no of plain)
        expect(byNo.get(no)).toMatchObject({
          points_status: 'released',
          points_balance: 130,
          points_frozen: 0,
        })
      // refunded first: cancelled; released first: deducted — either way all of it, nothing short
      for (const no of racing) {
        const g = byNo.get(no)!
        expect(['cancelled', 'released']).toContain(g.points_status)
        expect(g).toMatchObject({
          points_taken_back: 130,
          points_shortfall: 0,
          points_balance: 0,
          points_frozen: 0,
        })
      }
      const releasedRacing = racing.filter((no) => byNo.get(no)!.points_status === 'released')
      expect(first.grants + second.grants).toBe(plain.length + releasedRacing.length)
      expect(first.points + second.points).toBe(130 * (plain.length + releasedRacing.length))
      // nothing left for a third pass
      expect((await releaseFrozenPoints(a, { now: later })).grants).toBe(0)
      await expectLedgerInvariant(get().db)
    },
  )
})
