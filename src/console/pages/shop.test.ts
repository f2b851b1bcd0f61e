/**
 * 商城订单 over `app.request()`, with a shop whose WeChat Pay refuses refunds (so a refund stays in
 * the refund queue): every view renders; a product is created and edited through the API's
 * schemas; an order is refunded after a confirmation step (once, however often the confirmation
 * is sent) and shows queued; a mismatch is resolved; bad input and viewers are refused with
 * nothing changed — on every test database.
 */
import type { Hono } from 'hono'
import { beforeAll, expect, it } from 'vitest'
import { createRouter } from '../../../handlers/index.js'
import { manualClock, postForm, seedOperators, signIn } from '../../../test/console-kit.js'
import { forEachDatabase } from '../../../test/databases.js'
import { SAFE_ACCOUNT, testConfig } from '../../../test/server.js'
import { type AppDeps, createApp } from '../../app.js'
import { submitReview } from '../../community/reviews.js'
import { silentLogger } from '../../logger.js'
import { PayApiError, type PayGateway } from '../../pay/gateway.js'

const appid = SAFE_ACCOUNT.appid
const MCHID = '1900000109'

/** A gateway that answers only what the console calls: refunds, always refused (SYSTEM_ERROR). */
function refusingGateway(calls: string[]): PayGateway {
  const gateway: Partial<PayGateway> = {
    appid: 'wxmp00000000000001',
    mchid: MCHID,
    async refund(o) {
      calls.push(o.outRefundNo)
      throw new PayApiError('refund', 500, 'SYSTEM_ERROR', 'busy')
    },
  }
  return gateway as PayGateway
}

