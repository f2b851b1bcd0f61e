/**
 * Members of the account's mini program (buyers with no follower behind them) in the console and
 * the operator API: an order's member link opens them, 会员 finds them by order number, openid and
 * nickname, the page marks them and refuses what only followers have (tags, the campaign
 * setting), points granted send no OA notice; one a 绑定 left behind sends the operator to the
 * follower; an openid shared with a follower names the follower unless `mp=1` says otherwise; the
 * other account's operators never reach them — on every test database.
 */
import type { Hono } from 'hono'
import { beforeAll, expect, it } from 'vitest'
import { createRouter } from '../../../handlers/index.js'
import { manualClock, postForm, seedOperators, signIn } from '../../../test/console-kit.js'
import { forEachDatabase } from '../../../test/databases.js'
import { PLAIN_ACCOUNT, SAFE_ACCOUNT, testConfig } from '../../../test/server.js'
import { type AppDeps, createApp } from '../../app.js'
import { silentLogger } from '../../logger.js'
import type { PayGateway } from '../../pay/gateway.js'

const appid = SAFE_ACCOUNT.appid
const other = PLAIN_ACCOUNT.appid
const MP_APPID = 'wxmp00000000000009'
const TOKEN = 'mp-members-admin-token'
const ORDER = 'QZ20261120000101'
/** An order of the shop whose buyer a unionid linked to the other account's follower. */
const ORDER_OTHER = 'QZ20261120000102'

