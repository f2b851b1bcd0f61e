/**
 * 会员 over `app.request()`: search by every key, the member page's cards, granting within the
 * operator's per-day limit, opt-out, and the refusals (viewer, CSRF, bad input changes nothing).
 */
import type { Hono } from 'hono'
import { beforeAll, expect, it } from 'vitest'
import { createRouter } from '../../../handlers/index.js'
import { paidOrder } from '../../../test/analytics-fixtures.js'
import { manualClock, postForm, seedOperators, signIn } from '../../../test/console-kit.js'
import { forEachDatabase } from '../../../test/databases.js'
import { type MemberFamily, seedMemberFamily } from '../../../test/member-fixtures.js'
import { SAFE_ACCOUNT, testConfig } from '../../../test/server.js'
import { grantedToday } from '../../admin/reads/operator-grants.js'
import { createApp } from '../../app.js'
import { translator } from '../../bot/i18n.js'
import { addDays, localDay } from '../../community/community-time.js'
import { changePoints } from '../../community/points-ledger.js'
import { silentLogger } from '../../logger.js'

forEachDatabase('console members', (db) => {
  const clock = manualClock(new Date('2026-11-20T02:00:00Z'))
  const appid = SAFE_ACCOUNT.appid
  let app: Hono
  let family: MemberFamily
  const get = (path: string, cookie: string) => app.request(path, { headers: { cookie } })
  const balance = async () =>
    await db()
      .db.selectFrom('members')
      .select(['points_balance', 'marketing_opt_out'])
      .where('openid', '=', family.openid)
      .executeTakeFirstOrThrow()
  const audits = (action: string) =>
    db()
      .db.selectFrom('audit_log')
      .select(['actor', 'target', 'details', 'client_address'])
      .where('action', '=', action)
      .orderBy('id')
      .execute()

  beforeAll(async () => {
    await seedOperators(db().db, clock.now())
    await db()
      .db.updateTable('operators')
      .set({ daily_grant_limit: 100 })
      .where('name', '=', 'op1')
      .execute()
    family = await seedMemberFamily(db().db, appid, 'mt', clock.now())
    app = createApp({
      config: testConfig(),
      db: db().db,
      router: createRouter(),
      logger: silentLogger,
      clock,
      clientAddress: () => '203.0.113.9',
    })
  })

  it('finds a member by openid, nickname, invite code, redemption code; says when nobody matches', async () => {
    const { cookie } = await signIn(app, 'viewer1')
    const href = `/console/members/${family.openid}`
    for (const q of [
      family.openid,
      '小明',
      family.inviteCode.toLowerCase(),
      family.redemptionCode,
    ]) {
      const html = await (await get(`/console/members?q=${encodeURIComponent(q)}`, cookie)).text()
      expect(html, q).toContain(`href="${href}"`)
    }
    const none = await get('/console/members?q=nobody-here', cookie)
    expect(none.status).toBe(200)
    expect(await none.text()).toContain('没有找到与“nobody-here”匹配的会员')
    expect((await get(`/console/members?q=${'x'.repeat(65)}`, cookie)).status).toBe(400)
  })

  it('shows the member: points, frozen, ledger, streaks, invite tree, reachability', async () => {
    const { cookie } = await signIn(app, 'viewer1')
    const res = await get(`/console/members/${family.openid}`, cookie)
    expect(res.status).toBe(200)
    const html = await res.text()
    expect(html.length).toBeLessThan(100_000)
    expect(html).toContain('小明mt')
    expect(html).toContain('当前连续 5 天 · 最长连续 5 天 · 共签到 5 次')
    expect(html).not.toContain('已补签')
    // a day filled by a make-up (补签) is marked on the calendar
    const member = await db()
      .db.selectFrom('members')
      .select('id')
      .where('openid', '=', family.openid)
      .executeTakeFirstOrThrow()
    const filled = addDays(localDay(clock.now(), 'Asia/Shanghai'), -3)
    await db()
      .db.updateTable('checkins')
      .set({ made_up_at: clock.now() })
      .where('member_id', '=', member.id)
      .where('day', '=', filled)
      .execute()
    const marked = await (await get(`/console/members/${family.openid}`, cookie)).text()
    expect(marked).toContain(`class="on made-up" title="${filled} 已补签（连续 3 天）"`)
    expect(html).toContain(`href="/console/members/${family.inviter}"`)
    expect(html).toContain('第 1 级：1 人')
    expect(html).toContain('48 小时窗口至')
    expect(html).not.toContain('name="delta"') // a viewer gets no forms
    expect((await get('/console/members/nobody', cookie)).status).toBe(404)

    // each credit shows when its points expire and how many did (points-expiry.ts's lots)
    const credits: number[] = []
    for (const key of ['lot-a', 'lot-b']) {
      const change = { appid, memberId: member.id, rule: 'grant', idempotencyKey: key }
      const r = await changePoints(
        db().db,
        { ...change, now: clock.now(), timeZone: 'Asia/Shanghai' },
        20,
      )
      if (r.status !== 'applied') throw new Error(r.status)
      const entry = await db()
        .db.selectFrom('points_ledger')
        .select('id')
        .where('idempotency_key', '=', key)
        .executeTakeFirstOrThrow()
      credits.push(entry.id)
    }
    await db()
      .db.updateTable('points_lots')
      .set({ expires_at: new Date('2026-12-31T16:00:00Z') })
      .where('ledger_id', '=', credits[0]!)
      .execute()
    await db()
      .db.updateTable('points_lots')
      .set({ expired: 3, remaining: 17, expires_at: clock.now() })
      .where('ledger_id', '=', credits[1]!)
      .execute()
    const ledger = await (await get(`/console/members/${family.openid}`, cookie)).text()
    expect(ledger).toContain('<th scope="col">有效期</th>')
    expect(ledger).toContain('2027-01-01 00:00 过期')
    expect(ledger).toContain('已过期 3')
  })

  it('names the level, every ledger kind, sign-up and order status in words; an unknown kind as is', async () => {
    const { cookie } = await signIn(app, 'viewer1')
    const openid = 'o_codes_0123456789abcdef'
    const { id } = await db()
      .db.insertInto('members')
      .values({ appid, openid, first_seen_at: clock.now(), subscribed: true })
      .returning('id')
      .executeTakeFirstOrThrow()
    // what the ledger's writers label entries with (points-ledger.ts callers, the SQL functions)
    const kinds = [
      'daily_login',
      'checkin',
      'streak_bonus',
      'monthly_checkin',
      'checkin_makeup',
      'first_purchase',
      'purchase',
      'points_release',
      'purchase_refund',
      'product_review',
      'product_review_hidden',
      'product_review_unhidden',
      'friend_invite',
      'invite_chain',
      'content_share',
      'complete_profile',
      'grant',
      'deduct',
      'moderator_grant',
      'moderator_deduct',
      'redeem',
      'redeem_refund',
      'journey_offer',
      'mp_link_out',
      'mp_link_in',
      'points_expiry',
      'activity_yoga',
      'future_kind',
    ]
    for (const rule of kinds) {
      const change = { appid, memberId: id, rule, idempotencyKey: `codes:${rule}` }
      const r = await changePoints(
        db().db,
        { ...change, now: clock.now(), timeZone: 'Asia/Shanghai' },
        1,
      )
      if (r.status !== 'applied') throw new Error(r.status)
    }
    const activity = await db()
      .db.insertInto('activities')
      .values({
        appid,
        key: 'codes',
        name: '读书会',
        description: '',
        cron: '0 20 * * 5',
        cadence: 'weekly',
        status: 'open',
        created_at: clock.now(),
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    const statuses = ['confirmed', 'waitlisted', 'cancelled'] as const
    for (const [i, status] of statuses.entries())
      await db()
        .db.insertInto('activity_signups')
        .values({
          activity_id: activity.id,
          period: `2026-11-2${i}`,
          member_id: id,
          status,
          created_at: clock.now(),
          updated_at: clock.now(),
        })
        .execute()
    await paidOrder(db().db, appid, { memberId: id, fen: 990, paidAt: clock.now(), no: 'codes1' })
    // a level the entries above do not reach (a ledger change sets it from lifetime points)
    await db().db.updateTable('members').set({ level: 'gold' }).where('id', '=', id).execute()

    /** Every page of the member in `lang`: the cells of `column`, and the level. */
    const read = async (lang: string, column: string) => {
      const cells: string[] = []
      let path = `/console/members/${openid}?lang=${lang}`
      let first = ''
      for (;;) {
        const html = await (await get(path, cookie)).text()
        first ||= html
        const re = new RegExp(`<td data-label="${column}">(.*?)</td>`, 'g')
        for (const m of html.matchAll(re)) cells.push(m[1]!)
        const older = /href="([^"]*before=\d+[^"]*)"[^>]*>[^<]*(?:更早|Older)/.exec(html)
        if (!older) break
        path = `${older[1]!.replaceAll('&amp;', '&').replace(/#.*/, '')}&lang=${lang}`
      }
      return { cells, html: first }
    }
    for (const [lang, labels] of [
      ['zh-CN', { kind: '类型', status: '状态' }],
      ['en', { kind: 'Kind', status: 'Status' }],
    ] as const) {
      const { cells, html } = await read(lang, labels.kind)
      expect(cells).toHaveLength(kinds.length)
      // each kind in words, the activity's key kept; a kind the console does not know shown as is
      for (const rule of kinds.slice(0, -2)) expect(cells, lang).not.toContain(rule)
      expect(cells.filter((c) => c.includes('yoga'))).toHaveLength(1)
      expect(cells).toContain('future_kind')
      // the level named as the bot names it to members
      const gold = translator(lang)('level.gold')
      expect(html).toMatch(new RegExp(`<dd class="wrap">${gold}</dd>`))
      const status = [
        ...html.matchAll(new RegExp(`<td data-label="${labels.status}">(.*?)</td>`, 'g')),
      ]
        .map((m) => m[1])
        .filter(Boolean) // the ledger's (empty) state column is 状态 too
      for (const code of ['confirmed', 'waitlisted', 'cancelled', 'paid'])
        if (lang === 'zh-CN') expect(status, lang).not.toContain(code)
      expect(status).toHaveLength(4)
    }
    const zh = await read('zh-CN', '类型')
    expect(zh.cells).toContain('运营发放')
    expect(zh.cells).toContain('活动奖励（yoga）')
    expect(zh.html).toContain('<dd class="wrap">金牌</dd>')
    expect(zh.html).toContain('<td data-label="状态">已取消</td>')
    expect(zh.html).toContain('<td data-label="状态">已付款</td>')
  })

  it('lets an operator grant within the per-day limit, audited with their name', async () => {
    const op = await signIn(app, 'op1')
    const before = (await balance()).points_balance
    const form = (fields: Record<string, string>) =>
      postForm(app, `/console/members/${family.openid}/points`, op.cookie, {
        _csrf: op.csrf,
        ...fields,
      })
    const ok = await form({ delta: '60', reason: '活动奖励', idempotencyKey: 'k-1' })
    expect(ok.status).toBe(303)
    const page = await (await get(ok.headers.get('location')!, op.cookie)).text()
    expect(page).toContain('已将积分变动 +60')
    expect(page).toContain('活动奖励')
    // The same submission again is a duplicate, not a second grant.
    expect((await form({ delta: '60', reason: '活动奖励', idempotencyKey: 'k-1' })).status).toBe(
      303,
    )
    expect((await balance()).points_balance).toBe(before + 60)
    // 60 + 50 > 100: refused, nothing changed; deductions are not limited.
    const over = await form({ delta: '50', reason: '再发', idempotencyKey: 'k-2' })
    expect(over.status).toBe(400)
    expect(await over.text()).toContain('超出你的每日发放上限：今天已发 60，上限 100')
    expect((await form({ delta: '-10', reason: '扣回', idempotencyKey: 'k-3' })).status).toBe(303)
    expect((await balance()).points_balance).toBe(before + 50)
    expect(await grantedToday(db().db, 'op1', clock.now(), 'Asia/Shanghai')).toBe(60)
    const grants = await audits('points.grant')
    expect(grants).toHaveLength(1)
    expect(grants[0]).toMatchObject({
      actor: 'op1',
      target: family.openid,
      client_address: '203.0.113.9',
    })
    // The owner has no limit.
    const owner = await signIn(app, 'owner1')
    const big = await postForm(app, `/console/members/${family.openid}/points`, owner.cookie, {
      _csrf: owner.csrf,
      delta: '500',
      reason: '补偿',
    })
    expect(big.status).toBe(303)
  })

  it('refuses bad input, a viewer and a missing CSRF token, changing nothing', async () => {
    const op = await signIn(app, 'op1')
    const viewer = await signIn(app, 'viewer1')
    const before = await balance()
    const path = `/console/members/${family.openid}/points`
    for (const fields of [
      { delta: '0', reason: 'x' },
      { delta: 'abc', reason: 'x' },
      { delta: '1.5', reason: 'x' },
      { delta: '5', reason: '   ' },
    ]) {
      const res = await postForm(app, path, op.cookie, { _csrf: op.csrf, ...fields })
      expect(res.status, JSON.stringify(fields)).toBe(400)
    }
    expect(
      (await postForm(app, path, viewer.cookie, { _csrf: viewer.csrf, delta: '5', reason: 'x' }))
        .status,
    ).toBe(403)
    expect((await postForm(app, path, op.cookie, { delta: '5', reason: 'x' })).status).toBe(403)
    const optOut = `/console/members/${family.openid}/opt-out`
    expect(
      (await postForm(app, optOut, viewer.cookie, { _csrf: viewer.csrf, optOut: '1' })).status,
    ).toBe(403)
    expect(
      (await postForm(app, optOut, op.cookie, { _csrf: op.csrf, optOut: 'maybe' })).status,
    ).toBe(400)
    expect(await balance()).toEqual(before)
  })

  it('excludes a member from campaigns and includes them again, audited', async () => {
    const op = await signIn(app, 'op1')
    const optOut = `/console/members/${family.openid}/opt-out`
    expect((await postForm(app, optOut, op.cookie, { _csrf: op.csrf, optOut: '1' })).status).toBe(
      303,
    )
    expect((await balance()).marketing_opt_out).toBe(true)
    expect((await postForm(app, optOut, op.cookie, { _csrf: op.csrf, optOut: '1' })).status).toBe(
      303,
    )
    expect((await postForm(app, optOut, op.cookie, { _csrf: op.csrf, optOut: '0' })).status).toBe(
      303,
    )
    expect((await balance()).marketing_opt_out).toBe(false)
    expect((await audits('member.opt_out')).map((a) => a.actor)).toEqual(['op1'])
    expect((await audits('member.opt_in')).map((a) => a.actor)).toEqual(['op1'])
  })
})
