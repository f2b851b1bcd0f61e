import { afterAll, beforeAll, expect, it } from 'vitest'
import { inviteCode } from '../src/community/invites.js'
import { findMember } from '../src/community/members.js'
import { createPusher } from '../src/sandbox/pusher.js'
import { forEachDatabase } from '../test/databases.js'
import { SAFE_ACCOUNT, startServer, type TestServer } from '../test/server.js'

const WELCOME = '欢迎关注！我是圈子小助手 🎉\n发送「帮助」看看我能为你做什么。'
const NOT_COUNTED = '邀请只算第一次关注的新朋友，这次关注不会给邀请人加积分。'
const SCAN_INVITE =
  '你已经关注啦 👋 邀请只算第一次关注的新朋友，这次扫码不会给邀请人加积分。\n想邀请好友？发送「邀请」获取你自己的二维码。'

forEachDatabase('follows and QR scans through the OA chat', (get) => {
  let server: TestServer
  // Events are de-duplicated on sender + CreateTime + Event + EventKey: each push moves the clock
  // on. The server reads the same clock, inside one community day (the first message earns
  // daily_login, and the welcome back quotes the balance): on the real clock a run across local
  // midnight earned a second daily_login mid-test.
  let at = Date.parse('2026-11-18T04:00:00Z')
  beforeAll(async () => {
    server = await startServer(get().db, { clock: { now: () => new Date(at) } })
  })
  afterAll(() => server.close())

  const pusher = () =>
    createPusher({
      url: `${server.url}/wechat`,
      account: SAFE_ACCOUNT,
      now: () => (at += 1000),
    })

  /** The invite code of a member (created on first use, as 邀请 does). */
  async function codeOf(openid: string) {
    const m = await findMember(get().db, SAFE_ACCOUNT.appid, openid)
    return inviteCode(get().db, m!, new Date(at))
  }

  it('welcomes a follower who unfollowed before back, not as a first-timer', async () => {
    const wx = pusher()
    expect((await wx.event('o_back', 'subscribe')).reply!.Content).toBe(WELCOME)
    await wx.text('o_back', '签到')
    expect((await wx.event('o_back', 'unsubscribe')).body).toBe('success')
    expect((await wx.event('o_back', 'subscribe')).reply!.Content).toBe(
      '欢迎回来！🎉 你的积分和等级都还在（当前 15 积分）。\n发送「签到」继续赚积分，发送「帮助」看看我能为你做什么。',
    )
    // …also when the follow came through a campaign code
    await wx.event('o_back', 'unsubscribe')
    expect(
      (await wx.event('o_back', 'subscribe', { EventKey: 'qrscene_spring' })).reply!.Content,
    ).toMatch(/^欢迎回来！/)
  })

  it('tells an existing follower what scanning a code did instead of staying silent', async () => {
    const wx = pusher()
    await wx.event('o_scan_inviter', 'subscribe')
    await wx.event('o_scan_friend', 'subscribe')
    const code = await codeOf('o_scan_inviter')

    // a friend's invite code, plain or for a campaign: already a member, so it does not count
    expect(
      (await wx.event('o_scan_friend', 'SCAN', { EventKey: `inv_${code}` })).reply!.Content,
    ).toBe(SCAN_INVITE)
    expect(
      (await wx.event('o_scan_friend', 'SCAN', { EventKey: `inv_${code}_spring` })).reply!.Content,
    ).toBe(SCAN_INVITE)
    // their own invite code
    expect(
      (await wx.event('o_scan_inviter', 'SCAN', { EventKey: `inv_${code}` })).reply!.Content,
    ).toBe('这是你自己的邀请二维码 😊 转发给还没关注的好友，他们扫码关注后才算你的邀请。')
    // a campaign code
    expect((await wx.event('o_scan_friend', 'SCAN', { EventKey: 'spring' })).reply!.Content).toBe(
      '你已经关注啦 👋 这是「spring」的二维码，欢迎回来看看。\n发送「帮助」看看我能为你做什么。',
    )

    // following again through a friend's code: welcome back, and why the invite does not count
    await wx.event('o_scan_friend', 'unsubscribe')
    const again = await wx.event('o_scan_friend', 'subscribe', { EventKey: `qrscene_inv_${code}` })
    expect(again.reply!.Content).toMatch(/^欢迎回来！/)
    expect(again.reply!.Content).toContain(`\n${NOT_COUNTED}`)

    const invites = await get()
      .db.selectFrom('invites')
      .select('id')
      .where('appid', '=', SAFE_ACCOUNT.appid)
      .execute()
    expect(invites).toEqual([])
  })
})
