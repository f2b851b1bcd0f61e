/**
 * 社群 over `app.request()`: groups with their counts, join QRs, moderators (an owner adds and
 * removes them through the audited actions; operators and viewers refused; bad input refused with
 * nothing changed), the audit log filtered by action, actor, target and community days, paged
 * newest first and exported as CSV — and the same reads and actions in the admin API — on every
 * test database.
 */
import type { Hono } from 'hono'
import { beforeAll, expect, it } from 'vitest'
import { createRouter } from '../../../handlers/index.js'
import { manualClock, postForm, seedOperators, signIn } from '../../../test/console-kit.js'
import { forEachDatabase } from '../../../test/databases.js'
import { PLAIN_ACCOUNT, SAFE_ACCOUNT, testConfig } from '../../../test/server.js'
import { createApp } from '../../app.js'
import { audit } from '../../community/audit-log.js'
import { isModerator } from '../../community/moderation.js'
import { silentLogger } from '../../logger.js'

const appid = SAFE_ACCOUNT.appid
const TOKEN = 'operator-token-0123456789'

forEachDatabase('console: community', (get) => {
  // 2026-11-20 10:00 in Shanghai.
  const clock = manualClock(new Date('2026-11-20T02:00:00Z'))
  let app: Hono
  type Who = { cookie: string; csrf: string }
  let owner: Who
  let op: Who
  let viewer: Who
  const db = () => get().db
  const page = async (path: string, who: Who = owner) => {
    const res = await app.request(path, { headers: { cookie: who.cookie } })
    return { status: res.status, html: await res.text(), res }
  }
  const post = (path: string, fields: Record<string, string>, who = owner) =>
    postForm(app, path, who.cookie, { _csrf: who.csrf, ...fields })
  const api = (method: string, path: string, body?: unknown, account = appid) =>
    app.request(`/admin/api/accounts/${account}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
  const moderators = () =>
    db().selectFrom('moderators').selectAll().orderBy('external_id').orderBy('scope').execute()
  const audits = (action: string) =>
    db()
      .selectFrom('audit_log')
      .select(['actor', 'target', 'details', 'client_address'])
      .where('action', '=', action)
      .orderBy('id')
      .execute()

  beforeAll(async () => {
    await seedOperators(db(), clock.now())
    app = createApp({
      config: testConfig({ ADMIN_TOKEN: TOKEN }),
      db: db(),
      router: createRouter(),
      logger: silentLogger,
      clock,
      clientAddress: () => '203.0.113.7',
    })
    owner = await signIn(app, 'owner1')
    op = await signIn(app, 'op1')
    viewer = await signIn(app, 'viewer1')
    // Two groups: three followers and a WeCom contact in one, one follower in the other.
    const ids: number[] = []
    for (const [a, openid] of [
      [appid, 'o_alice'],
      [appid, 'o_bob'],
      [appid, 'o_carol'],
      ['wecom:corp1', 'wm_dave'],
    ] as const)
      ids.push(
        (
          await db()
            .insertInto('members')
            .values({ appid: a, openid, first_seen_at: clock.now() })
            .returning('id')
            .executeTakeFirstOrThrow()
        ).id,
      )
    const seen = (chat: string, id: number, minutes: number) => ({
      channel: 'wecom_customer',
      chat_id: chat,
      member_id: id,
      last_seen_at: new Date(clock.now().getTime() - minutes * 60_000),
    })
    await db()
      .insertInto('group_members')
      .values([
        seen('wrChatBig', ids[0]!, 30),
        seen('wrChatBig', ids[1]!, 20),
        seen('wrChatBig', ids[2]!, 90),
        seen('wrChatBig', ids[3]!, 10),
        seen('wrChatSmall', ids[0]!, 600),
      ])
      .execute()
    await db()
      .insertInto('moderators')
      .values([
        {
          channel: 'wecom_aibot',
          external_id: 'zhangsan',
          scope: 'wrChatBig',
          role: 'admin',
          source: 'wecom',
        },
        { channel: 'oa', external_id: 'o_alice', scope: '*', role: 'moderator', source: 'config' },
      ])
      .execute()
    await db()
      .insertInto('wecom_join_ways')
      .values({
        member_id: ids[1]!,
        config_id: 'cfg_bob',
        qr_code: 'https://wework.qpic.cn/wwpic/bob.png',
        state: 'inv_BOB123',
        created_at: clock.now(),
      })
      .execute()
  })

  it('lists the groups with member, follower and moderator counts, and the join QRs', async () => {
    const { status, html } = await page('/console/community', viewer)
    expect(status).toBe(200)
    expect(html).toContain('href="/console/community" aria-current="page"')
    expect(html).toMatch(
      /wrChatBig<\/code><\/td><td[^>]*>企业微信客户群<\/td><td[^>]*>4<\/td><td[^>]*>3<\/td><td[^>]*>1<\/td><td[^>]*>2026-11-20 09:50</,
    )
    expect(html).toMatch(
      /wrChatSmall<\/code><\/td><td[^>]*>企业微信客户群<\/td><td[^>]*>1<\/td><td[^>]*>1<\/td><td[^>]*>0</,
    )
    expect(html.indexOf('wrChatBig')).toBeLessThan(html.indexOf('wrChatSmall'))
    expect(html).toContain('inv_BOB123')
    expect(html).toContain('href="https://wework.qpic.cn/wwpic/bob.png"')
    expect(html).toContain('/console/members/o_bob')
    // The nav's 社群 is built now.
    expect(html).toMatch(/href="\/console\/community"[^>]*>社群</)
    expect(html.length).toBeLessThan(100_000)
    const groups = (await (await api('GET', '/groups')).json()) as { rows: { chatId: string }[] }
    expect(groups.rows.map((g) => g.chatId)).toEqual(['wrChatBig', 'wrChatSmall'])
  })

  it('an owner adds and removes a moderator the bot then recognises; audited with their name', async () => {
    const { html } = await page('/console/community/moderators')
    expect(html).toContain('配置 MODERATORS')
    expect(html).toContain('企业微信同步')
    expect(html).toContain('添加管理员')
    // Neither a configured nor a synced moderator can be removed here.
    expect(html).not.toContain('aria-label="移除 ')

    const who = { kind: 'oa', externalId: 'o_bob', chatId: 'wrChatSmall' }
    expect(await isModerator(db(), who)).toBe(false)
    const added = await post('/console/community/moderators', {
      channel: 'oa',
      externalId: 'o_bob',
      scope: 'wrChatSmall',
      role: 'moderator',
    })
    expect(added.status).toBe(303)
    expect(added.headers.get('location')).toBe(
      `/console/community/moderators?added=${encodeURIComponent('oa:o_bob@wrChatSmall')}`,
    )
    expect(await isModerator(db(), who)).toBe(true)
    expect(await isModerator(db(), { ...who, chatId: 'wrChatBig' })).toBe(false)
    expect(await audits('moderator.add')).toEqual([
      {
        actor: 'owner1',
        target: 'oa:o_bob@wrChatSmall',
        details: '{"role":"moderator"}',
        client_address: '203.0.113.7',
      },
    ])
    const listed = await page('/console/community/moderators?added=x')
    expect(listed.html).toContain('aria-label="移除 oa:o_bob@wrChatSmall"')
    expect(listed.html).toContain('运营后台添加')

    const removed = await post('/console/community/moderators/remove', {
      channel: 'oa',
      externalId: 'o_bob',
      scope: 'wrChatSmall',
    })
    expect(removed.status).toBe(303)
    expect(await isModerator(db(), who)).toBe(false)
    expect(await audits('moderator.remove')).toEqual([
      expect.objectContaining({ actor: 'owner1', target: 'oa:o_bob@wrChatSmall' }),
    ])
  })

  it('refuses operators, viewers, bad input and managed rows; nothing changes', async () => {
    const before = await moderators()
    const form = { channel: 'oa', externalId: 'o_carol', scope: '', role: 'moderator' }
    expect((await post('/console/community/moderators', form, op)).status).toBe(403)
    expect((await post('/console/community/moderators', form, viewer)).status).toBe(403)
    expect((await page('/console/community/moderators', op)).html).not.toContain('添加管理员</h2>')
    const forged = await postForm(app, '/console/community/moderators', owner.cookie, form)
    expect(forged.status).toBe(403)

    const bad = await post('/console/community/moderators', { ...form, channel: 'telegram' })
    expect(bad.status).toBe(400)
    expect(await bad.text()).toContain('渠道须为 oa、wecom_aibot 或 bridge:&lt;id&gt;')
    const blank = await post('/console/community/moderators', { ...form, externalId: '  ' })
    expect(await blank.text()).toContain('身份 ID 须为 1–128 个字符')
    const stranger = await post('/console/community/moderators', {
      ...form,
      externalId: 'o_nobody',
    })
    expect(stranger.status).toBe(400)
    expect(await stranger.text()).toContain('本公众号没有 openid 为 o_nobody 的粉丝')
    const twice = await post('/console/community/moderators', { ...form, externalId: 'o_alice' })
    expect(await twice.text()).toContain('该身份在此范围已是管理员')
    const managed = await post('/console/community/moderators/remove', {
      channel: 'wecom_aibot',
      externalId: 'zhangsan',
      scope: 'wrChatBig',
    })
    expect(managed.status).toBe(400)
    expect(await managed.text()).toContain('该管理员来自“企业微信同步（群主与群管理员）”')
    expect(await moderators()).toEqual(before)
    expect(await audits('moderator.add')).toHaveLength(1)
  })

  it('the admin API adds, lists and removes moderators through the same actions', async () => {
    const body = { channel: 'wecom_aibot', externalId: 'lisi', scope: 'wrChatBig' }
    const created = await api('POST', '/moderators', body)
    expect(created.status).toBe(201)
    expect(await created.json()).toMatchObject({ ...body, role: 'moderator', source: 'console' })
    expect((await api('POST', '/moderators', body)).status).toBe(409)
    expect((await api('POST', '/moderators', { ...body, channel: 'x' })).status).toBe(400)
    const list = (await (await api('GET', '/moderators')).json()) as { rows: unknown[] }
    expect(list.rows).toContainEqual({ ...body, role: 'moderator', source: 'console' })
    expect((await api('DELETE', '/moderators', body)).status).toBe(200)
    expect((await api('DELETE', '/moderators', body)).status).toBe(404)
    expect(
      (await api('DELETE', '/moderators', { channel: 'oa', externalId: 'o_alice' })).status,
    ).toBe(409)
    expect((await audits('moderator.add')).at(-1)).toMatchObject({
      actor: 'operator',
      target: 'wecom_aibot:lisi@wrChatBig',
    })
  })

  it("keeps an account's oa moderators to it: another account neither lists nor removes them", async () => {
    const other = PLAIN_ACCOUNT.appid
    await db()
      .insertInto('members')
      .values({ appid, openid: 'o_mod', first_seen_at: clock.now() })
      .execute()
    const mod = { channel: 'oa', externalId: 'o_mod' }
    expect((await api('POST', '/moderators', mod)).status).toBe(201)
    type Listed = { rows: { channel: string; externalId: string }[] }
    const ids = async (account: string) =>
      ((await (await api('GET', '/moderators', undefined, account)).json()) as Listed).rows.map(
        (r) => `${r.channel}:${r.externalId}`,
      )
    expect(await ids(appid)).toContain('oa:o_mod')
    // The other account sees its own (none) and the deployment's WeCom moderators only.
    expect((await ids(other)).filter((id) => id.startsWith('oa:'))).toEqual([])
    expect(await ids(other)).toContain('wecom_aibot:zhangsan')
    expect((await api('DELETE', '/moderators', mod, other)).status).toBe(404)
    expect((await api('POST', '/moderators', mod, other)).status).toBe(404)
    const elsewhere = await page(`/console/community/moderators?appid=${other}`)
    expect(elsewhere.html).not.toContain('o_mod')
    expect(elsewhere.html).not.toContain('o_alice')
    const forged = await post('/console/community/moderators/remove', { ...mod, appid: other })
    expect(forged.status).toBe(400)
    expect(await isModerator(db(), { kind: 'oa', externalId: 'o_mod' })).toBe(true)
    expect(await ids(appid)).toContain('oa:o_mod')
    const trail = () =>
      db()
        .selectFrom('audit_log')
        .select(['appid', 'action', 'details'])
        .where('action', 'like', 'moderator.%')
        .where('target', 'like', '%:o_mod@%')
        .orderBy('id')
        .execute()
    expect((await trail()).map((r) => [r.appid, r.action])).toEqual([[appid, 'moderator.add']])
    expect((await api('DELETE', '/moderators', mod)).status).toBe(200)
    expect((await trail()).map((r) => [r.appid, r.action])).toEqual([
      [appid, 'moderator.add'],
      [appid, 'moderator.remove'],
    ])
    // A WeCom moderator is the deployment's: changed from any account, audited under `-`.
    const wecom = { channel: 'wecom_aibot', externalId: 'wangwu' }
    expect((await api('POST', '/moderators', wecom)).status).toBe(201)
    expect((await api('DELETE', '/moderators', wecom, other)).status).toBe(200)
    const shared = await db()
      .selectFrom('audit_log')
      .select(['appid', 'action', 'details'])
      .where('target', '=', 'wecom_aibot:wangwu@*')
      .orderBy('id')
      .execute()
    expect(shared.map((r) => [r.appid, r.action, JSON.parse(r.details).account])).toEqual([
      ['-', 'moderator.add', appid],
      ['-', 'moderator.remove', other],
    ])
  })

  it('filters the audit log by action, actor, target and community days; pages newest first; exports CSV', async () => {
    // 60 entries of reward.update on the 18th (Shanghai), 3 of campaign.pause around midnight.
    const at = (iso: string) => new Date(iso)
    for (let i = 0; i < 60; i++)
      await audit(db(), {
        appid,
        actor: 'op1',
        action: 'reward.update',
        target: `reward-${i}`,
        details: { i },
        now: at('2026-11-18T04:00:00Z'),
      })
    await audit(db(), {
      appid,
      actor: 'owner1',
      action: 'campaign.pause',
      target: 'c-1',
      details: { a: 1 },
      now: at('2026-11-18T15:59:00Z'),
    })
    await audit(db(), {
      appid,
      actor: 'owner1',
      action: 'campaign.pause',
      target: 'c-2',
      details: { a: '=1,"x"' },
      now: at('2026-11-18T16:01:00Z'),
    })
    await audit(db(), {
      appid: 'wx_other',
      actor: 'owner1',
      action: 'campaign.pause',
      target: 'c-other',
      details: {},
      now: at('2026-11-18T16:02:00Z'),
    })

    const all = await page('/console/community/audit', viewer)
    expect(all.status).toBe(200)
    // each action in words, its code kept beside (the filter's value and the CSV use it)
    expect(all.html).toContain('<option value="campaign.pause">暂停推送（campaign.pause）</option>')
    expect(all.html).toContain('<option value="moderator.add">添加管理员（moderator.add）</option>')
    expect(all.html).toContain('暂停推送 <code class="muted">campaign.pause</code>')
    expect(all.html).not.toContain('c-other')
    // The console's sign-ins (deployment-wide) are in the account's view too.
    expect(all.html).toContain('console.login')

    const paused = await page('/console/community/audit?action=campaign.pause', viewer)
    expect(paused.html).toContain('<option value="campaign.pause" selected="">')
    const rows = [
      ...paused.html.matchAll(/<td data-label="对象"><span class="wrap">([^<]+)</g),
    ].map((m) => m[1])
    expect(rows).toEqual(['c-2', 'c-1'])

    // Community days: the 19th in Shanghai starts at 16:00 UTC on the 18th.
    const day = await page(
      '/console/community/audit?action=campaign.pause&from=2026-11-19&to=2026-11-19',
      viewer,
    )
    expect(day.html).toContain('c-2')
    expect(day.html).not.toContain('>c-1<')

    // Keyset pages of 50, newest first.
    const first = await page('/console/community/audit?actor=op1&action=reward.update', viewer)
    expect(first.html).toContain('reward-59')
    expect(first.html).not.toContain('reward-9<')
    const next = /href="([^"]*before=\d+[^"]*)" rel="next">更早/
      .exec(first.html)![1]!
      .replaceAll('&amp;', '&')
    const second = await page(next, viewer)
    expect(second.html).toContain('reward-9<')
    expect(second.html).toContain('reward-0<')
    expect(second.html).not.toContain('reward-10<')
    expect(second.html).not.toContain('更早 →')
    expect(second.html).toContain('← 最新</a>')
    const prefix = await page('/console/community/audit?target=reward-5', viewer)
    expect([...prefix.html.matchAll(/>reward-5\d?</g)]).toHaveLength(11)

    // CSV of the filtered view (not only the page), in the community's time zone.
    const csv = await page('/console/community/audit.csv?action=campaign.pause&before=1', viewer)
    expect(csv.res.headers.get('content-type')).toBe('text/csv; charset=utf-8')
    const lines = csv.html.trim().split('\n')
    expect(lines[0]).toBe(
      'id,time (Asia/Shanghai),created_at,appid,actor,action,target,details,client_address',
    )
    expect(lines).toHaveLength(3)
    expect(lines[1]).toContain(',2026-11-19 00:01:00,2026-11-18T16:01:00.000Z,')
    expect(lines[1]).toContain('"{""a"":""=1,\\""x\\""""}"')
    const apiCsv = await api('GET', '/audit-log?action=campaign.pause&format=csv')
    expect((await apiCsv.text()).trim().split('\n')).toHaveLength(3)
    const apiPage = (await (await api('GET', '/audit-log?actor=op1')).json()) as {
      rows: unknown[]
      nextBefore: number
    }
    expect(apiPage.rows).toHaveLength(50)
    expect(apiPage.nextBefore).toBeGreaterThan(0)

    // A bad filter: a message on the page, no rows, no 5xx.
    // (a day outside 2000–2100 too: the day after 9999-12-31 is no date, once a 500)
    const badFilters = [
      'from=2026-13-01',
      'from=2026-11-20&to=2026-11-19',
      'before=abc',
      'to=9999-12-31',
      'from=1999-12-31',
    ]
    for (const q of badFilters) {
      const bad = await page(`/console/community/audit?${q}`, viewer)
      expect(bad.status).toBe(400)
      expect(bad.html).toContain('筛选条件有误')
      expect(bad.html).not.toContain('reward-59')
    }
    expect((await api('GET', '/audit-log?from=2026-11-20&to=2026-11-19')).status).toBe(400)
  })

  it('says English when asked', async () => {
    const { html } = await page('/console/community/audit?lang=en', op)
    expect(html).toContain('Audit log')
    expect(html).toContain('All actions')
    expect(html).toContain(
      '<option value="campaign.pause">Pause a campaign (campaign.pause)</option>',
    )
  })

  it('names a refused moderator command and a refused call; an action it does not know as is', async () => {
    const now = new Date('2026-11-19T04:00:00Z')
    for (const action of ['points.grant.refused', 'refused'] as const)
      await audit(db(), { appid, actor: 'oa:o_x', action, target: 'oa', details: {}, now })
    // a row written by a newer version, with an action this one has no words for
    await db()
      .insertInto('audit_log')
      .values({
        appid,
        actor: 'op1',
        action: 'future.thing',
        target: 't',
        details: '{}',
        created_at: now,
      })
      .execute()
    const { html } = await page('/console/community/audit', viewer)
    expect(html).toContain(
      '<option value="points.grant.refused">非管理员尝试（已拒绝）：发放积分（points.grant.refused）</option>',
    )
    expect(html).toContain('<option value="refused">被拒绝的 API 调用（refused）</option>')
    expect(html).toContain('<option value="future.thing">future.thing</option>')
  })
})
