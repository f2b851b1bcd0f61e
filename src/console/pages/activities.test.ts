/**
 * 活动 over `app.request()`: the four-week calendar from the activities' crons, create and edit
 * through the API's schemas (bad input → 400 on the form, nothing changed), sign-ups and the
 * waitlist of an occurrence, awards (once per member and occurrence), and the refusals (viewer,
 * CSRF) — on every test database.
 */
import type { Hono } from 'hono'
import { beforeAll, expect, it } from 'vitest'
import { createRouter } from '../../../handlers/index.js'
import { manualClock, postForm, seedOperators, signIn } from '../../../test/console-kit.js'
import { forEachDatabase } from '../../../test/databases.js'
import { SAFE_ACCOUNT, testConfig } from '../../../test/server.js'
import { grantedToday } from '../../admin/reads/operator-grants.js'
import { effectiveRules } from '../../admin/reads/point-rules.js'
import { createApp } from '../../app.js'
import { signUp } from '../../community/activities.js'
import { silentLogger } from '../../logger.js'
import { addOperator } from '../operators.js'

const appid = SAFE_ACCOUNT.appid
const TZ = 'Asia/Shanghai'

forEachDatabase('console: activities', (get) => {
  // Friday 2026-11-20 10:00 in Shanghai.
  const clock = manualClock(new Date('2026-11-20T02:00:00Z'))
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
  const activity = (key: string) =>
    db()
      .selectFrom('activities')
      .selectAll()
      .where('appid', '=', appid)
      .where('key', '=', key)
      .executeTakeFirst()
  const audits = (action: string) =>
    db()
      .selectFrom('audit_log')
      .select(['actor', 'target', 'details'])
      .where('action', '=', action)
      .orderBy('id')
      .execute()
  const member = async (openid: string) =>
    (
      await db()
        .insertInto('members')
        .values({ appid, openid, first_seen_at: clock.now(), last_active_at: clock.now() })
        .returning('id')
        .executeTakeFirstOrThrow()
    ).id
  const duo = {
    key: 'duo',
    name: '双周共读',
    description: '每周二晚 8 点共读',
    cron: '0 20 * * 2',
    cadence: 'weekly',
    points: '20',
    capacity: '1',
    signup: '1',
  }

  beforeAll(async () => {
    await seedOperators(db(), clock.now())
    app = createApp({
      config: testConfig(),
      db: db(),
      router: createRouter(),
      logger: silentLogger,
      clock,
      clientAddress: () => '203.0.113.7',
    })
    op = await signIn(app, 'op1')
    viewer = await signIn(app, 'viewer1')
  })

  it('lists the next four weeks of occurrences from each cron, in the community time zone', async () => {
    const { status, html } = await page('/console/activities')
    expect(status).toBe(200)
    // 每周话题讨论: Wednesdays 20:00 Shanghai; this week's has passed (in progress), four to come.
    expect(html).toContain('进行中（本场提醒已发完）')
    for (const day of ['2026-11-25', '2026-12-02', '2026-12-09', '2026-12-16'])
      expect(html).toContain(`${day} 20:00`)
    expect(html).not.toContain('2026-12-23 20:00')
    expect(html).toContain('11-23 至 11-29 这周')
    // 月度评选's current month is listed though its next reminder (Dec 1st 10:00) is in it too.
    expect(html).toContain('2026-12-01 10:00')
    expect(html).toContain('/console/activities/topic?period=2026-11-23')
    expect(html).toContain('已确认 0，候补 0')
    // 全部活动: each activity's next reminder (the daily check-in's is tomorrow 09:00).
    expect(html).toMatch(/每日签到提醒[\s\S]*?下次提醒">2026-11-21 09:00</)
    expect(html).toMatch(/每周话题讨论<\/a>[\s\S]*?下次提醒">2026-11-25 20:00</)
    expect(html.length).toBeLessThan(100_000)
  })

  it('creates an activity (audited with the operator) and refuses bad input on the form', async () => {
    const bad = await post('/console/activities', {
      ...duo,
      key: 'Bad Key',
      cron: 'every tuesday',
      points: 'lots',
      capacity: '0',
    })
    expect(bad.status).toBe(400)
    const html = await bad.text()
    expect(html).toContain('请修改标出的内容后再提交')
    expect(html).toContain('标识须为小写字母开头')
    expect(html).toContain('cron 须为 5 段')
    expect(html).toContain('参与积分须为 0–100000 的整数')
    expect(html).toContain('名额须为正整数')
    expect(html).toContain('value="every tuesday"')
    expect(await activity('bad key')).toBeUndefined()

    const res = await post('/console/activities', duo)
    expect(res.status).toBe(303)
    expect(res.headers.get('location')).toBe('/console/activities/duo?created=duo')
    expect(await activity('duo')).toMatchObject({
      name: '双周共读',
      cron: '0 20 * * 2',
      cadence: 'weekly',
      points: 20,
      capacity: 1,
      signup: true,
      requires_purchase: false,
      status: 'open',
    })
    expect(await audits('activity.create')).toEqual([
      expect.objectContaining({ actor: 'op1', target: 'duo' }),
    ])
    const again = await post('/console/activities', { ...duo, name: '另一个' })
    expect(again.status).toBe(400)
    expect(await again.text()).toContain('这个标识已被使用')
    expect((await activity('duo'))!.name).toBe('双周共读')
    expect(await audits('activity.create')).toHaveLength(1)
  })

  it('refuses a viewer (403) and a form without its CSRF token (403); nothing is created', async () => {
    const byViewer = await post('/console/activities', { ...duo, key: 'v1' }, viewer)
    expect(byViewer.status).toBe(403)
    expect(await byViewer.text()).toContain('只读')
    expect((await page('/console/activities/new', viewer.cookie)).status).toBe(403)
    const forged = await postForm(app, '/console/activities', op.cookie, { ...duo, key: 'v2' })
    expect(forged.status).toBe(403)
    expect(await activity('v1')).toBeUndefined()
    expect(await activity('v2')).toBeUndefined()
    const viewed = await page('/console/activities/duo', viewer.cookie)
    expect(viewed.status).toBe(200)
    expect(viewed.html).not.toContain('name="openid"')
    expect(viewed.html).not.toContain('id="activity-name"')
  })

  it('edits an activity: only what changed is applied and audited; bad input changes nothing', async () => {
    const bad = await post('/console/activities/duo', {
      name: '',
      description: '每周二晚 8 点共读',
      cron: '61 20 * * 2',
      points: '20',
      capacity: '2',
      status: 'open',
    })
    expect(bad.status).toBe(400)
    const html = await bad.text()
    expect(html).toContain('名称须为 1–40 个字')
    expect(html).toContain('cron 须为 5 段')
    expect((await activity('duo'))!.capacity).toBe(1)

    const same = await post('/console/activities/duo', {
      name: '双周共读',
      description: '每周二晚 8 点共读',
      cron: '0 20 * * 2',
      points: '20',
      capacity: '1',
      status: 'open',
    })
    expect(same.headers.get('location')).toBe('/console/activities/duo?saved=0')
    expect(await audits('activity.update')).toEqual([])

    const res = await post('/console/activities/duo', {
      name: '每周共读',
      description: '每周二晚 8 点共读',
      cron: '30 20 * * 2',
      points: '20',
      capacity: '',
      status: 'open',
    })
    expect(res.status).toBe(303)
    expect(await activity('duo')).toMatchObject({
      name: '每周共读',
      cron: '30 20 * * 2',
      capacity: null,
    })
    const [entry] = await audits('activity.update')
    expect(entry).toMatchObject({ actor: 'op1', target: 'duo' })
    expect(JSON.parse(String(entry!.details))).toEqual({
      name: '每周共读',
      cron: '30 20 * * 2',
      capacity: null,
    })
    await post('/console/activities/duo', {
      name: '每周共读',
      description: '每周二晚 8 点共读',
      cron: '30 20 * * 2',
      points: '20',
      capacity: '1',
      status: 'open',
    })
    expect((await page('/console/activities/nope')).status).toBe(404)
  })

  it("shows an occurrence's sign-ups and waitlist, and awards its points once each", async () => {
    const now = clock.now()
    const ids = [await member('o_ann'), await member('o_bob')]
    for (const memberId of ids)
      await signUp(db(), { appid, memberId, ref: 'duo', now, timeZone: TZ })
    const { html } = await page('/console/activities/duo')
    expect(html).toContain('11-16 至 11-22 这周')
    expect(html).toContain('已确认 1 / 1，候补 1')
    expect(html).toMatch(/o_ann[\s\S]*已确认[\s\S]*o_bob[\s\S]*候补第 1 位/)
    // Another week: nobody yet.
    const later = await page('/console/activities/duo?period=2026-11-26')
    expect(later.html).toContain('11-23 至 11-29 这周')
    expect(later.html).toContain('这一场还没有人报名')
    expect((await page('/console/activities/duo?period=2026-02-30')).status).toBe(400)

    const ledger = () =>
      db()
        .selectFrom('points_ledger')
        .select(['member_id', 'delta'])
        .where('rule', '=', 'activity_duo')
        .execute()
    const unknown = await post('/console/activities/duo/award', {
      period: '2026-11-16',
      openid: 'o_ann',
      others: 'o_ghost',
    })
    expect(unknown.status).toBe(400)
    expect(await unknown.text()).toContain('这些 openid 不是本公众号的会员，未发放：o_ghost')
    const none = await post('/console/activities/duo/award', { period: '2026-11-16' })
    expect(none.status).toBe(400)
    expect(await none.text()).toContain('请至少选择或填写一位参与者')
    const badPeriod = await post('/console/activities/duo/award', {
      period: '2026-13-01',
      openid: 'o_ann',
    })
    expect(badPeriod.status).toBe(400)
    const byViewer = await post(
      '/console/activities/duo/award',
      { period: '2026-11-16', openid: 'o_ann' },
      viewer,
    )
    expect(byViewer.status).toBe(403)
    expect(await ledger()).toEqual([])

    const res = await post('/console/activities/duo/award', {
      period: '2026-11-18',
      openid: 'o_ann',
    })
    expect(res.status).toBe(303)
    expect(res.headers.get('location')).toBe(
      '/console/activities/duo?period=2026-11-16&applied=1&other=0',
    )
    expect(await ledger()).toEqual([{ member_id: ids[0], delta: 20 }])
    const twice = await post('/console/activities/duo/award', {
      period: '2026-11-16',
      openid: 'o_ann',
      others: 'o_bob',
    })
    expect(twice.headers.get('location')).toContain('applied=1&other=1')
    expect((await ledger()).map((r) => r.member_id).sort()).toEqual([...ids].sort())
    const shown = await page(twice.headers.get('location')!)
    expect(shown.html).toContain('已发放：1 人到账，1 人未到账')
    expect(await audits('activity.award')).toEqual([
      expect.objectContaining({ actor: 'op1', target: 'duo' }),
      expect.objectContaining({ actor: 'op1', target: 'duo' }),
    ])
  })

  it('shows an operator with a grant limit the points of an activity read-only, on the new and the edit form', async () => {
    await addOperator(db(), {
      name: 'op_fixed',
      role: 'operator',
      password: 'op_fixed-password',
      dailyGrantLimit: 100,
      now: clock.now(),
    })
    const limited = await signIn(app, 'op_fixed')
    const note = '你的账号设有每日发放上限，不能修改积分数值'
    expect(
      (await post('/console/activities', { ...duo, key: 'fixedpts', points: '20' })).status,
    ).toBe(303)
    const points = /<input id="activity-points"[^>]*>/
    // an operator without a limit types the points
    expect((await page('/console/activities/new')).html.match(points)?.[0]).not.toContain(
      'readonly',
    )
    expect((await page('/console/activities/fixedpts')).html.match(points)?.[0]).not.toContain(
      'readonly',
    )
    // the limited operator: a new activity's points fixed at 0 (allowed), an activity's shown as is
    const created = await page('/console/activities/new', limited.cookie)
    expect(created.html.match(points)?.[0]).toMatch(/value="0"[^>]*readonly/)
    expect(created.html).toContain(note)
    const edit = await page('/console/activities/fixedpts', limited.cookie)
    expect(edit.html.match(points)?.[0]).toMatch(/value="20"[^>]*readonly/)
    expect(edit.html).toContain(note)
    // the forms as shown save; the server still refuses points typed in anyway
    expect(
      (
        await post(
          '/console/activities',
          { ...duo, key: 'fixedzero', cadence: 'daily', points: '0' },
          limited,
        )
      ).status,
    ).toBe(303)
    const renamed = await post(
      '/console/activities/fixedpts',
      { ...duo, name: '共读（改）', points: '20', status: 'open' },
      limited,
    )
    expect(renamed.status).toBe(303)
    expect(await activity('fixedpts')).toMatchObject({ name: '共读（改）', points: 20 })
    // an owner sets 30 while the limited operator's form still shows 20: their rename saves, and
    // leaves the owner's 30
    await db().updateTable('activities').set({ points: 30 }).where('key', '=', 'fixedpts').execute()
    const stale = await post(
      '/console/activities/fixedpts',
      { ...duo, name: '共读（再改）', points: '20', pointsShown: '20', status: 'open' },
      limited,
    )
    expect(stale.status).toBe(303)
    expect(await activity('fixedpts')).toMatchObject({ name: '共读（再改）', points: 30 })
    expect(
      (
        await post(
          '/console/activities/fixedpts',
          { ...duo, points: '99', pointsShown: '30', status: 'open' },
          limited,
        )
      ).status,
    ).toBe(403)
  })

  it('tells the operator an award is the points × each member’s level multiplier, not one figure', async () => {
    expect(
      (await post('/console/activities', { ...duo, key: 'perlevel', points: '20' })).status,
    ).toBe(303)
    const { html } = await page('/console/activities/perlevel')
    expect(html).toContain('每人 20 积分乘以其等级倍数（如金牌 3 倍）')
  })

  it("counts a limited operator's awards against their daily limit, awards only started occurrences, and leaves points values to owners and unlimited operators", async () => {
    await addOperator(db(), {
      name: 'op2',
      role: 'operator',
      password: 'op2-password',
      dailyGrantLimit: 100,
      now: clock.now(),
    })
    const op2 = await signIn(app, 'op2')
    const limited = '你的账号设有每日发放上限，不能修改积分数值'
    const worth = { ...duo, cadence: 'daily', capacity: '', points: '100000' }
    // Setting what an activity is worth: refused (403), nothing created or changed.
    const big = await post('/console/activities', { ...worth, key: 'big' }, op2)
    expect(big.status).toBe(403)
    expect(await big.text()).toContain(limited)
    expect(await activity('big')).toBeUndefined()
    expect(
      (await post('/console/activities', { ...worth, key: 'free', points: '0' }, op2)).status,
    ).toBe(303)
    const raise = await post('/console/activities/free', { ...worth, status: 'open' }, op2)
    expect(raise.status).toBe(403)
    expect(await activity('free')).toMatchObject({ points: 0 })
    const rule = await post('/console/rewards/rules/checkin', { points: '100000' }, op2)
    expect(rule.status).toBe(403)
    expect(await rule.text()).toContain(limited)
    const checkin = (await effectiveRules(db(), appid)).find((r) => r.rule === 'checkin')
    expect(checkin?.points).not.toBe(100000)
    // An operator without a limit sets it.
    expect(
      (await post('/console/activities', { ...worth, key: 'paid', points: '60' })).status,
    ).toBe(303)

    const m1 = await member('o_m1')
    await member('o_m2')
    const award = (fields: Record<string, string>) =>
      post('/console/activities/paid/award', { period: '2026-11-20', ...fields }, op2)
    // A silver member gets the points × 2: 120 would pass the limit on its own.
    await db()
      .insertInto('members')
      .values({ appid, openid: 'o_m3', level: 'silver', first_seen_at: clock.now() })
      .execute()
    const silver = await award({ others: 'o_m3' })
    expect(silver.status).toBe(400)
    expect(await silver.text()).toContain('超出你的每日发放上限：今天已发 0，上限 100')
    expect((await award({ others: 'o_m1' })).status).toBe(303)
    // 60 awarded today: another 60 would pass the limit of 100.
    const over = await award({ others: 'o_m2' })
    expect(over.status).toBe(400)
    expect(await over.text()).toContain('超出你的每日发放上限：今天已发 60，上限 100')
    // An award already given counts nothing.
    expect((await award({ others: 'o_m1' })).headers.get('location')).toContain('applied=0')
    for (const period of ['2026-11-21', '2026-11-19', '2020-01-06']) {
      const refused = await award({ others: 'o_m2', period })
      expect(refused.status).toBe(400)
      expect(await refused.text()).toContain('只能为已开始的场次发放：2026-11-20 至 2026-11-20')
    }
    const ledger = await db()
      .selectFrom('points_ledger')
      .select(['member_id', 'delta'])
      .where('rule', '=', 'activity_paid')
      .execute()
    expect(ledger).toEqual([{ member_id: m1, delta: 60 }])
    expect(await grantedToday(db(), 'op2', clock.now(), TZ)).toBe(60)
    const awards = await audits('activity.award')
    expect(
      awards.filter((a) => a.actor === 'op2').map((a) => JSON.parse(a.details).granted),
    ).toEqual([60, 0])
  })
})
