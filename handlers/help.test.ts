import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { BotContext } from '../src/bot/context.js'
import { Router } from '../src/bot/router.js'
import { seedModerators } from '../src/community/moderation.js'
import { createPusher } from '../src/sandbox/pusher.js'
import { toInboundMessage } from '../src/wechat/message.js'
import { botContext } from '../test/bot-context.js'
import { forEachDatabase } from '../test/databases.js'
import { SAFE_ACCOUNT, startServer, type TestServer, testConfig } from '../test/server.js'
import { countStatements } from '../test/statement-counter.js'
import { register } from './help.js'

forEachDatabase('帮助 / help through the OA chat', (get) => {
  let server: TestServer
  let english: TestServer
  beforeAll(async () => {
    server = await startServer(get().db)
    english = await startServer(get().db, { config: testConfig({ QUANZI_LOCALE: 'en' }) })
    await seedModerators(get().db, [{ channel: 'oa', id: 'o_help_mod' }])
  })
  afterAll(async () => {
    await server.close()
    await english.close()
  })

  it('lists follower commands only, short and grouped; moderators also see theirs', async () => {
    const wx = createPusher({ url: `${server.url}/wechat`, account: SAFE_ACCOUNT })
    const follower = (await wx.text('o_help', '帮助')).reply!.Content as string
    expect(follower.split('\n').length).toBeLessThanOrEqual(10)
    expect(follower).toBe(
      [
        '你可以发送：',
        '每日：签到 · 补签 [日期] · 我的',
        '积分：积分 · 排行榜 · 兑换',
        '邀请：邀请 · 入群',
        '活动：活动 · 报名 <代码> · 取消报名 <代码>',
        '设置：昵称 <名字> · 资料 <项目> <内容> · 退订 · 订阅 · 提醒 [时间] · 取消提醒 · 绑定',
        '发送「帮助 签到」看某个指令的说明；中英文都可以（如 帮助 / help）。',
      ].join('\n'),
    )
    expect(follower).not.toMatch(/加分|扣分|公告|管理/)

    const moderator = (await wx.text('o_help_mod', 'help')).reply!.Content as string
    expect(moderator.split('\n').length).toBeLessThanOrEqual(10)
    expect(moderator).toContain('\n管理：加分 · 扣分 · 公告 · 开启 · 关闭\n')

    // one command explained; a moderator command stays hidden from followers
    expect((await wx.text('o_help', '帮助 兑换')).reply!.Content).toBe(
      '· 兑换 / redeem / 商城 — 积分兑换奖品（「兑换 编号」）',
    )
    expect((await wx.text('o_help', '帮助 加分')).reply!.Content).toBe(follower)
    expect((await wx.text('o_help_mod', '帮助 加分')).reply!.Content).toMatch(/^· 加分 \/ grant/)
  })

  it('costs two statements, the claim telling a moderator, and the reply store', async () => {
    const statements = countStatements(get().db)
    const counted = await startServer(statements.db)
    try {
      const wx = createPusher({ url: `${counted.url}/wechat`, account: SAFE_ACCOUNT })
      for (const [openid, moderator] of [
        ['o_help_count', false],
        ['o_help_mod', true],
      ] as const) {
        statements.reset()
        const reply = (await wx.text(openid, '帮助')).reply!.Content as string
        expect(reply.includes('\n管理：')).toBe(moderator)
        expect(statements.count()).toBe(2)
      }
    } finally {
      await counted.close()
    }
  })

  it('speaks English with English command names', async () => {
    const wx = createPusher({ url: `${english.url}/wechat`, account: SAFE_ACCOUNT })
    expect((await wx.text('o_help_en', 'help')).reply!.Content).toBe(
      [
        'You can send:',
        'Daily: checkin · makeup [date] · me',
        'Points: points · rank · redeem',
        'Invite: invite · group',
        'Activities: activities · join <code> · leave <code>',
        'Settings: name <name> · details <field> <value> · optout · optin · remind [time] · unremind · bind',
        'Send "help checkin" to learn about one command; Chinese or English both work (e.g. 帮助 / help).',
      ].join('\n'),
    )
  })
})

describe('帮助 when commands are registered after it', () => {
  it('lists the commands the router has now, for moderators too', async () => {
    const router = new Router()
    register(router)
    const message = toInboundMessage({
      ToUserName: 'gh',
      FromUserName: 'o_help_late',
      CreateTime: '1',
      MsgType: 'text',
      Content: '帮助',
      MsgId: '1',
    })
    const context = botContext(message)
    // The OA claim tells whether the sender moderates: no query.
    const follower = { ...context, channel: { ...context.channel, moderator: false } }
    const moderator = { ...context, channel: { ...context.channel, moderator: true } }
    const help = async (ctx: BotContext) =>
      ((await router.route(ctx)) as { content: string }).content
    expect(await help(follower)).not.toContain('晚到')
    router.command({ names: ['晚到'], description: 'command.help', group: 'daily' }, () => null)
    expect(await help(follower)).toContain('晚到')
    // the first moderator-only command: moderators now see it, followers still do not
    router.command(
      { names: ['管管'], description: 'command.help', group: 'moderator', scope: 'moderator' },
      () => null,
    )
    expect(await help(moderator)).toContain('管管')
    expect(await help(follower)).not.toContain('管管')
  })
})
