/**
 * Share links with SHARE_OAUTH on (issue #19, part 6): an open in WeChat goes through the
 * account's silent web OAuth (snsapi_base) against the sandbox WeChat API, and the opener is their
 * openid — exact where the cookie and fingerprint guess: a friend on the sharer's Wi-Fi counts, the
 * sharer on another network does not, a cleared cookie is the same person. A code that does not
 * exchange counts no open (it used to fall back to a cookie the client chooses) and still lands the
 * visitor on the page.
 */
import type { Hono } from 'hono'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { createRouter } from '../../handlers/index.js'
import { forEachDatabase } from '../../test/databases.js'
import { pointsBalance } from '../../test/member-fixtures.js'
import { sandboxClient } from '../../test/sandbox-client.js'
import { SAFE_ACCOUNT, testConfig } from '../../test/server.js'
import { createApp } from '../app.js'
import { shareLink } from '../community/shares.js'
import { silentLogger } from '../logger.js'
import { type SandboxApi, startSandboxApi } from '../sandbox/wechat-api-server.js'

const APPID = SAFE_ACCOUNT.appid
const SECRET = 'share-oauth-secret'
const WECHAT_UA = 'Mozilla/5.0 (Linux; Android 14) Mobile MicroMessenger/8.0.50.2701 NetType/WIFI'
const ARTICLE = 'https://mp.weixin.qq.com/s/ShareOauth1'

let wx: SandboxApi
beforeAll(async () => {
  wx = await startSandboxApi({ secret: SECRET })
})
afterAll(() => wx.close())

