/**
 * 积分商城 over `app.request()`: the rules with their caps and a rule edited through `putRule`,
 * the levels and their distribution (rollup, else live), the catalog with a reward created and
 * changed, a redemption found by its code and cancelled after the confirmation step (points back
 * through the ledger, the audit naming the operator), the transfers by state, and the refusals
 * (viewer, bad input: nothing changed) — on every test database.
 */
import type { Hono } from 'hono'
import { beforeAll, expect, it } from 'vitest'
import {
  consoleTestApp,
  manualClock,
  postForm,
  seedOperators,
  signIn,
} from '../../../test/console-kit.js'
import { forEachDatabase } from '../../../test/databases.js'
import { SAFE_ACCOUNT } from '../../../test/server.js'
import { effectiveRules } from '../../admin/reads/point-rules.js'
import { changePoints } from '../../community/points-ledger.js'
import { redeem } from '../../community/rewards.js'
import { addOperator } from '../operators.js'

const appid = SAFE_ACCOUNT.appid
const TZ = 'Asia/Shanghai'

forEachDatabase('console: rewards', (get) => {
  const clock = manualClock(new Date('2026-11-20T02:00:00Z'))
  let app: Hono
  let op: { cookie: string; csrf: string }
  let viewer: { cookie: string; csrf: string }
  let memberId: number
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
  const reward = (code: number) =>
    db()
      .selectFrom('rewards')
      .selectAll()
      .where('appid', '=', appid)
      .where('code', '=', code)
      .executeTakeFirst()
  const rule = async (name: string) =>
    (await effectiveRules(db(), appid)).find((r) => r.rule === name)
  const redeemGift = async () => {
    const r = await redeem(db(), { appid, memberId, code: 2, now: clock.now(), timeZone: TZ })
    if (r.status !== 'redeemed') throw new Error(`redeem: ${r.status}`)
    return r
  }

  beforeAll(async () => {
    await seedOperators(db(), clock.now())
    app = consoleTestApp(db(), clock)
    op = await signIn(app, 'op1')
    viewer = await signIn(app, 'viewer1')
    memberId = (
      await db()
        .insertInto('members')
        .values({ appid, openid: 'o_rewards_1', first_seen_at: clock.now(), subscribed: true })
        .returning('id')
        .executeTakeFirstOrThrow()
    ).id
    const seed = { appid, memberId, rule: 'grant', now: clock.now(), timeZone: TZ }
    await changePoints(db(), { ...seed, idempotencyKey: 'seed-rewards' }, 2000)
  })

  it('shows the rules with their caps and the levels counted live before any rollup', async () => {
    const { status, html } = await page('/console/rewards')
    expect(status).toBe(200)
    expect(html).toContain('积分规则与上限')
    expect(html).toMatch(/签到 <code class="muted">checkin<\/code>[\s\S]*?每天 1 次/)
    expect(html).toContain('每人终身 1 次')
    // Levels: thresholds and multipliers from src/community/levels.ts; o_rewards_1 is silver live.
    expect(html).toContain('人数为实时统计')
    expect(html).toMatch(/银牌<\/td><td data-label="累计积分门槛" class="num">1,000<\/td>/)
    expect(html).toMatch(/银牌[\s\S]*?×2[\s\S]*?"关注者人数" class="num">1</)
    // The rollup's counts win once a day is built.
    await db()
      .insertInto('analytics_daily')
      .values([
        { appid, metric: 'members.level', day: '2026-11-19', dim: 'bronze', value: 120 },
        { appid, metric: 'members.level', day: '2026-11-19', dim: 'gold', value: 7 },
      ])
      .execute()
    const built = (await page('/console/rewards')).html
    expect(built).toContain('人数为 2026-11-19 日汇总的已关注会员')
    expect(built).toMatch(/金牌[\s\S]*?"关注者人数" class="num">7</)
    expect(built.length).toBeLessThan(100_000)
    const en = (await page('/console/rewards?lang=en')).html
    expect(en).toContain('Points rules and caps')
  })

  it('edits a rule through putRule (audited with the operator); bad input changes nothing', async () => {
    const form = (await page('/console/rewards?rule=checkin')).html
    expect(form).toContain('修改规则：签到')
    expect(form).toContain('<label for="rule-points">')

    const bad = await post('/console/rewards/rules/checkin', {
      points: 'many',
      capCount: '2',
      capPeriod: '',
    })
    expect(bad.status).toBe(400)
    const badHtml = await bad.text()
    expect(badHtml).toContain('积分须为 1–100000 的整数')
    expect(badHtml).toContain('value="many"')
    const half = await post('/console/rewards/rules/checkin', { points: '8', capCount: '2' })
    expect(half.status).toBe(400)
    expect(await half.text()).toContain('上限次数和周期须同时填写或同时留空')
    expect(await rule('checkin')).toMatchObject({ points: 5, overridden: false })
    expect(await audits('rule.update')).toEqual([])
    const unknown = await post('/console/rewards/rules/nope', { points: '1' })
    expect(unknown.status).toBe(404)

    const res = await post('/console/rewards/rules/checkin', {
      points: '8',
      capCount: '2',
      capPeriod: 'day',
      enabled: '1',
    })
    expect(res.status).toBe(303)
    expect(res.headers.get('location')).toBe('/console/rewards?saved=checkin')
    expect(await rule('checkin')).toMatchObject({
      points: 8,
      capCount: 2,
      capPeriod: 'day',
      enabled: true,
      overridden: true,
    })
    expect(await audits('rule.update')).toEqual([
      expect.objectContaining({ actor: 'op1', target: 'checkin' }),
    ])
    const after = (await page('/console/rewards?saved=checkin')).html
    expect(after).toContain('已保存规则 checkin')
    expect(after).toMatch(/checkin<\/code>[\s\S]*?每天 2 次[\s\S]*?本公众号/)
  })

  it('creates and edits a reward; bad input and a taken code change nothing', async () => {
    const list = await page('/console/rewards/catalog')
    expect(list.status).toBe(200)
    expect(list.html).toContain('50元返现')
    expect(list.html).toContain('返现 ¥50.00')

    const bad = await post('/console/rewards/catalog', {
      code: '7',
      name: '',
      cost: '0',
      stock: '-1',
      cashback: '0.05',
    })
    expect(bad.status).toBe(400)
    const html = await bad.text()
    for (const text of ['名称须为 1–60 个字', '所需积分须为正整数', '库存须为非负整数', '返现须为'])
      expect(html).toContain(text)
    expect(await reward(7)).toBeUndefined()
    const taken = await post('/console/rewards/catalog', { code: '1', name: '重复', cost: '10' })
    expect(taken.status).toBe(400)
    expect(await taken.text()).toContain('这个编号已被使用')
    expect((await reward(1))!.name).toBe('10元优惠券')

    const res = await post('/console/rewards/catalog', {
      code: '7',
      name: '定制马克杯',
      cost: '300',
      stock: '20',
      perMemberLimit: '2',
    })
    expect(res.status).toBe(303)
    expect(res.headers.get('location')).toBe('/console/rewards/catalog?created=7')
    expect(await reward(7)).toMatchObject({
      name: '定制马克杯',
      cost: 300,
      stock: 20,
      per_member_limit: 2,
      kind: 'code',
      enabled: true,
    })
    expect(await audits('reward.create')).toEqual([
      expect.objectContaining({ actor: 'op1', target: '7' }),
    ])

    // The edit form carries the stock it showed; members redeem 3 while it is open; a save that
    // leaves the stock field as shown keeps the lowered stock (it was written back before).
    const form = (await page('/console/rewards/catalog?edit=7')).html
    expect(form).toContain('name="stockShown" value="20"')
    await db().updateTable('rewards').set({ stock: 17 }).where('code', '=', 7).execute()
    const rename = await post('/console/rewards/catalog/7', {
      name: '定制马克杯（大）',
      cost: '300',
      stock: '20',
      stockShown: '20',
      perMemberLimit: '2',
      enabled: '1',
    })
    expect(rename.status).toBe(303)
    expect(await reward(7)).toMatchObject({ name: '定制马克杯（大）', stock: 17 })
    const edit = await post('/console/rewards/catalog/7', {
      name: '定制马克杯',
      cost: '300',
      stock: '',
      stockShown: '17',
      perMemberLimit: '2',
    })
    expect(edit.status).toBe(303)
    expect(await reward(7)).toMatchObject({ stock: null, enabled: false })
    const badEdit = await post('/console/rewards/catalog/7', {
      name: '杯',
      cost: 'x',
      enabled: '1',
    })
    expect(badEdit.status).toBe(400)
    expect(await badEdit.text()).toContain('所需积分须为正整数')
    expect(await reward(7)).toMatchObject({ name: '定制马克杯', cost: 300, enabled: false })
    expect(await audits('reward.update')).toHaveLength(2)
    expect((await post('/console/rewards/catalog/99', { name: 'x', cost: '1' })).status).toBe(404)
  })

  it('leaves what a reward costs to owners and operators without a grant limit', async () => {
    await addOperator(db(), {
      name: 'op_limited',
      role: 'operator',
      password: 'op_limited-password',
      dailyGrantLimit: 100,
      now: clock.now(),
    })
    const limited = await signIn(app, 'op_limited')
    const refusal = '你的账号设有每日发放上限，不能修改积分数值'
    // a reward for 1 point (a 50元返现 among them) would turn the limit's 100 into money
    const create = await post(
      '/console/rewards/catalog',
      { code: '8', name: '一分钱返现', cost: '1', cashback: '50' },
      limited,
    )
    expect(create.status).toBe(403)
    expect(await create.text()).toContain(refusal)
    expect(await reward(8)).toBeUndefined()
    const before = (await reward(1))!
    const cheaper = await post(
      '/console/rewards/catalog/1',
      { name: before.name, cost: '1', enabled: '1' },
      limited,
    )
    expect(cheaper.status).toBe(403)
    expect(await reward(1)).toMatchObject({ cost: before.cost })
    // anything but the cost is theirs to edit
    const rename = await post(
      '/console/rewards/catalog/1',
      { name: `${before.name}（新）`, cost: String(before.cost), enabled: '1' },
      limited,
    )
    expect(rename.status).toBe(303)
    expect(await reward(1)).toMatchObject({ name: `${before.name}（新）`, cost: before.cost })
    await db().updateTable('rewards').set({ name: before.name }).where('code', '=', 1).execute()
  })

  it('shows an operator with a grant limit the rules and costs read-only, offering no form the server refuses', async () => {
    await addOperator(db(), {
      name: 'op_limited_ro',
      role: 'operator',
      password: 'op_limited_ro-password',
      dailyGrantLimit: 100,
      now: clock.now(),
    })
    const limited = await signIn(app, 'op_limited_ro')
    const note = '你的账号设有每日发放上限，不能修改积分数值'
    // an operator without a limit is offered the rule form and the reward forms
    const opRules = await page('/console/rewards?rule=checkin')
    expect(opRules.html).toContain('id="rule-points"')
    expect(opRules.html).toContain('修改规则')
    expect((await page('/console/rewards/catalog')).html).toContain('id="new-cost"')
    expect((await page('/console/rewards/catalog?edit=1')).html).not.toMatch(
      /<input id="edit-cost"[^>]*readonly/,
    )
    // the limited operator sees the rules with the reason, and no edit link nor form
    const rules = await page('/console/rewards?rule=checkin', limited.cookie)
    expect(rules.status).toBe(200)
    expect(rules.html).toContain(note)
    expect(rules.html).not.toContain('id="rule-points"')
    expect(rules.html).not.toContain('修改规则')
    // no new reward (its cost is refused), and a reward's cost shown read-only
    const catalog = await page('/console/rewards/catalog', limited.cookie)
    expect(catalog.html).not.toContain('id="new-cost"')
    expect(catalog.html).toContain(note)
    const edit = await page('/console/rewards/catalog?edit=1', limited.cookie)
    expect(edit.html).toMatch(/<input id="edit-cost"[^>]*readonly/)
    expect(edit.html).toMatch(/<input id="edit-name"/)
    // the edit form as shown saves (the cost comes back unchanged); the server still refuses a cost
    const before = (await reward(1))!
    const saved = await post(
      '/console/rewards/catalog/1',
      {
        name: before.name,
        cost: String(before.cost),
        stock: before.stock === null ? '' : String(before.stock),
        stockShown: before.stock === null ? '' : String(before.stock),
        perMemberLimit: before.per_member_limit === null ? '' : String(before.per_member_limit),
        enabled: '1',
      },
      limited,
    )
    expect(saved.status).toBe(303)
    // an owner sets another cost while the limited operator's form still shows the old one: their
    // rename saves, and leaves the owner's cost
    await db()
      .updateTable('rewards')
      .set({ cost: before.cost + 7 })
      .where('code', '=', 1)
      .execute()
    const stale = await post(
      '/console/rewards/catalog/1',
      {
        name: `${before.name}·`,
        cost: String(before.cost),
        costShown: String(before.cost),
        stock: before.stock === null ? '' : String(before.stock),
        stockShown: before.stock === null ? '' : String(before.stock),
        perMemberLimit: before.per_member_limit === null ? '' : String(before.per_member_limit),
        enabled: '1',
      },
      limited,
    )
    expect(stale.status).toBe(303)
    expect(await reward(1)).toMatchObject({ name: `${before.name}·`, cost: before.cost + 7 })
    await db() // as it was, for the tests after this one
      .updateTable('rewards')
      .set({ name: before.name, cost: before.cost })
      .where('code', '=', 1)
      .execute()
    expect((await post('/console/rewards/rules/checkin', { points: '9' }, limited)).status).toBe(
      403,
    )
  })

  it('finds a redemption by its code and cancels it after confirming: points back, audited', async () => {
    const r = await redeemGift()
    const found = await page(`/console/rewards/redemptions?code=${r.code.toLowerCase()}`)
    expect(found.status).toBe(200)
    expect(found.html).toContain(`兑换码 ${r.code}`)
    expect(found.html).toContain('2 精美礼品')
    expect(found.html).toContain(`/console/rewards/redemptions/${r.redemptionId}/cancel`)
    const missing = await page('/console/rewards/redemptions?code=NOPE000000')
    expect(missing.html).toContain('没有兑换码为 NOPE000000 的兑换')
    const odd = await page('/console/rewards/redemptions?code=%3Cscript%3E')
    expect(odd.status).toBe(200)
    expect(odd.html).toContain('兑换码只含字母和数字')

    const confirm = await page(`/console/rewards/redemptions/${r.redemptionId}/cancel`)
    expect(confirm.status).toBe(200)
    expect(confirm.html).toContain('取消后 500 积分退回会员')
    const stock = (await reward(2))!.stock

    const res = await post(`/console/rewards/redemptions/${r.redemptionId}/cancel`, {})
    expect(res.status).toBe(303)
    expect(res.headers.get('location')).toBe(
      `/console/rewards/redemptions?code=${r.code}&done=cancelled`,
    )
    const refund = await db()
      .selectFrom('points_ledger')
      .select(['delta', 'rule', 'balance_after'])
      .where('idempotency_key', '=', `refund:${r.redemptionId}`)
      .executeTakeFirstOrThrow()
    expect(refund).toEqual({ delta: 500, rule: 'redeem_refund', balance_after: 2000 })
    expect((await reward(2))!.stock).toBe(stock! + 1)
    expect(await audits('redemption.cancel')).toEqual([
      expect.objectContaining({ actor: 'op1', target: String(r.redemptionId) }),
    ])
    const done = (await page(res.headers.get('location')!)).html
    expect(done).toContain(`已取消兑换 ${r.code}，积分已退回`)
    expect(done).toContain('+500，退回后余额 2,000')
    expect(done).toContain('已取消')

    const again = await post(`/console/rewards/redemptions/${r.redemptionId}/cancel`, {})
    expect(again.headers.get('location')).toContain('done=already_cancelled')
    expect(await audits('redemption.cancel')).toHaveLength(1)
    expect((await post('/console/rewards/redemptions/999999/cancel', {})).status).toBe(404)
  })

  it('refuses a viewer every action (403) and leaves everything as it was', async () => {
    const r = await redeemGift()
    const tries = [
      post('/console/rewards/rules/daily_login', { points: '99' }, viewer),
      post('/console/rewards/catalog', { code: '8', name: '只读', cost: '1' }, viewer),
      post('/console/rewards/catalog/1', { name: '改名', cost: '1' }, viewer),
      post(`/console/rewards/redemptions/${r.redemptionId}/cancel`, {}, viewer),
    ]
    for (const res of await Promise.all(tries)) {
      expect(res.status).toBe(403)
      expect(await res.text()).toContain('只读')
    }
    expect(
      (await page(`/console/rewards/redemptions/${r.redemptionId}/cancel`, viewer.cookie)).status,
    ).toBe(403)
    expect((await rule('daily_login'))!.points).toBe(10)
    expect(await reward(8)).toBeUndefined()
    expect((await reward(1))!.name).toBe('10元优惠券')
    const row = await db()
      .selectFrom('redemptions')
      .select('status')
      .where('id', '=', r.redemptionId)
      .executeTakeFirstOrThrow()
    expect(row.status).toBe('issued')
    // The viewer reads every page, with no edit links or cancel buttons.
    for (const path of ['', '/catalog', '/redemptions', '/transfers']) {
      const seen = await page(`/console/rewards${path}`, viewer.cookie)
      expect(seen.status).toBe(200)
      expect(seen.html).not.toContain('修改</a>')
      expect(seen.html).not.toContain('/cancel"')
    }
    // And a form without its CSRF token is refused too.
    const forged = await postForm(app, '/console/rewards/rules/daily_login', op.cookie, {
      points: '99',
    })
    expect(forged.status).toBe(403)
    expect((await rule('daily_login'))!.points).toBe(10)
  })

  it('lists the cashback transfers by state, paged; an unknown state is refused', async () => {
    const cashback = (await reward(4))!
    const now = clock.now()
    for (const [i, state] of (['wait_user_confirm', 'success', 'fail'] as const).entries()) {
      const { id } = await db()
        .insertInto('redemptions')
        .values({
          appid,
          member_id: memberId,
          reward_id: cashback.id,
          cost: 5000,
          code: `CASHBACK0${i}`,
          status: 'issued',
          created_at: now,
        })
        .returning('id')
        .executeTakeFirstOrThrow()
      await db()
        .insertInto('transfers')
        .values({
          appid,
          member_id: memberId,
          redemption_id: id,
          out_bill_no: `QZBILL${i}`,
          pay_appid: 'wx_mp',
          openid: 'o_mp_rewards',
          amount_fen: 5000,
          state,
          fail_reason: state === 'fail' ? 'NAME_NOT_CORRECT' : null,
          created_at: now,
          updated_at: now,
        })
        .execute()
    }
    const all = await page('/console/rewards/transfers')
    expect(all.status).toBe(200)
    for (const bill of ['QZBILL0', 'QZBILL1', 'QZBILL2']) expect(all.html).toContain(bill)
    expect(all.html).toContain('¥50.00')
    expect(all.html).toContain('待会员确认收款')
    const failed = await page('/console/rewards/transfers?state=fail')
    expect(failed.html).toContain('QZBILL2')
    expect(failed.html).toContain('NAME_NOT_CORRECT')
    expect(failed.html).not.toContain('QZBILL0')
    expect((await page('/console/rewards/transfers?state=cancelled')).html).toContain(
      '没有这个状态的打款',
    )
    const bad = await page('/console/rewards/transfers?state=lost')
    expect(bad.status).toBe(400)
    expect(bad.html).toContain('未知的打款状态')
    // The redemption list shows the transfer's state beside the redemption.
    const redemptions = (await page('/console/rewards/redemptions')).html
    expect(redemptions).toContain('返现打款：已到账')
    // A cashback being paid with no shop configured cannot be cancelled here: nothing changes.
    const paying = await db()
      .selectFrom('redemptions')
      .select('id')
      .where('code', '=', 'CASHBACK00')
      .executeTakeFirstOrThrow()
    const refused = await post(`/console/rewards/redemptions/${paying.id}/cancel`, {})
    expect(refused.status).toBe(400)
    expect(await refused.text()).toContain('本部署未配置微信支付')
    const paid = await db()
      .selectFrom('redemptions')
      .select('id')
      .where('code', '=', 'CASHBACK01')
      .executeTakeFirstOrThrow()
    const paidOut = await post(`/console/rewards/redemptions/${paid.id}/cancel`, {})
    expect(await paidOut.text()).toContain('返现已到账，不能取消')
  })

  it('pages the redemption list (never unbounded)', async () => {
    const many = Array.from({ length: 60 }, (_, i) => ({
      appid,
      member_id: memberId,
      reward_id: 1,
      cost: 100,
      code: `PAGED${String(i).padStart(5, '0')}`,
      status: 'cancelled' as const,
      created_at: clock.now(),
    }))
    const gift = (await reward(1))!
    await db()
      .insertInto('redemptions')
      .values(many.map((m) => ({ ...m, reward_id: gift.id })))
      .execute()
    const first = (await page('/console/rewards/redemptions')).html
    expect(first).toContain('PAGED00059')
    expect(first).not.toContain('PAGED00009')
    const older = /href="([^"]*before=\d+[^"]*)"/.exec(first)![1]!.replaceAll('&amp;', '&')
    const second = (await page(older)).html
    expect(second).toContain('PAGED00000')
    expect(second).not.toContain('PAGED00059')
    expect(second).toContain('← 最新</a>')
  })
})
