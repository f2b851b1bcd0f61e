/**
 * The member page's tag form over `app.request()` against the sandbox WeChat API: the current and
 * known tags, tagging at WeChat and here (audited by name), the refusals (viewer, CSRF, a bad id
 * or a tag WeChat does not know, WeChat unreachable: a message and nothing changed), and without
 * the account's API the form saying why — on every database.
 */
import type { Hono } from 'hono'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { createRouter } from '../../../handlers/index.js'
import { manualClock, postForm, seedOperators, signIn } from '../../../test/console-kit.js'
import { forEachDatabase } from '../../../test/databases.js'
import { type MemberFamily, seedMemberFamily } from '../../../test/member-fixtures.js'
import { SAFE_ACCOUNT, testConfig } from '../../../test/server.js'
import { createApp } from '../../app.js'
import { systemClock } from '../../clock.js'
import { databaseTokenStore } from '../../community/token-store.js'
import { silentLogger } from '../../logger.js'
import { type SandboxApi, startSandboxApi } from '../../sandbox/wechat-api-server.js'
import { accountClient } from '../../wechat/api/account-client.js'
import { createTag, getUserInfo } from '../../wechat/api/users.js'

const SECRET = 'member-tag-secret'
let wx: SandboxApi
beforeAll(async () => {
  wx = await startSandboxApi({ secret: SECRET })
})
afterAll(() => wx.close())

forEachDatabase('console member tags', (db, dbName) => {
  const clock = manualClock(new Date('2026-11-20T02:00:00Z'))
  const appid = SAFE_ACCOUNT.appid
  let app: Hono
  let noApi: Hono
  let family: MemberFamily
  let op: { cookie: string; csrf: string }
  let vip: number
  const api = () =>
    accountClient({
      tokenStore: databaseTokenStore(db().db, systemClock),
      appid,
      secret: SECRET,
      baseUrl: wx.url,
      mode: 'stable',
      clock: systemClock,
      logger: silentLogger,
      backoffMs: 1,
    })
  const page = async (a: Hono, cookie: string) => {
    const res = await a.request(`/console/members/${family.openid}`, { headers: { cookie } })
    expect(res.status).toBe(200)
    return res.text()
  }
  const tag = (a: Hono, who: { cookie: string; csrf: string }, tagid: string) =>
    postForm(a, `/console/members/${family.openid}/tags`, who.cookie, { _csrf: who.csrf, tagid })
  const tagsHere = () =>
    db()
      .db.selectFrom('member_tags as t')
      .innerJoin('members as m', 'm.id', 't.member_id')
      .select(['m.openid', 't.tagid'])
      .orderBy('m.openid')
      .orderBy('t.tagid')
      .execute()
  const audits = () =>
    db()
      .db.selectFrom('audit_log')
      .select(['actor', 'action', 'target', 'details'])
      .where('action', '=', 'tags.add')
      .orderBy('id')
      .execute()
  const alert = (html: string) =>
    /<p class="notice error" role="alert">([^<]*)<\/p>/.exec(html)?.[1]

  beforeAll(async () => {
    await seedOperators(db().db, clock.now())
    family = await seedMemberFamily(db().db, appid, `tg${dbName.slice(0, 2)}`, clock.now())
    vip = (await createTag(api(), `vip-${dbName}`)).id
    const deps = { config: testConfig(), db: db().db, router: createRouter(), clock }
    app = createApp({ ...deps, logger: silentLogger, api: () => api() })
    noApi = createApp({ ...deps, logger: silentLogger })
    op = await signIn(app, 'op1')
  })

  it('tags the member at WeChat and here, audited by name; shows the current and known tags', async () => {
    const before = await page(app, op.cookie)
    expect(before).toContain('当前标签：无')
    expect(before).toContain('<label for="tag-id">微信标签 ID</label>')
    expect(before).toContain('<datalist id="known-tags"></datalist>')
    const res = await tag(app, op, String(vip))
    expect(res.status).toBe(303)
    expect(res.headers.get('location')).toBe(
      `/console/members/${family.openid}?done=memberTag.done&tagid=${vip}`,
    )
    expect(await tagsHere()).toEqual([{ openid: family.openid, tagid: vip }])
    expect((await getUserInfo(api(), family.openid)).tagid_list).toEqual([vip])
    expect(await audits()).toEqual([
      {
        actor: 'op1',
        action: 'tags.add',
        target: String(vip),
        details: JSON.stringify({ openids: [family.openid] }),
      },
    ])
    const after = await (
      await app.request(res.headers.get('location')!, { headers: { cookie: op.cookie } })
    ).text()
    expect(after).toContain(`已添加标签 ${vip}`)
    expect(after).toContain(`当前标签：${vip}`)
    expect(after).toContain(`<option value="${vip}"></option>`)
    expect(after.length).toBeLessThan(100_000)
    // again: nothing new here, one more audit entry (WeChat was asked again)
    expect((await tag(app, op, String(vip))).status).toBe(303)
    expect(await tagsHere()).toHaveLength(1)
  })

  it('refuses a viewer, a forged form, a bad id and a tag WeChat does not know; nothing changes', async () => {
    const viewer = await signIn(app, 'viewer1')
    const viewerPage = await page(app, viewer.cookie)
    expect(viewerPage).not.toContain('tag-id')
    expect((await tag(app, viewer, String(vip))).status).toBe(403)
    expect((await tag(app, { ...op, csrf: 'forged' }, String(vip))).status).toBe(403)
    for (const bad of ['', '0', '-3', 'abc', '1.5', '99999999999']) {
      const res = await tag(app, op, bad)
      expect(res.status, bad).toBe(400)
      expect(alert(await res.text()), bad).toBe('标签 ID 须为正整数')
    }
    const unknown = await tag(app, op, '999')
    expect(unknown.status).toBe(400)
    const html = await unknown.text()
    expect(alert(html)).toBe('微信拒绝了这个标签，未添加：45159 invalid tag id')
    expect(html).toContain('value="999"') // the id typed is kept
    expect(await tagsHere()).toHaveLength(1)
    expect(await audits()).toHaveLength(2)
  })

  it('says why tagging is unavailable without the account’s API, and refuses the post', async () => {
    const who = await signIn(noApi, 'op1')
    const html = await page(noApi, who.cookie)
    expect(html).toContain('此公众号没有配置 AppSecret（WECHAT_SECRET），无法调用微信接口')
    expect(html).toContain(`当前标签：${vip}`)
    expect(html).not.toContain('id="tag-id"')
    const res = await tag(noApi, who, String(vip))
    expect(res.status).toBe(400)
    expect(alert(await res.text())).toContain('WECHAT_SECRET')
  })

  it('says so when WeChat cannot be reached, and records nothing', async () => {
    const other = (await createTag(api(), `later-${dbName}`)).id
    wx.fault('tags.batchtagging', ...Array(4).fill({ status: 502 }))
    const res = await tag(app, op, String(other))
    expect(res.status).toBe(400)
    expect(alert(await res.text())).toBe('暂时连不上微信接口，标签未添加，请稍后重试')
    expect(await tagsHere()).toEqual([{ openid: family.openid, tagid: vip }])
    expect(await audits()).toHaveLength(2)
  })
})
