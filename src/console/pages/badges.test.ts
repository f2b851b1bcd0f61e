/**
 * 积分商城 → 徽章 over `app.request()`: the rules with their conditions and holders, a rule added
 * and a default switched off by an operator (audited, and then not awarded), bad input refused
 * with nothing saved, a viewer refused; the member page lists the member's badges.
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
import { awardBadges, effectiveBadgeRules } from '../../community/badges.js'

const appid = SAFE_ACCOUNT.appid

forEachDatabase('console: badges', (get) => {
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
  const rule = async (key: string) =>
    (await effectiveBadgeRules(db(), appid)).find((r) => r.key === key)

  beforeAll(async () => {
    await seedOperators(db(), clock.now())
    app = consoleTestApp(db(), clock)
    op = await signIn(app, 'op1')
    viewer = await signIn(app, 'viewer1')
  })

  it('lists the badge rules with their conditions under a 积分商城 tab', async () => {
    const { status, html } = await page('/console/rewards/badges')
    expect(status).toBe(200)
    expect(html).toContain('href="/console/rewards/badges"')
    expect(html).toContain('坚持一周')
    expect(html).toContain('最长连续签到天数 ≥ 7')
    expect(html).toContain('成功邀请人数 ≥ 10')
    expect(html).toContain('添加或修改徽章')
    // the rules page links the tab too
    expect((await page('/console/rewards')).html).toContain('/console/rewards/badges')
  })

  it('adds a rule, switches a default off (audited), refuses bad input and viewers', async () => {
    const fields = {
      key: 'checkins_10',
      name: '十日签到',
      description: '累计签到 10 天',
      counter: 'checkins',
      atLeast: '10',
      position: '35',
      enabled: '1',
    }
    const bad = await post('/console/rewards/badges', { ...fields, key: 'Bad Key', atLeast: '0' })
    expect(bad.status).toBe(400)
    const badHtml = await bad.text()
    expect(badHtml).toContain('代码：小写字母开头')
    expect(badHtml).toContain('至少：1–1000000 的整数')
    expect(await rule('checkins_10')).toBeUndefined()
    const saved = await post('/console/rewards/badges', fields)
    expect(saved.status).toBe(303)
    expect(await rule('checkins_10')).toMatchObject({
      name: '十日签到',
      predicate: { counter: 'checkins', atLeast: 10 },
      position: 35,
      enabled: true,
      overridden: true,
    })
    const off = await post('/console/rewards/badges/streak_7/enabled', { enabled: '0' })
    expect(off.status).toBe(303)
    expect(await rule('streak_7')).toMatchObject({ enabled: false, overridden: true })
    expect((await post('/console/rewards/badges/nope_nope/enabled', { enabled: '0' })).status).toBe(
      404,
    )
    const refused = await post('/console/rewards/badges', { ...fields, key: 'x_viewer' }, viewer)
    expect(refused.status).toBe(403)
    expect(await rule('x_viewer')).toBeUndefined()
    const audits = await db()
      .selectFrom('audit_log')
      .select(['actor', 'action', 'target'])
      .where('action', 'like', 'badge.%')
      .orderBy('id')
      .execute()
    expect(audits).toEqual([
      { actor: 'op1', action: 'badge.update', target: 'checkins_10' },
      { actor: 'op1', action: 'badge.disable', target: 'streak_7' },
    ])
    // the edit link fills the form with the rule
    const edit = await page('/console/rewards/badges?badge=checkins_10')
    expect(edit.html).toContain('value="十日签到"')
  })

  it("shows a member's badges on the member page", async () => {
    const m = await db()
      .insertInto('members')
      .values({ appid, openid: 'o_console_badges', first_seen_at: clock.now(), subscribed: true })
      .returning('id')
      .executeTakeFirstOrThrow()
    const empty = await page('/console/members/o_console_badges')
    expect(empty.html).toContain('还没有获得徽章')
    await db().updateTable('members').set({ purchase_count: 1 }).where('id', '=', m.id).execute()
    await awardBadges(db(), m.id, { purchases: null }, { now: clock.now() })
    const { status, html } = await page('/console/members/o_console_badges')
    expect(status).toBe(200)
    expect(html).toContain('首次购买')
    expect(html).toContain('完成第一笔订单')
  })
})