forEachDatabase('console and operator API: mini-program members', (get) => {
  const clock = manualClock(new Date('2026-11-20T02:00:00Z'))
  const unused = async (): Promise<never> => {
    throw new Error('not called')
  }
  const shop: AppDeps['shop'] = {
    mpSecret: 'mp-secret',
    sessionSecret: 'session-secret-0123456789abcdef0123',
    apiV3Key: '0123456789abcdef0123456789abcdef',
    verifyKeys: new Map(),
    mpApi: { call: unused, unauthenticated: unused },
    settings: {
      appid,
      mpAppid: MP_APPID,
      notifyUrl: 'https://example.test/pay/notify',
      orderMinutes: 15,
      groupBuy: { size: 3, max: 5, hours: 24 },
      pointsFreezeDays: 7,
    },
    gateway: { appid: MP_APPID, mchid: '1900000109' } as PayGateway,
  }
  let app: Hono
  let op: { cookie: string; csrf: string }
  const db = () => get().db
  const page = async (path: string) => {
    const res = await app.request(path, { headers: { cookie: op.cookie } })
    return { status: res.status, html: await res.text() }
  }
  const api = (path: string, init: { method?: string; body?: unknown } = {}) =>
    app.request(`/admin/api/accounts${path}`, {
      method: init.method ?? 'GET',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    })
  const member = (memberAppid: string, openid: string) =>
    db()
      .selectFrom('members')
      .selectAll()
      .where('appid', '=', memberAppid)
      .where('openid', '=', openid)
      .executeTakeFirstOrThrow()
  const notices = (openid: string) =>
    db().selectFrom('push_outbox').select('id').where('openid', '=', openid).execute()

  beforeAll(async () => {
    await seedOperators(db(), clock.now())
    app = createApp({
      config: testConfig({ ADMIN_TOKEN: TOKEN }),
      db: db(),
      router: createRouter(),
      logger: silentLogger,
      clock,
      shop,
      clientAddress: () => '203.0.113.8',
    })
    op = await signIn(app, 'op1')
    // The catalog is seeded on the first read.
    expect((await page('/console/shop')).status).toBe(200)
    const now = clock.now()
    const seen = { first_seen_at: now, last_active_at: now }
    const [buyer, , , left, fan, otherFan] = await db()
      .insertInto('members')
      .values([
        { appid: MP_APPID, openid: 'o_mp_buyer', display_name: '小程序买家', ...seen },
        // one openid under both appids: a follower and a mini-program member
        { appid, openid: 'o_both', display_name: '粉丝同号', subscribed: true, ...seen },
        { appid: MP_APPID, openid: 'o_both', display_name: '小程序同号', ...seen },
        // a mini-program member a 绑定 linked to a follower: left behind
        { appid: MP_APPID, openid: 'o_mp_left', display_name: '已绑定买家', ...seen },
        { appid, openid: 'o_fan_linked', display_name: '绑定后的粉丝', ...seen },
        { appid: other, openid: 'o_other_fan', display_name: '另一号粉丝', ...seen },
      ])
      .returning('id')
      .execute()
    await db()
      .insertInto('mp_users')
      .values({ appid: MP_APPID, openid: 'o_mp_left', member_id: fan!.id, created_at: now })
      .execute()
    expect(left).toBeDefined()
    const vip = await db()
      .selectFrom('products')
      .select('id')
      .where('appid', '=', appid)
      .where('sku', '=', 'vip-30')
      .executeTakeFirstOrThrow()
    const order = (no: string, memberId: number, mpOpenid: string) => ({
      appid,
      out_trade_no: no,
      member_id: memberId,
      mp_openid: mpOpenid,
      product_id: vip.id,
      kind: 'membership' as const,
      description: 'VIP 会员 30 天',
      amount_fen: 3000,
      status: 'paid' as const,
      transaction_id: `42${no.slice(-8)}`,
      paid_at: now,
      paid_total_fen: 3000,
      expires_at: now,
      created_at: now,
    })
    await db()
      .insertInto('orders')
      .values([
        order(ORDER, buyer!.id, 'o_mp_buyer'),
        order(ORDER_OTHER, otherFan!.id, 'o_mp_other'),
      ])
      .execute()
  })

  it("opens a mini-program buyer from their order's member link, marked as such", async () => {
    const order = await page(`/console/shop/orders/${ORDER}`)
    expect(order.status).toBe(200)
    const href = `/console/members/o_mp_buyer?appid=${appid}&amp;mp=1`
    expect(order.html).toContain(`href="${href}"`)
    const { status, html } = await page(href.replace('&amp;', '&'))
    expect(status).toBe(200)
    expect(html).toContain('小程序买家')
    expect(html).toContain('小程序会员（非公众号粉丝）')
    expect(html).toContain(ORDER)
    // what only followers have is not offered; points are
    expect(html).not.toContain('/tags?')
    expect(html).not.toContain('/opt-out?')
    expect(html).toContain(`action="/console/members/o_mp_buyer/points?appid=${appid}&amp;mp=1"`)
    // an openid alone finds them too (no follower has it)
    expect((await page('/console/members/o_mp_buyer')).status).toBe(200)
  })

  it('finds them by order number, openid and nickname, linking with mp=1', async () => {
    for (const q of [ORDER, 'o_mp_buyer', '小程序买']) {
      const { status, html } = await page(`/console/members?q=${encodeURIComponent(q)}`)
      expect(status).toBe(200)
      expect(html).toContain('href="/console/members/o_mp_buyer?mp=1"')
      expect(html).toContain('小程序会员')
    }
  })

  it('keeps a follower and a mini-program member of one openid apart', async () => {
    expect((await page('/console/members/o_both')).html).toContain('粉丝同号')
    const mp = await page('/console/members/o_both?mp=1')
    expect(mp.html).toContain('小程序同号')
    expect(mp.html).not.toContain('粉丝同号')
    const found = await page('/console/members?q=o_both')
    expect(found.html).toContain('href="/console/members/o_both"')
    expect(found.html).toContain('href="/console/members/o_both?mp=1"')
    // a follower-only openid with mp=1 names nobody
    await db()
      .insertInto('members')
      .values({ appid, openid: 'o_fan_only', first_seen_at: clock.now() })
      .execute()
    expect((await page('/console/members/o_fan_only?mp=1')).status).toBe(404)
  })

  it('refuses tags and the campaign setting for them, and grants points without an OA notice', async () => {
    const path = '/console/members/o_mp_buyer'
    const tags = await postForm(app, `${path}/tags?mp=1`, op.cookie, {
      _csrf: op.csrf,
      tagid: '100',
    })
    expect(tags.status).toBe(400)
    expect(await tags.text()).toContain('这是小程序会员，不是公众号粉丝')
    const optOut = await postForm(app, `${path}/opt-out?mp=1`, op.cookie, {
      _csrf: op.csrf,
      optOut: '1',
    })
    expect(optOut.status).toBe(400)
    expect((await member(MP_APPID, 'o_mp_buyer')).marketing_opt_out).toBe(false)
    const grant = await postForm(app, `${path}/points?mp=1`, op.cookie, {
      _csrf: op.csrf,
      delta: '5',
      reason: '补偿',
    })
    expect(grant.status).toBe(303)
    expect(grant.headers.get('location')).toContain(`${path}?mp=1&done=member.grant.done`)
    expect((await member(MP_APPID, 'o_mp_buyer')).points_balance).toBe(5)
    expect(await notices('o_mp_buyer')).toEqual([])
  })

  it('serves them in the operator API: ledger, badges, points; mp=1 picks the mini-program member', async () => {
    const ledger = await api(`/${appid}/members/o_mp_buyer/ledger`)
    expect(ledger.status).toBe(200)
    expect((await api(`/${appid}/members/o_mp_buyer/badges`)).status).toBe(200)
    const grant = await api(`/${appid}/members/o_both/points?mp=1`, {
      method: 'POST',
      body: { delta: 7, reason: 'api' },
    })
    expect(grant.status).toBe(201)
    expect((await member(MP_APPID, 'o_both')).points_balance).toBe(7)
    expect((await member(appid, 'o_both')).points_balance).toBe(0)
    expect(await notices('o_both')).toEqual([])
    // the entry is the member's, under their appid like every other entry of theirs (a 绑定's,
    // a review's), so the account's weekly board and points figures do not count it as a
    // follower's; the same key again is a duplicate
    const entries = await get()
      .db.selectFrom('points_ledger')
      .select(['appid', 'delta'])
      .where('member_id', '=', (await member(MP_APPID, 'o_both')).id)
      .execute()
    expect(entries).toEqual([{ appid: MP_APPID, delta: 7 }])
    const body = { delta: 7, reason: 'api', idempotencyKey: 'mp-grant-once' }
    const once = await api(`/${appid}/members/o_both/points?mp=1`, { method: 'POST', body })
    const twice = await api(`/${appid}/members/o_both/points?mp=1`, { method: 'POST', body })
    expect([once.status, twice.status]).toEqual([201, 200])
    expect((await member(MP_APPID, 'o_both')).points_balance).toBe(14)
    const bad = await api(`/${appid}/members/o_mp_buyer/ledger?mp=yes`)
    expect(bad.status).toBe(400)
    expect(await bad.json()).toMatchObject({ message: 'mp: must be 1 (the mini-program member)' })
    // an invite QR is an OA QR: a follower's only
    const qr = await api(`/${appid}/members/o_mp_buyer/invite-qr`, { method: 'POST', body: {} })
    expect(qr.status).toBe(409)
  })

  it("links an order to a follower of another account on that account's page", async () => {
    const href = `/console/members/o_other_fan?appid=${other}`
    expect((await page(`/console/shop/orders/${ORDER_OTHER}`)).html).toContain(`href="${href}"`)
    expect((await page(href)).html).toContain(ORDER_OTHER)
  })

  it('sends an operator from a member a 绑定 left behind to the follower, granting nothing there', async () => {
    const { html } = await page('/console/members/o_mp_left?mp=1')
    expect(html).toContain('已通过“绑定”关联到粉丝')
    expect(html).toContain(`href="/console/members/o_fan_linked?appid=${appid}"`)
    expect(html).not.toContain('/points?')
    const grant = await postForm(app, '/console/members/o_mp_left/points?mp=1', op.cookie, {
      _csrf: op.csrf,
      delta: '5',
      reason: '补偿',
    })
    expect(grant.status).toBe(400)
    const api409 = await api(`/${appid}/members/o_mp_left/points`, {
      method: 'POST',
      body: { delta: 5, reason: 'api' },
    })
    expect(api409.status).toBe(409)
    expect(await api409.json()).toMatchObject({
      message: `linked by 绑定 to the follower o_fan_linked of ${appid}: act on them`,
    })
    expect((await member(MP_APPID, 'o_mp_left')).points_balance).toBe(0)
    expect((await api(`/${appid}/members/o_mp_left/ledger`)).status).toBe(200)
  })

  it("never shows one account's mini-program members to another account", async () => {
    expect((await page(`/console/members/o_mp_buyer?appid=${other}`)).status).toBe(404)
    expect((await page(`/console/members/o_mp_buyer?appid=${other}&mp=1`)).status).toBe(404)
    const found = await page(`/console/members?appid=${other}&q=${ORDER}`)
    expect(found.html).not.toContain('o_mp_buyer')
    expect((await api(`/${other}/members/o_mp_buyer/ledger`)).status).toBe(404)
    expect((await api(`/${other}/members/o_mp_buyer/ledger?mp=1`)).status).toBe(404)
  })

  it('links them with mp=1 from redemptions, transfers, reviews and a group buy they lead', async () => {
    // o_both: the openid names a follower too, so a link without mp=1 opens the follower
    const mp = await member(MP_APPID, 'o_both')
    const fan = await member(appid, 'o_both')
    const now = clock.now()
    const vip = await db()
      .selectFrom('products')
      .select('id')
      .where('appid', '=', appid)
      .where('sku', '=', 'vip-30')
      .executeTakeFirstOrThrow()
    const reward = await db()
      .insertInto('rewards')
      .values({
        appid,
        code: 901,
        name: '返现一元',
        cost: 10,
        stock: null,
        per_member_limit: null,
        created_at: now,
        kind: 'cashback',
        cashback_fen: 100,
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    const redeemed = (memberId: number, code: string) => ({
      appid,
      member_id: memberId,
      reward_id: reward.id,
      cost: 10,
      code,
      status: 'issued' as const,
      created_at: now,
      cancelled_at: null,
      request_key: null,
    })
    const [redemption] = await db()
      .insertInto('redemptions')
      .values([redeemed(mp.id, 'MPLINK0001'), redeemed(fan.id, 'FANLINK001')])
      .returning('id')
      .execute()
    await db()
      .insertInto('transfers')
      .values({
        appid,
        member_id: mp.id,
        redemption_id: redemption!.id,
        out_bill_no: 'QZT20261120MPLINK',
        pay_appid: MP_APPID,
        openid: 'o_both',
        amount_fen: 100,
        state: 'pending',
        request_body: null,
        package_info: null,
        transfer_bill_no: null,
        fail_reason: null,
        error: null,
        next_attempt_at: null,
        queried_at: null,
        accepted_at: null,
        settled_at: null,
        created_at: now,
        updated_at: now,
      })
      .execute()
    const order = await db()
      .insertInto('orders')
      .values({
        appid,
        out_trade_no: 'QZ20261120000103',
        member_id: mp.id,
        mp_openid: 'o_both',
        product_id: vip.id,
        kind: 'membership',
        description: 'VIP 会员 30 天',
        amount_fen: 3000,
        status: 'paid',
        paid_at: now,
        paid_total_fen: 3000,
        expires_at: now,
        created_at: now,
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    await db()
      .insertInto('product_reviews')
      .values({
        appid,
        member_id: mp.id,
        order_id: order.id,
        product_id: vip.id,
        rating: 5,
        body: '好用',
        created_at: now,
        hidden_at: null,
      })
      .execute()
    await db()
      .insertInto('group_buys')
      .values({
        appid,
        product_id: vip.id,
        leader_member_id: mp.id,
        status: 'open',
        size_required: 3,
        size_max: 5,
        expires_at: new Date(now.getTime() + 86_400_000),
        created_at: now,
        settled_at: null,
      })
      .execute()
    const mpHref = `href="/console/members/o_both?appid=${appid}&amp;mp=1"`
    for (const path of [
      '/console/rewards/redemptions',
      '/console/rewards/transfers',
      '/console/shop/reviews',
      '/console/shop/group-buys',
    ]) {
      const { status, html } = await page(`${path}?appid=${appid}`)
      expect(status, path).toBe(200)
      expect(html, path).toContain(mpHref)
    }
    // the group buy's leader is named and linked, not a bare openid
    expect((await page(`/console/shop/group-buys?appid=${appid}`)).html).toContain(
      `${mpHref}>小程序同号</a>`,
    )
    // the follower's own redemption still opens the follower
    expect((await page(`/console/rewards/redemptions?appid=${appid}`)).html).toContain(
      `href="/console/members/o_both?appid=${appid}"`,
    )
    // and the link opens the mini-program member, not the follower of the same openid
    const opened = await page(`/console/members/o_both?appid=${appid}&mp=1`)
    expect(opened.html).toContain('小程序同号')
    expect(opened.html).not.toContain('粉丝同号')
  })
})