forEachDatabase('console: shop', (get) => {
  // Friday 2026-11-20 10:00 in Shanghai.
  const clock = manualClock(new Date('2026-11-20T02:00:00Z'))
  const refundCalls: string[] = []
  const unused = async (): Promise<never> => {
    throw new Error('not called by the console')
  }
  const shop: AppDeps['shop'] = {
    mpSecret: 'mp-secret',
    sessionSecret: 'session-secret-0123456789abcdef0123',
    apiV3Key: '0123456789abcdef0123456789abcdef',
    verifyKeys: new Map(),
    mpApi: { call: unused, unauthenticated: unused },
    settings: {
      appid,
      mpAppid: 'wxmp00000000000001',
      notifyUrl: 'https://example.test/pay/notify',
      orderMinutes: 15,
      groupBuy: { size: 3, max: 5, hours: 24 },
      pointsFreezeDays: 7,
    },
    gateway: refusingGateway(refundCalls),
  }
  let app: Hono
  let op: { cookie: string; csrf: string }
  let viewer: { cookie: string; csrf: string }
  const db = () => get().db
  const page = async (path: string, cookie = op.cookie) => {
    const res = await app.request(path, { headers: { cookie } })
    return { status: res.status, html: await res.text() }
  }
  const post = (path: string, fields: Record<string, string>, who = op) =>
    postForm(app, path, who.cookie, { _csrf: who.csrf, ...fields })
  const audits = (action: string) =>
    db()
      .selectFrom('audit_log')
      .select(['actor', 'target', 'details'])
      .where('action', '=', action)
      .orderBy('id')
      .execute()
  const refunds = () => db().selectFrom('refunds').selectAll().orderBy('id').execute()
  const ORDER = 'QZ20261120000001'

  beforeAll(async () => {
    await seedOperators(db(), clock.now())
    app = createApp({
      config: testConfig(),
      db: db(),
      router: createRouter(),
      logger: silentLogger,
      clock,
      shop,
      clientAddress: () => '203.0.113.8',
    })
    op = await signIn(app, 'op1')
    viewer = await signIn(app, 'viewer1')
    // The catalog is seeded on the first read; then a member, a paid order, a group buy, a bill.
    expect((await page('/console/shop')).status).toBe(200)
    const now = clock.now()
    const member = await db()
      .insertInto('members')
      .values({ appid, openid: 'o_buyer_1', first_seen_at: now, last_active_at: now })
      .returning('id')
      .executeTakeFirstOrThrow()
    const product = (sku: string) =>
      db()
        .selectFrom('products')
        .select('id')
        .where('appid', '=', appid)
        .where('sku', '=', sku)
        .executeTakeFirstOrThrow()
    const vip = await product('vip-30')
    const group = await product('group-gift')
    const buy = await db()
      .insertInto('group_buys')
      .values({
        appid,
        product_id: group.id,
        leader_member_id: member.id,
        status: 'open',
        size_required: 3,
        size_max: 5,
        joined: 2,
        paid: 1,
        expires_at: new Date(now.getTime() + 3600_000),
        created_at: now,
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    const order = (no: string, o: Record<string, unknown>) => ({
      appid,
      out_trade_no: no,
      member_id: member.id,
      mp_openid: 'o_mp_buyer_1',
      product_id: vip.id,
      kind: 'membership' as const,
      description: 'VIP 会员 30 天',
      amount_fen: 3000,
      status: 'paid' as const,
      expires_at: now,
      created_at: now,
      ...o,
    })
    await db()
      .insertInto('orders')
      .values([
        order(ORDER, { transaction_id: '4200000001', paid_at: now, paid_total_fen: 3000 }),
        order('QZ20261120000002', { status: 'pending' }),
        order('QZ20261120000003', {
          status: 'pending',
          product_id: group.id,
          kind: 'group_buy',
          description: '拼团礼盒',
          amount_fen: 1990,
          group_buy_id: buy.id,
        }),
      ])
      .execute()
    await db()
      .insertInto('pay_events')
      .values({
        id: 'evt-1',
        event_type: 'TRANSACTION.SUCCESS',
        reference: ORDER,
        outcome: 'paid',
        received_at: now,
      })
      .execute()
    const run = await db()
      .insertInto('reconciliation_runs')
      .values({
        appid,
        mchid: MCHID,
        bill_date: '2026-11-19',
        kind: 'trade',
        status: 'reconciled',
        line_count: 2,
        mismatch_count: 1,
        totals: JSON.stringify({
          summary: [{ column: '应结订单总金额', bill: '30.00', lines: '30.00', ok: true }],
          bill: { payments: { count: 2, fen: 6000 }, refunds: { count: 0, fen: 0 } },
          ours: { payments: { count: 1, fen: 3000 }, refunds: { count: 0, fen: 0 } },
        }),
        attempts: 1,
        fetched_at: now,
        reconciled_at: now,
        created_at: now,
        updated_at: now,
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    await db()
      .insertInto('reconciliation_mismatches')
      .values({
        run_id: run.id,
        kind: 'missing_here',
        key: 'QZ_UNKNOWN_9',
        out_trade_no: 'QZ_UNKNOWN_9',
        transaction_id: '4200000009',
        their_fen: 3000,
        detail: 'the bill lists a payment we have no order for',
        created_at: now,
        updated_at: now,
      })
      .execute()
  })

  it('renders products, group buys with progress, orders, an order, refunds and reconciliation', async () => {
    const products = await page('/console/shop')
    expect(products.html).toContain('限时秒杀：明前龙井 100g')
    expect(products.html).toContain('¥9.90')
    expect(products.html).toContain('新建商品')
    expect(products.html).toContain('aria-current="page">商城订单')
    expect(products.html.length).toBeLessThan(100_000)

    const groups = await page('/console/shop/group-buys')
    expect(groups.html).toContain('已付款 1 / 需 3 人（已加入 2，最多 5）')
    expect(groups.html).toContain('拼团中')

    const orders = await page('/console/shop/orders')
    expect(orders.html).toContain(ORDER)
    expect(orders.html).toContain('QZ20261120000002')
    const paid = await page('/console/shop/orders?status=paid')
    expect(paid.html).toContain(ORDER)
    expect(paid.html).not.toContain('QZ20261120000002')
    const found = await page(`/console/shop/orders?q=${ORDER}`)
    expect(found.html).toContain(`/console/shop/orders/${ORDER}`)
    expect(found.html).not.toContain('QZ20261120000003')
    expect((await page('/console/shop/orders?q=4200000001')).html).toContain(ORDER)
    expect((await page('/console/shop/orders?q=nope')).html).toContain('没有订单号为 nope 的订单')

    const order = await page(`/console/shop/orders/${ORDER}`)
    expect(order.html).toContain('VIP 会员 30 天')
    expect(order.html).toContain('TRANSACTION.SUCCESS')
    expect(order.html).toContain('最多可退 ¥30.00')
    expect((await page('/console/shop/orders/QZ20261120000003')).html).toContain(
      '已付款 1 / 需 3 人',
    )
    expect((await page('/console/shop/orders/QZ_NONE')).status).toBe(404)

    const refundsZh = (await page('/console/shop/refunds')).html
    expect(refundsZh).toContain('退款队列')
    expect(refundsZh).toContain('<li>已关闭：0</li>')
    // English punctuation in English (the full-width colon was written into the page)
    const refundsEn = (await page('/console/shop/refunds?lang=en')).html
    expect(refundsEn).toContain('<li>Closed: 0</li>')
    expect(refundsEn).not.toContain('：')
    const rec = await page('/console/shop/reconciliation?date=2026-11-19')
    expect(rec.html).toContain('收款 2 笔 ¥60.00')
    expect(rec.html).toContain('收款 1 笔 ¥30.00')
    expect(rec.html).toContain('账单有、本系统无此付款')
    expect(rec.html).toContain('标记已解决')
    expect((await page('/console/shop/reconciliation?date=2026-13-40')).status).toBe(400)

    const en = await page('/console/shop/orders?lang=en')
    expect(en.html).toContain('Order number')
  })

  it('lists reviews by product and state; hides and shows one again, points back and forth', async () => {
    const buyer = await db()
      .selectFrom('members')
      .select('id')
      .where('appid', '=', appid)
      .where('openid', '=', 'o_buyer_1')
      .executeTakeFirstOrThrow()
    const balance = async () =>
      (
        await db()
          .selectFrom('members')
          .select('points_balance')
          .where('id', '=', buyer.id)
          .executeTakeFirstOrThrow()
      ).points_balance
    const before = await balance()
    const created = await submitReview(db(), {
      memberId: buyer.id,
      outTradeNo: ORDER,
      rating: 4,
      text: '会员权益很实用',
      now: clock.now(),
      timeZone: 'Asia/Shanghai',
    })
    if (created.status !== 'created') throw new Error(created.status)
    expect(created.points).toBe(20)
    const id = created.reviewId
    const list = await page('/console/shop/reviews')
    expect(list.status).toBe(200)
    expect(list.html).toContain('会员权益很实用')
    expect(list.html).toContain('★★★★ 4/5')
    expect(list.html).toContain('aria-current="page">评价')
    expect(list.html).toContain(`action="/console/shop/reviews/${id}/hide"`)
    expect((await page('/console/shop/reviews?sku=vip-30&status=visible')).html).toContain(
      '会员权益很实用',
    )
    expect((await page('/console/shop/reviews?sku=group-gift')).html).not.toContain(
      '会员权益很实用',
    )
    expect((await page('/console/shop/reviews?status=hidden')).html).not.toContain('会员权益很实用')

    const hidden = await post(`/console/shop/reviews/${id}/hide?status=visible`, {})
    expect(hidden.status).toBe(303)
    expect(hidden.headers.get('location')).toBe(
      `/console/shop/reviews?status=visible&done=hidden&id=${id}&points=20`,
    )
    expect(await balance()).toBe(before)
    const shown = await page(hidden.headers.get('location')!)
    expect(shown.html).toContain(`评价 #${id} 已隐藏，收回 20 分。`)
    const hiddenList = await page('/console/shop/reviews?status=hidden')
    expect(hiddenList.html).toContain('会员权益很实用')
    expect(hiddenList.html).toContain('收回 20 分')
    expect(hiddenList.html).toContain(`action="/console/shop/reviews/${id}/unhide?status=hidden"`)
    // a second hide changes nothing
    const again = await post(`/console/shop/reviews/${id}/hide`, {})
    expect(again.headers.get('location')).toContain('done=already_hidden')
    expect(await balance()).toBe(before)

    expect((await post(`/console/shop/reviews/${id}/unhide`, {})).status).toBe(303)
    expect(await balance()).toBe(before + 20)
    expect((await audits('review.hide')).map((a) => [a.actor, a.target])).toEqual([
      ['op1', `${id}`],
    ])
    expect((await audits('review.unhide')).map((a) => a.target)).toEqual([`${id}`])

    // viewers see the list without the buttons and cannot post; unknown ids are 404
    const seen = await page('/console/shop/reviews', viewer.cookie)
    expect(seen.html).toContain('会员权益很实用')
    expect(seen.html).not.toContain(`/console/shop/reviews/${id}/hide`)
    expect((await post(`/console/shop/reviews/${id}/hide`, {}, viewer)).status).toBe(403)
    expect((await post('/console/shop/reviews/999999/hide', {})).status).toBe(404)
    expect((await post('/console/shop/reviews/x/hide', {})).status).toBe(404)
    expect(await balance()).toBe(before + 20)
  })

  it('creates a flash sale and edits it; bad input is refused on the form, nothing changed', async () => {
    const fields = {
      sku: 'flash-cake',
      kind: 'flash_sale',
      name: '限时秒杀：月饼',
      price: '19.9',
      stock: '50',
      perMemberLimit: '2',
      startsAt: '2026-11-21T10:00',
      endsAt: '2026-11-21T12:00',
    }
    const bad = await post('/console/shop/products', { ...fields, price: '19.999', name: '' })
    expect(bad.status).toBe(400)
    const html = await bad.text()
    expect(html).toContain('价格须为 0.01–1000000 元')
    expect(html).toContain('名称须为 1–127 个字')
    expect(html).toContain('value="flash-cake"')
    const backwards = await post('/console/shop/products', {
      ...fields,
      endsAt: '2026-11-21T09:00',
    })
    expect(backwards.status).toBe(400)
    expect(await backwards.text()).toContain('结束时间须晚于开始时间')
    const noDays = await post('/console/shop/products', { ...fields, kind: 'membership' })
    expect(await noDays.text()).toContain('会员须填写 1–3660 天')
    expect(await audits('product.create')).toEqual([])

    const ok = await post('/console/shop/products', fields)
    expect(ok.status).toBe(303)
    expect(ok.headers.get('location')).toBe('/console/shop?created=flash-cake')
    const row = await db()
      .selectFrom('products')
      .selectAll()
      .where('sku', '=', 'flash-cake')
      .executeTakeFirstOrThrow()
    expect(row).toMatchObject({
      kind: 'flash_sale',
      price_fen: 1990,
      stock: 50,
      per_member_limit: 2,
    })
    expect(row.starts_at?.toISOString()).toBe('2026-11-21T02:00:00.000Z')
    expect((await audits('product.create'))[0]).toMatchObject({
      actor: 'op1',
      target: 'flash-cake',
    })
    const again = await post('/console/shop/products', fields)
    expect(await again.text()).toContain('这个 SKU 已存在')

    const edit = await page('/console/shop/products/flash-cake')
    expect(edit.html).toContain('value="2026-11-21T10:00"')
    expect(edit.html).toContain('name="stockShown" value="50"')
    // Orders sell 4 while the form is open: a save that leaves the stock as shown keeps 46.
    await db().updateTable('products').set({ stock: 46 }).where('sku', '=', 'flash-cake').execute()
    const renamed = await post('/console/shop/products/flash-cake', {
      ...fields,
      name: '蛋糕（限时）',
      stock: '50',
      stockShown: '50',
      enabled: '1',
    })
    expect(renamed.status).toBe(303)
    expect(
      await db()
        .selectFrom('products')
        .select(['name', 'stock'])
        .where('sku', '=', 'flash-cake')
        .executeTakeFirstOrThrow(),
    ).toEqual({ name: '蛋糕（限时）', stock: 46 })
    const saved = await post('/console/shop/products/flash-cake', {
      ...fields,
      name: '蛋糕（限时）',
      price: '9.90',
      stock: '',
      stockShown: '46',
      enabled: '1',
    })
    expect(saved.status).toBe(303)
    const after = await db()
      .selectFrom('products')
      .selectAll()
      .where('sku', '=', 'flash-cake')
      .executeTakeFirstOrThrow()
    expect(after).toMatchObject({ price_fen: 990, stock: null, enabled: true })
    expect(after.starts_at?.toISOString()).toBe('2026-11-21T02:00:00.000Z')
    expect(JSON.parse(String((await audits('product.update'))[1]?.details))).toEqual({
      priceFen: 990,
      stock: null,
    })
    const refused = await post('/console/shop/products/flash-cake', { ...fields, stock: '-1' })
    expect(refused.status).toBe(400)
    expect(await refused.text()).toContain('库存须为 0–10000000 的整数')
  })

  it('refunds an order after a confirmation, once; the refund shows in the queue', async () => {
    const path = `/console/shop/orders/${ORDER}/refunds`
    const key = 'console-key-1'
    // Bad amounts and a missing reason change nothing.
    for (const [fields, text] of [
      [{ amount: '0', reason: '重复下单', key }, '退款金额须为 0.01 元以上'],
      [{ amount: '1.234', reason: '重复下单', key }, '退款金额须为 0.01 元以上'],
      [{ amount: '10', reason: '', key }, '请填写退款原因'],
      [{ amount: '30.01', reason: '重复下单', key }, '最多还可退 ¥30.00'],
      [{ amount: '10', reason: '重复下单', key: 'bad key!' }, '表单已失效'],
    ] as const) {
      const res = await post(path, fields)
      expect(res.status).toBe(400)
      expect(await res.text()).toContain(text)
    }
    // The review step shows what will happen and changes nothing.
    const review = await post(path, { amount: '10', reason: '重复下单', key })
    expect(review.status).toBe(200)
    const html = await review.text()
    expect(html).toContain('将通过微信支付把 ¥10.00 退回订单')
    expect(html).toContain('name="confirm" value="1"')
    expect(await refunds()).toEqual([])

    const confirm = { amount: '10.00', reason: '重复下单', key, confirm: '1' }
    const done = await post(path, confirm)
    expect(done.status).toBe(303)
    expect(done.headers.get('location')).toMatch(/\?refund=RK-[0-9a-f]{32}&state=queued$/)
    const [refund] = await refunds()
    expect(refund).toMatchObject({ amount_fen: 1000, status: 'requested', attempts: 1 })
    expect(refund!.next_attempt_at!.getTime()).toBe(clock.now().getTime() + 60_000)
    expect(refundCalls).toEqual([refund!.out_refund_no])
    expect((await audits('order.refund'))[0]).toMatchObject({ actor: 'op1', target: ORDER })

    // The same confirmation again (a double click): the same refund, not a second one — and not
    // sent again before its turn in the refund queue (one sender at a time: refunds.ts).
    const twice = await post(path, confirm)
    expect(twice.headers.get('location')).toContain('existing=1')
    expect(await refunds()).toHaveLength(1)
    expect(refundCalls).toEqual([refund!.out_refund_no])

    const order = await page(done.headers.get('location')!)
    expect(order.html).toContain('已提交退款 RK-')
    expect(order.html).toContain('微信支付未受理，重试中')
    expect(order.html).toContain('已尝试 1/10 次')
    expect(order.html).toContain('最多可退 ¥20.00')
    const queue = await page('/console/shop/refunds?view=open')
    expect(queue.html).toContain(refund!.out_refund_no)
    expect(queue.html).toContain('下次发送 2026-11-20 10:01')
    expect((await page('/console/shop/refunds?view=done')).html).not.toContain(
      refund!.out_refund_no,
    )
    // An unpaid order has nothing to refund.
    const unpaid = await post('/console/shop/orders/QZ20261120000002/refunds', {
      amount: '1',
      reason: '测试',
      key: 'k2',
      confirm: '1',
    })
    expect(unpaid.status).toBe(400)
    expect(await unpaid.text()).toContain('此订单没有可退的金额')
    expect(await refunds()).toHaveLength(1)
    // An abnormal refund still holds its money (WeChat Pay keeps it until an operator completes
    // it); a failed one (WeChat Pay has no such refund) does not.
    const set = (status: 'abnormal' | 'failed' | 'requested') =>
      db().updateTable('refunds').set({ status }).where('id', '=', refund!.id).execute()
    await set('abnormal')
    expect((await page(`/console/shop/orders/${ORDER}`)).html).toContain('最多可退 ¥20.00')
    await set('failed')
    expect((await page(`/console/shop/orders/${ORDER}`)).html).toContain('最多可退 ¥30.00')
    await set('requested')
  })

  it('resolves a mismatch with a note; an empty note and a bill day not ready are refused', async () => {
    const [m] = await db().selectFrom('reconciliation_mismatches').select('id').execute()
    const path = `/console/shop/reconciliation/mismatches/${m!.id}`
    const empty = await post(path, { note: '  ', date: '2026-11-19' })
    expect(empty.status).toBe(400)
    expect(await empty.text()).toContain('请填写处理说明')
    const notReady = await post('/console/shop/reconciliation', { date: '2026-11-20' })
    expect(notReady.status).toBe(400)
    expect(await notReady.text()).toContain('微信支付目前只有 2026-11-19 及之前的账单')
    expect(await audits('reconciliation.run')).toEqual([])
    const badDate = await post('/console/shop/reconciliation', { date: 'yesterday' })
    expect(badDate.status).toBe(400)
    expect(
      (await post('/console/shop/reconciliation/mismatches/999999', { note: 'x' })).status,
    ).toBe(404)

    const ok = await post(path, { note: '客户重复支付，已线下退款', date: '2026-11-19' })
    expect(ok.status).toBe(303)
    expect(ok.headers.get('location')).toBe(
      `/console/shop/reconciliation?date=2026-11-19&resolved=${m!.id}`,
    )
    const row = await db()
      .selectFrom('reconciliation_mismatches')
      .selectAll()
      .executeTakeFirstOrThrow()
    expect(row).toMatchObject({ status: 'resolved', note: '客户重复支付，已线下退款' })
    expect((await audits('reconciliation.resolve'))[0]).toMatchObject({ actor: 'op1' })
    const rec = await page(ok.headers.get('location')!)
    expect(rec.html).toContain(`已标记差异 #${m!.id} 为已解决`)
    expect(rec.html).toContain('未解决的差异（0）')
  })

  it('refuses a viewer (403) and a form without its CSRF token (403); nothing changes', async () => {
    const before = (await refunds()).length
    const attempts = [
      ['/console/shop/products', { sku: 'viewer-made', kind: 'flash_sale', name: 'x', price: '1' }],
      ['/console/shop/products/flash-tea', { name: 'x', price: '1' }],
      [
        `/console/shop/orders/${ORDER}/refunds`,
        { amount: '1', reason: 'x', key: 'v1', confirm: '1' },
      ],
      ['/console/shop/reconciliation', { date: '2026-11-18' }],
      ['/console/shop/reconciliation/mismatches/1', { note: 'x' }],
    ] as const
    for (const [path, fields] of attempts)
      expect((await post(path, fields, viewer)).status).toBe(403)
    const forged = await postForm(app, `/console/shop/orders/${ORDER}/refunds`, op.cookie, {
      amount: '1',
      reason: 'x',
      key: 'forged',
      confirm: '1',
    })
    expect(forged.status).toBe(403)
    expect((await refunds()).length).toBe(before)
    const tea = await db()
      .selectFrom('products')
      .select('name')
      .where('sku', '=', 'flash-tea')
      .executeTakeFirstOrThrow()
    expect(tea.name).toBe('限时秒杀：明前龙井 100g')
    // A viewer sees the pages without forms.
    const order = await page(`/console/shop/orders/${ORDER}`, viewer.cookie)
    expect(order.status).toBe(200)
    expect(order.html).not.toContain('name="amount"')
    expect((await page('/console/shop', viewer.cookie)).html).not.toContain('新建商品')
  })

  it('refuses a NUL in a search, an order number or a product form with a 400 page; nothing changes', async () => {
    for (const path of ['/console/shop/orders?q=%00', '/console/shop/orders/%00']) {
      const res = await page(path)
      expect(res.status, path).toBe(400)
      expect(res.html, path).toContain('不能包含 NUL 字符')
    }
    const edited = await post('/console/shop/products/flash-tea', { name: 'tea\u0000', price: '1' })
    expect(edited.status).toBe(400)
    const tea = await db()
      .selectFrom('products')
      .select(['name', 'price_fen'])
      .where('sku', '=', 'flash-tea')
      .executeTakeFirstOrThrow()
    expect(tea.name).toBe('限时秒杀：明前龙井 100g')
  })

  it('says the shop is not configured when it is not', async () => {
    const bare = createApp({
      config: testConfig(),
      db: db(),
      router: createRouter(),
      logger: silentLogger,
      clock,
      clientAddress: () => '203.0.113.8',
    })
    const { cookie } = await signIn(bare, 'op1')
    const res = await bare.request('/console/shop/orders', { headers: { cookie } })
    expect(res.status).toBe(404)
    expect(await res.text()).toContain('商城未配置')
  })
})
