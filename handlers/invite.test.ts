import { afterAll, beforeAll, expect, it } from 'vitest'
import { drainOutbox } from '../src/community/outbox.js'
import { databaseTokenStore } from '../src/community/token-store.js'
import { silentLogger } from '../src/logger.js'
import { createPusher } from '../src/sandbox/pusher.js'
import { type SandboxApi, startSandboxApi } from '../src/sandbox/wechat-api-server.js'
import { accountClient } from '../src/wechat/api/account-client.js'
import type { ApiClient } from '../src/wechat/api/client.js'
import { forEachDatabase } from '../test/databases.js'
import { SAFE_ACCOUNT, startServer, type TestServer, testConfig } from '../test/server.js'

const SECRET = 'e2e-invite-secret'
let wx: SandboxApi
beforeAll(async () => {
  wx = await startSandboxApi({ secret: SECRET })
})
afterAll(() => wx.close())

forEachDatabase('邀请 end to end against the sandbox WeChat API', (get) => {
  let server: TestServer
  let api: ApiClient
  // One community day for the whole suite (the first message of the day earns daily_login, and the
  // welcome back quotes the balance): on the real clock a run across local midnight earned a
  // second daily_login mid-test. Each push moves the clock on (events are de-duplicated on
  // CreateTime); every server, the API clients' tokens and the outbox read the same clock.
  let at = Date.parse('2026-11-18T04:00:00Z')
  const clock = { now: () => new Date(at) }
  const pusher = (url: string) =>
    createPusher({ url: `${url}/wechat`, account: SAFE_ACCOUNT, now: () => (at += 1000) })
  beforeAll(async () => {
    api = accountClient({
      tokenStore: databaseTokenStore(get().db, clock),
      appid: SAFE_ACCOUNT.appid,
      secret: SECRET,
      baseUrl: wx.url,
      mode: 'stable',
      clock,
      logger: silentLogger,
    })
    server = await startServer(get().db, {
      config: testConfig({ WECHAT_QR_IMAGE_BASE: wx.url }),
      api: (appid) => (appid === SAFE_ACCOUNT.appid ? api : undefined),
      clock,
    })
  })
  afterAll(() => server.close())

  const points = async (openid: string) =>
    (
      await get()
        .db.selectFrom('members')
        .select('points_balance')
        .where('openid', '=', openid)
        .executeTakeFirstOrThrow()
    ).points_balance

  /** Asks for the member's invite QR and returns the scene a phone would read from it. */
  async function scan(oa: ReturnType<typeof createPusher>, openid: string) {
    const reply = (await oa.text(openid, '邀请')).reply!
    expect(reply.MsgType).toBe('news')
    const article = (reply.Articles as { item: Record<string, string>[] }).item[0]!
    expect(article.Title).toBe('邀请好友关注，一起赚积分 🎁')
    expect(article.Description).toMatch(
      /^好友扫码关注并完成首次签到，你得 50 积分；好友再邀请新朋友，你还能依次得 30\/20\/10\/5 积分。\n邀请码 [2-9A-HJ-NP-Z]{8}，二维码有效至 \d{4}-\d{2}-\d{2}。$/,
    )
    expect(article.PicUrl).toBe(article.Url)
    expect(article.PicUrl!.startsWith(`${wx.url}/cgi-bin/showqrcode?ticket=`)).toBe(true)
    return wx.qrScene(new URL(article.PicUrl!).searchParams.get('ticket')!)!
  }

  it('attributes a follow through a personal QR and rewards the inviter on the first check-in', async () => {
    const oa = pusher(server.url)
    const scene = await scan(oa, 'o_inviter')
    expect(scene).toMatch(/^inv_[2-9A-HJ-NP-Z]{8}$/)
    // asking again reuses the code: one qrcode/create per member per period
    const calls = wx.calls('qrcode.create')
    expect(await scan(oa, 'o_inviter')).toBe(scene)
    expect(wx.calls('qrcode.create')).toBe(calls)

    wx.setUser('o_friend', { subscribe: true, unionid: 'union-of-friend' })
    const welcome = await oa.event('o_friend', 'subscribe', {
      EventKey: `qrscene_${scene}`,
      Ticket: 'T',
    })
    expect(welcome.reply!.Content).toBe(
      '欢迎关注！你是受好友邀请来的 🎉\n每天发送「签到」赚积分，发送「帮助」看看我能为你做什么。\n完成首次签到后，邀请你的好友将获得奖励。',
    )
    const before = await points('o_inviter')
    await oa.text('o_friend', '签到')
    expect((await points('o_inviter')) - before).toBe(50)

    // the inviter is told through the outbox, delivered by (sandbox) WeChat
    await drainOutbox({
      db: get().db,
      api,
      appid: SAFE_ACCOUNT.appid,
      clock,
      logger: silentLogger,
      timeZone: 'Asia/Shanghai',
      rate: { perSecond: 0, burst: 1 },
    })
    const notice = wx.sent.find((s) => s.touser === 'o_inviter' && s.method === 'custom.send')
    expect(notice?.body).toMatchObject({
      msgtype: 'text',
      text: { content: expect.stringMatching(/^🎉 你邀请的好友已加入，奖励 \+50 积分/) },
    })

    // unfollowing and following again — even through someone else's code — pays nothing
    const other = await scan(oa, 'o_other_inviter')
    await oa.event('o_friend', 'unsubscribe')
    const again = await oa.event('o_friend', 'subscribe', {
      EventKey: `qrscene_${other}`,
      Ticket: 'T2',
    })
    expect(again.reply!.Content).toBe(
      '欢迎回来！🎉 你的积分和等级都还在（当前 15 积分）。\n发送「签到」继续赚积分，发送「帮助」看看我能为你做什么。\n邀请只算第一次关注的新朋友，这次关注不会给邀请人加积分。',
    )
    // an existing follower scanning a code: no invite, and a reply saying why
    expect(
      (await oa.event('o_inviter', 'SCAN', { EventKey: other, Ticket: 'T3' })).reply!.Content,
    ).toBe(
      '你已经关注啦 👋 邀请只算第一次关注的新朋友，这次扫码不会给邀请人加积分。\n想邀请好友？发送「邀请」获取你自己的二维码。',
    )
    const invites = await get()
      .db.selectFrom('invites')
      .select(['status', 'invitee_key'])
      .where('appid', '=', SAFE_ACCOUNT.appid)
      .execute()
    // keyed by the person (unionid from user/info), not only by this account's openid
    expect(invites).toEqual([{ status: 'qualified', invitee_key: 'u:union-of-friend' }])
    expect(await points('o_other_inviter')).toBe(10) // its own daily_login only
  })

  it('does not count people the community knew by unionid (a WeCom contact, an MP customer) as invitees', async () => {
    const oa = pusher(server.url)
    const scene = await scan(oa, 'o_known_inviter')
    const monthAgo = new Date(at - 30 * 86_400_000)
    // a WeCom customer-group contact and a mini-program customer, recorded a month ago
    await get()
      .db.insertInto('members')
      .values([
        {
          appid: 'wecom:corp-known',
          openid: 'wm_known_1',
          unionid: 'u-known-1',
          first_seen_at: monthAgo,
        },
        {
          appid: 'wxmpknown00000001',
          openid: 'mp_known_2',
          unionid: 'u-known-2',
          first_seen_at: monthAgo,
        },
      ])
      .execute()
    for (const [openid, unionid] of [
      ['o_known_1', 'u-known-1'],
      ['o_known_2', 'u-known-2'],
    ] as const) {
      // user/info at the follow reports the unionid that links them to the row recorded before
      wx.setUser(openid, { subscribe: true, unionid })
      const follow = await oa.event(openid, 'subscribe', {
        EventKey: `qrscene_${scene}`,
        Ticket: 'T',
      })
      expect(follow.reply!.Content).toBe(
        '欢迎关注！我是圈子小助手 🎉\n发送「帮助」看看我能为你做什么。\n邀请只算第一次关注的新朋友，这次关注不会给邀请人加积分。',
      )
      const before = await points('o_known_inviter')
      await oa.text(openid, '签到')
      expect((await points('o_known_inviter')) - before).toBe(0)
    }
    const invitees = await get()
      .db.selectFrom('invites')
      .innerJoin('members', 'members.id', 'invites.inviter_member_id')
      .select('invites.invitee_key')
      .where('members.openid', '=', 'o_known_inviter')
      .execute()
    expect(invitees).toEqual([])
  })

  it('keeps the invite QR image working after a restart moves the image base', async () => {
    const before = pusher(server.url)
    const scene = await scan(before, 'o_restart')
    const issued = wx.calls('qrcode.create')
    // "npm start" again: a new sandbox WeChat API on another port, the same database
    const wx2 = await startSandboxApi({ secret: SECRET })
    const api2 = accountClient({
      tokenStore: databaseTokenStore(get().db, clock),
      appid: SAFE_ACCOUNT.appid,
      secret: SECRET,
      baseUrl: wx2.url,
      mode: 'stable',
      clock,
      logger: silentLogger,
    })
    const restarted = await startServer(get().db, {
      config: testConfig({ WECHAT_QR_IMAGE_BASE: wx2.url }),
      api: (appid) => (appid === SAFE_ACCOUNT.appid ? api2 : undefined),
      clock,
    })
    try {
      const after = pusher(restarted.url)
      const reply = (await after.text('o_restart', '邀请')).reply!
      const article = (reply.Articles as { item: Record<string, string>[] }).item[0]!
      // the cached code (no new qrcode/create), shown under the current base
      expect(wx.calls('qrcode.create') + wx2.calls('qrcode.create')).toBe(issued)
      expect(article.PicUrl!.startsWith(`${wx2.url}/cgi-bin/showqrcode?ticket=`)).toBe(true)
      const image = await fetch(article.PicUrl!)
      expect(image.status).toBe(200)
      expect(image.headers.get('content-type')).toBe('image/svg+xml')
      expect(wx2.qrScene(new URL(article.PicUrl!).searchParams.get('ticket')!)).toBe(scene)
    } finally {
      await restarted.close()
      await wx2.close()
    }
  })

  it('tells a member who levelled up on a news reply through the outbox', async () => {
    await get()
      .db.insertInto('members')
      .values({
        appid: SAFE_ACCOUNT.appid,
        openid: 'o_levelup_news',
        subscribed: true,
        first_seen_at: new Date(at - 3 * 86_400_000),
        last_active_at: new Date(at - 2 * 86_400_000),
        points_balance: 995,
        points_lifetime: 995,
      })
      .execute()
    const oa = pusher(server.url)
    expect((await oa.text('o_levelup_news', '邀请')).reply!.MsgType).toBe('news')
    const notice = await get()
      .db.selectFrom('push_outbox')
      .select(['source', 'payload'])
      .where('openid', '=', 'o_levelup_news')
      .executeTakeFirstOrThrow()
    expect(notice.source).toMatch(/^levelup:\d+:silver$/)
    expect(JSON.parse(notice.payload).text.content).toBe('恭喜升级为 银牌！赚取积分 2 倍 🎉')
  })

  it('says the invite QR is unavailable when the account has no API secret', async () => {
    const bare = await startServer(get().db, { clock })
    try {
      expect((await pusher(bare.url).text('o_nosecret', 'invite')).reply!.Content).toBe(
        '暂时无法生成邀请二维码，请稍后再试。',
      )
    } finally {
      await bare.close()
    }
  })
})
