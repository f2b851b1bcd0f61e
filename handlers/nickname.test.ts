import { afterAll, beforeAll, expect, it } from 'vitest'
import { nameTag } from '../src/community/display-names.js'
import { forEachDatabase } from '../test/databases.js'
import { startServer, type TestServer } from '../test/server.js'

forEachDatabase('昵称 / name through the OA chat', (get) => {
  let server: TestServer
  // One community day for the whole suite (first messages earn daily_login, the ranking is the
  // week's): on the real clock a run across local midnight earned a second daily_login mid-test.
  const clock = { now: () => new Date('2026-11-18T04:00:00Z') }
  beforeAll(async () => {
    server = await startServer(get().db, { clock })
  })
  afterAll(() => server.close())

  const say = async (openid: string, content: string) => {
    const wx = server.pusher()
    return (await wx.text(openid, content)).reply!.Content as string
  }

  it('sets a display name the ranking and 我的 show; others appear masked', async () => {
    const masked = `粉丝·${nameTag('o_nick_b')}`
    expect(masked).toMatch(/^粉丝·[0-9a-f]{4}$/)
    expect(await say('o_nick_b', '昵称')).toBe(
      `你还没有昵称，排行榜上显示为「${masked}」。发送「昵称 你的名字」设置（1–16 个字）。`,
    )
    expect(await say('o_nick_b', '我的')).toContain(
      `\n昵称 未设置（排行榜上显示为「${masked}」，发送「昵称 名字」设置）\n`,
    )
    expect(await say('o_nick_a', '昵称   小明 🐱  ')).toBe(
      '好的，以后就叫你「小明 🐱」啦 ✅ 排行榜上会显示这个昵称。',
    )
    expect(await say('o_nick_a', '昵称')).toBe(
      '你的昵称是「小明 🐱」。发送「昵称 新名字」修改（1–16 个字）。',
    )
    expect(await say('o_nick_a', '我的')).toMatch(/^我的资料\n昵称 小明 🐱\n积分 10/)
    await say('o_nick_a', '签到')
    expect(await say('o_nick_b', '排行榜')).toBe(
      `本周积分排行榜\n1. 小明 🐱 — 15\n2. 你 — 10\n你的排名：第 2 名（10 积分）`,
    )
    expect(await say('o_nick_a', 'rank')).toBe(
      `本周积分排行榜\n1. 小明 🐱（你） — 15\n2. ${masked} — 10\n你的排名：第 1 名（15 积分）`,
    )
    // English alias, no space after a Chinese command, and a rename
    expect(await say('o_nick_b', 'name Alice')).toMatch(/^好的，以后就叫你「Alice」啦/)
    expect(await say('o_nick_b', '昵称Bob')).toMatch(/^好的，以后就叫你「Bob」啦/)
  })

  it('refuses names that are too long, not one line, or contain a refused word', async () => {
    const tooLong = '一二三四五六七八九十一二三四五六七'
    expect(await say('o_nick_c', `昵称 ${tooLong}`)).toBe('昵称最多 16 个字，请换个短一点的。')
    expect(await say('o_nick_c', '昵称 小\n明')).toBe('昵称只能是一行文字，不能有换行或控制字符。')
    expect(await say('o_nick_c', '昵称 小\u0007明')).toBe(
      '昵称只能是一行文字，不能有换行或控制字符。',
    )
    expect(await say('o_nick_c', '昵称 官方小号')).toBe('昵称不能包含「官方」，请换一个。')
    expect(await say('o_nick_c', '昵称 客服 小美')).toBe('昵称不能包含「客服」，请换一个。')
    expect(await say('o_nick_c', 'name ＡＤＭＩＮ')).toBe('昵称不能包含「admin」，请换一个。')
    const row = await get()
      .db.selectFrom('members')
      .select('display_name')
      .where('openid', '=', 'o_nick_c')
      .executeTakeFirstOrThrow()
    expect(row.display_name).toBeNull()
    // sixteen characters (an emoji is one) are fine
    expect(await say('o_nick_c', `昵称 ${tooLong.slice(0, 15)}🎉`)).toMatch(/^好的/)
  })
})
