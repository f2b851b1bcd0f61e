import { afterAll, beforeAll, expect, it } from 'vitest'
import { createPusher } from '../src/sandbox/pusher.js'
import { forEachDatabase } from '../test/databases.js'
import { SAFE_ACCOUNT, startServer, type TestServer } from '../test/server.js'

forEachDatabase('greetings through the OA chat', (get) => {
  let server: TestServer
  beforeAll(async () => {
    server = await startServer(get().db)
  })
  afterAll(() => server.close())

  it('answers a greeting with an intro and commands to try, not the fallback', async () => {
    const wx = createPusher({ url: `${server.url}/wechat`, account: SAFE_ACCOUNT })
    const intro =
      '你好 👋 我是圈子小助手，陪你签到、攒积分、参加社区活动。\n先试试：\n· 签到 — 每天领积分\n· 排行榜 — 看看本周谁最活跃\n· 邀请 — 邀请好友一起赚积分\n发送「帮助」查看全部指令。'
    for (const hello of [
      '你好',
      '您好',
      'hi',
      'Hello!',
      '在吗？',
      '在不在',
      '哈喽',
      '你好呀',
      'hey there',
    ]) {
      expect((await wx.text('o_greeting', hello)).reply!.Content, hello).toBe(intro)
    }
    // not a greeting: still the fallback
    expect((await wx.text('o_greeting', '你好我想问个问题')).reply!.Content).toMatch(
      /^我还不太明白/,
    )
    // the quoted text is cut between characters, never inside an emoji (a surrogate pair or a
    // joined family)
    for (const [sent, quoted] of [
      ['aaaaaaaaaaaaaaaaaaa😀b', 'aaaaaaaaaaaaaaaaaaa😀…'],
      ['aaaaaaaaaaaaaaaaaaa👨‍👩‍👧x', 'aaaaaaaaaaaaaaaaaaa👨‍👩‍👧…'],
    ]) {
      const reply = (await wx.text('o_greeting', sent!)).reply!.Content as string
      expect(reply, sent).toContain(`「${quoted}」`)
      expect(reply).not.toMatch(/\p{Cs}/u)
    }
  })
})
