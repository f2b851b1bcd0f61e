import { afterAll, beforeAll, expect, it } from 'vitest'
import { forEachDatabase } from '../test/databases.js'
import { startServer, type TestServer, testConfig } from '../test/server.js'

forEachDatabase('资料 / details through the OA chat', (get) => {
  let server: TestServer
  let english: TestServer
  // One community day for the whole suite (the first message earns daily_login): on the real clock
  // a run across local midnight earned a second daily_login mid-test.
  const clock = { now: () => new Date('2026-11-18T04:00:00Z') }
  beforeAll(async () => {
    server = await startServer(get().db, { clock })
    english = await startServer(get().db, {
      clock,
      config: testConfig({ QUANZI_LOCALE: 'en' }),
    })
  })
  afterAll(async () => {
    await server.close()
    await english.close()
  })

  const say = async (openid: string, content: string, to = server) => {
    const wx = to.pusher()
    return (await wx.text(openid, content)).reply!.Content as string
  }

  it('prompts field by field, refuses bad values and pays complete_profile once', async () => {
    expect(await say('o_details_a', '资料')).toBe(
      [
        '我的资料',
        '昵称 未填写',
        '生日 未填写',
        '城市 未填写',
        '下一步：发送「资料 昵称 你的名字」填写昵称',
        '昵称、生日月份、城市都填好可得 30 积分 🎁',
      ].join('\n'),
    )
    expect(await say('o_details_a', '资料 生日 13月')).toBe(
      '生日月份请写 1–12，例如「资料 生日 5月」。',
    )
    expect(await say('o_details_a', '资料 城市 杭州123')).toBe(
      '城市请写 1–20 个字（只含文字），例如「资料 城市 杭州」。',
    )
    expect(await say('o_details_a', '资料 昵称 官方小号')).toBe('昵称不能包含「官方」，请换一个。')
    expect(await say('o_details_a', '资料 爱好 爬山')).toBe(
      '用法：资料 昵称 小明 / 资料 生日 5月 / 资料 城市 杭州',
    )
    expect(await say('o_details_a', '资料 生日 五月')).toMatch(
      /^已保存 ✅\n我的资料\n昵称 未填写\n生日 5月\n城市 未填写\n下一步：发送「资料 昵称/,
    )
    expect(await say('o_details_a', '资料 昵称 小明')).toMatch(/下一步：发送「资料 城市 杭州」/)
    // the first message of the day earned daily_login (10); completing adds 30
    expect(await say('o_details_a', '资料 城市 杭州')).toBe(
      [
        '资料已完善 🎉 +30 积分，当前积分 40',
        '我的资料',
        '昵称 小明',
        '生日 5月',
        '城市 杭州',
        '资料已完善 ✅',
      ].join('\n'),
    )
    expect(await say('o_details_a', '资料 城市 上海')).toMatch(
      /^已保存 ✅\n.*\n城市 上海\n资料已完善 ✅$/s,
    )
    expect(await say('o_details_a', '积分')).toMatch(/^当前积分 40/)
  })

  it('speaks English', async () => {
    expect(await say('o_details_en', 'details birthday May', english)).toBe(
      [
        'Saved ✅',
        'My details',
        'Name not set',
        'Birthday month 5',
        'City not set',
        'Next: send "details name <your name>"',
        'Fill in name, birthday month and city to earn 30 points 🎁',
      ].join('\n'),
    )
  })
})