forEachDatabase('share links with the silent web OAuth', (get) => {
  let app: Hono
  const now = new Date('2026-12-01T02:00:00Z')
  let n = 0

  beforeAll(() => {
    const api = sandboxClient(get().db, { appid: APPID, secret: SECRET, baseUrl: wx.url })
    app = createApp({
      config: testConfig({
        WECHAT_SECRET: SECRET,
        SHARE_OAUTH: 'on',
        PUBLIC_BASE_URL: 'https://q.example',
      }),
      db: get().db,
      router: createRouter(),
      logger: silentLogger,
      clock: { now: () => now },
      api: (appid) => (appid === APPID ? api : undefined),
      clientAddress: (c) => c.req.header('x-test-peer') ?? '10.0.0.1',
    })
  })

  const sharer = async () => {
    const openid = `o_oauth_sharer_${++n}`
    const m = await get()
      .db.insertInto('members')
      .values({ appid: APPID, openid, first_seen_at: now })
      .returning('id')
      .executeTakeFirstOrThrow()
    const link = await shareLink(get().db, {
      memberId: m.id,
      kind: 'article',
      ref: ARTICLE,
      address: '10.5.0.1',
      appid: APPID,
      now,
    })
    if (link.status !== 'ok') throw new Error('no link')
    return { id: m.id, openid, path: `/r/s/${link.code}`, code: link.code }
  }
  const open = (path: string, peer: string, headers: Record<string, string> = {}) =>
    app.request(path, { headers: { 'x-test-peer': peer, 'user-agent': WECHAT_UA, ...headers } })
  /** Back from the authorize page as `openid` (the code WeChat would hand back). */
  const back = (path: string, openid: string, peer: string, o: { snapshot?: boolean } = {}) =>
    open(`${path}?code=${wx.oauthCode(APPID, openid, o)}&state=share`, peer)
  const clicks = async (code: string) =>
    (
      await get()
        .db.selectFrom('share_links')
        .select('clicks')
        .where('code', '=', code)
        .executeTakeFirstOrThrow()
    ).clicks

  it('sends a WeChat opener through snsapi_base first, others straight on', async () => {
    const s = await sharer()
    const first = await open(s.path, '10.5.0.9')
    expect(first.status).toBe(302)
    const to = new URL(first.headers.get('location')!)
    expect(`${to.origin}${to.pathname}`).toBe('https://open.weixin.qq.com/connect/oauth2/authorize')
    expect(Object.fromEntries(to.searchParams)).toEqual({
      appid: APPID,
      redirect_uri: `https://q.example${s.path}`,
      response_type: 'code',
      scope: 'snsapi_base',
      state: 'share',
    })
    expect(to.hash).toBe('#wechat_redirect')
    expect(await clicks(s.code)).toBe(0) // the open is recorded when it comes back
    const bot = await open(s.path, '10.5.0.9', { 'user-agent': 'curl/8.0' })
    expect([bot.status, bot.headers.get('location')]).toEqual([302, ARTICLE])
    // a code that is not ours (another state) sends the browser through OAuth again
    const foreign = await open(`${s.path}?code=abc&state=other`, '10.5.0.9')
    expect(foreign.headers.get('location')).toMatch(/^https:\/\/open\.weixin\.qq\.com\//)
    expect(await pointsBalance(get().db, s.id)).toBe(0)
  })

  it('counts people by openid: the sharer’s Wi-Fi, other networks and cleared cookies', async () => {
    const s = await sharer()
    // a friend on the sharer's own network counts (the address alone would say "self")
    const friend = await back(s.path, 'o_friend_1', '10.5.0.1')
    expect([friend.status, friend.headers.get('location')]).toEqual([302, ARTICLE])
    expect(friend.headers.get('set-cookie')).toMatch(/qz_vid=[0-9a-f]{32};/)
    expect(await pointsBalance(get().db, s.id)).toBe(5)
    // the same friend on another network without a cookie is still the same person
    await back(s.path, 'o_friend_1', '10.7.7.7')
    expect(await pointsBalance(get().db, s.id)).toBe(5)
    // the sharer on another network is the sharer
    await back(s.path, s.openid, '10.8.8.8')
    expect(await pointsBalance(get().db, s.id)).toBe(5)
    // a second friend counts
    await back(s.path, 'o_friend_2', '10.5.0.1')
    expect(await pointsBalance(get().db, s.id)).toBe(10)
    expect(await clicks(s.code)).toBe(4)
    expect(wx.calls('oauth2')).toBeGreaterThanOrEqual(4)
  })

  const countedOpens = async (code: string) =>
    Number(
      (
        await get()
          .db.selectFrom('share_opens')
          .innerJoin('share_links', 'share_links.id', 'share_opens.link_id')
          .select(({ fn }) => fn.countAll<string>().as('n'))
          .where('share_links.code', '=', code)
          .executeTakeFirstOrThrow()
      ).n,
    )

  /** The round of the authorize URL a response sends the browser to, if it does. */
  const authorizeState = (res: Response) => {
    const to = res.headers.get('location') ?? ''
    return to.startsWith('https://open.weixin.qq.com/')
      ? new URL(to).searchParams.get('state')
      : undefined
  }

  it('counts no open for made-up codes with forged cookies, and still lands the visitor', async () => {
    const s = await sharer()
    for (let i = 0; i < 6; i++) {
      const cookie = `qz_vid=${i.toString(16).padStart(32, 'a')}`
      // sent round once more, then landed unverified
      const first = await open(`${s.path}?code=madeup${i}&state=share`, '10.6.6.6', { cookie })
      expect(authorizeState(first)).toBe('share2')
      const res = await open(`${s.path}?code=madeup${i}b&state=share2`, '10.6.6.6', { cookie })
      expect([res.status, res.headers.get('location')]).toEqual([302, ARTICLE])
    }
    expect(await countedOpens(s.code)).toBe(0)
    expect(await pointsBalance(get().db, s.id)).toBe(0)
    expect(await clicks(s.code)).toBe(6) // clicks, never counted opens
  })

  it('a code that does not exchange, or none on the way back, goes round once more, then counts nothing', async () => {
    const s = await sharer()
    const code = wx.oauthCode(APPID, 'o_friend_3')
    const path = `${s.path}?code=${code}&state=share`
    const first = await open(path, '10.6.0.3')
    expect(await pointsBalance(get().db, s.id)).toBe(5)
    const cookie = /qz_vid=([0-9a-f]{32});/.exec(first.headers.get('set-cookie') ?? '')?.[1]
    // the code again (a refresh): WeChat says 40029; round once more, then the page opens and
    // nothing more is counted
    const again = await open(path, '10.6.0.4', { cookie: `qz_vid=${cookie}` })
    expect(authorizeState(again)).toBe('share2')
    const used = await open(`${s.path}?code=${code}&state=share2`, '10.6.0.4')
    expect([used.status, used.headers.get('location')]).toEqual([302, ARTICLE])
    // back from WeChat without a code, or with a malformed one: the same, never a third round
    for (const query of ['', 'code=&', 'code=a%20b&']) {
      expect(authorizeState(await open(`${s.path}?${query}state=share`, '10.6.0.5'))).toBe('share2')
      const res = await open(`${s.path}?${query}state=share2`, '10.6.0.5')
      expect([res.status, res.headers.get('location')]).toEqual([302, ARTICLE])
    }
    // a 朋友圈 snapshot page's virtual identity is not an openid: not counted either
    const snap = await back(s.path, 'o_virtual', '10.6.0.6', { snapshot: true })
    expect([snap.status, snap.headers.get('location')]).toEqual([302, ARTICLE])
    expect(await pointsBalance(get().db, s.id)).toBe(5)
    expect(await countedOpens(s.code)).toBe(1)
    expect(await clicks(s.code)).toBe(6)
  })

  it('an activity link with a refused code still shows its landing page', async () => {
    await get()
      .db.insertInto('activities')
      .values({
        appid: APPID,
        key: 'oauthwalk',
        name: '周末徒步',
        description: '西湖',
        cron: '0 9 * * 6',
        cadence: 'weekly',
        status: 'open',
        created_at: now,
      })
      .execute()
    const m = await get()
      .db.insertInto('members')
      .values({ appid: APPID, openid: 'o_oauth_activity_sharer', first_seen_at: now })
      .returning('id')
      .executeTakeFirstOrThrow()
    const link = await shareLink(get().db, {
      memberId: m.id,
      kind: 'activity',
      ref: 'oauthwalk',
      address: '10.5.0.1',
      appid: APPID,
      now,
    })
    if (link.status !== 'ok') throw new Error('no link')
    const page = await open(`/r/s/${link.code}?code=junk&state=share2`, '10.6.0.7')
    expect(page.status).toBe(200)
    expect(await page.text()).toContain('周末徒步')
    expect(await pointsBalance(get().db, m.id)).toBe(0)
    // the landing page's address forwarded in WeChat (the first visitor's used code): the new
    // visitor is asked who they are once more, and counts
    const friend = wx.oauthCode(APPID, 'o_landing_friend')
    expect((await open(`/r/s/${link.code}?code=${friend}&state=share`, '10.6.0.8')).status).toBe(
      200,
    )
    expect(await pointsBalance(get().db, m.id)).toBe(5)
    const forwarded = await open(`/r/s/${link.code}?code=${friend}&state=share`, '10.6.0.9')
    expect(authorizeState(forwarded)).toBe('share2')
    const other = wx.oauthCode(APPID, 'o_forwarded_to')
    const landed = await open(`/r/s/${link.code}?code=${other}&state=share2`, '10.6.0.9')
    expect(landed.status).toBe(200)
    expect(await pointsBalance(get().db, m.id)).toBe(10)
  })
})
