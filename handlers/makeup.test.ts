import { expect, it } from 'vitest'
import { createPusher } from '../src/sandbox/pusher.js'
import { forEachDatabase } from '../test/databases.js'
import { SAFE_ACCOUNT, startServer, testConfig } from '../test/server.js'

forEachDatabase('补签 / makeup through the OA chat', (get) => {
  it('fills the latest missed day for points, says what it did, and 我的 shows the month', async () => {
    const clock = { at: new Date('2026-11-01T02:00:00Z'), now: () => clock.at }
    const server = await startServer(get().db, {
      clock,
      config: testConfig({ CHECKIN_MONTHLY_REWARDS: '3:10' }),
    })
    try {
      const wx = createPusher({
        url: `${server.url}/wechat`,
        account: SAFE_ACCOUNT,
        now: () => clock.at.getTime(),
      })
      const say = async (text: string) => (await wx.text('o_makeup', text)).reply!.Content
      await wx.event('o_makeup', 'subscribe')
      expect(await say('签到')).toMatch(/^签到成功 ✅ \+5 积分\n已连续签到 1 天\n/)
      clock.at = new Date('2026-11-02T02:00:00Z')
      expect(await say('签到')).toMatch(/\n当前积分 30，/)
      // 11-03 is missed; on 11-04 a bare 补签 fills it (daily_login +10 → 40, −20, +10 monthly)
      clock.at = new Date('2026-11-04T02:00:00Z')
      expect(await say('补签')).toBe(
        [
          '补签成功 ✅ 2026-11-03 已补上，消耗 20 积分',
          '当前连续签到 3 天',
          '本月累计签到 3 天奖励 +10 积分 🎁',
          '11 月已补签 1/2 次',
          '当前积分 30，等级 铜牌',
        ].join('\n'),
      )
      expect(await say('补签 11-01')).toBe('2026-11-01 已经签到过了，不用补签。')
      expect(await say('补签11-04')).toBe('今天不用补签，直接发送「签到」就好～')
      expect(await say('补签 11月5日')).toBe('2026-11-05 还没到，不能补签。')
      expect(await say('补签 10-30')).toBe(
        '2026-10-30 你还没有关注我们，不能补签（最早可补 2026-11-01）。',
      )
      expect(await say('补签 10-20')).toBe('只能补签最近 7 天内漏签的日子（最早 2026-10-28）。')
      expect(await say('补签 明天吧')).toBe(
        '看不懂日期「明天吧」。发送「补签」补最近漏签的一天，或「补签 11-20」补指定日期。',
      )
      expect(await say('补签')).toBe('最近 7 天没有漏签，不需要补签 👍')
      // today's check-in continues the filled streak; the month's reward is not paid again
      expect(await say('签到')).toBe('签到成功 ✅ +5 积分\n已连续签到 4 天\n当前积分 35，等级 铜牌')
      const me = await say('我的')
      expect(me).toContain('连续签到 4 天，共签到 4 天')
      expect(me).toContain('本月签到 4 天，已补签 1/2 次')
      expect(await say('帮助 补签')).toBe(
        '· 补签 / makeup / 补卡 — 补上最近漏签的一天（消耗积分，每月限次；「补签 11-20」补指定日期）',
      )
      // 11-05 and 11-06 missed: the check-in says a 补签 can mend the streak (the second of the
      // month costs 40), and the make-up of 11-06 joins today to it
      clock.at = new Date('2026-11-07T02:00:00Z')
      expect(await say('签到')).toBe(
        [
          '签到成功 ✅ +5 积分',
          '已连续签到 1 天',
          '连续签到中断了？发送「补签」补上漏签的一天（40 积分，本月还可补 1 次）',
          '每日到访奖励 +10 积分（每天第一条消息）',
          '当前积分 50，等级 铜牌',
        ].join('\n'),
      )
      expect(await say('补签')).toBe(
        [
          '补签成功 ✅ 2026-11-06 已补上，消耗 40 积分',
          '当前连续签到 2 天',
          '11 月已补签 2/2 次',
          '当前积分 10，等级 铜牌',
        ].join('\n'),
      )
      expect(await say('补签')).toBe('11 月的补签次数已用完（每月 2 次）。')
    } finally {
      await server.close()
    }
  })
  it('names the month of the filled day in a monthly reward a make-up of last month reached', async () => {
    for (const [locale, openid, line] of [
      ['zh-CN', 'o_makeup_oct', '10 月累计签到 3 天奖励 +50 积分 🎁'],
      ['en', 'o_makeup_oct_en', '3 check-ins in month 10: bonus +50 points 🎁'],
    ] as const) {
      const clock = { at: new Date('2026-10-25T02:00:00Z'), now: () => clock.at }
      const server = await startServer(get().db, {
        clock,
        config: testConfig({ CHECKIN_MONTHLY_REWARDS: '3:50', QUANZI_LOCALE: locale }),
      })
      try {
        const wx = createPusher({
          url: `${server.url}/wechat`,
          account: SAFE_ACCOUNT,
          now: () => clock.at.getTime(),
        })
        const say = async (text: string) => (await wx.text(openid, text)).reply!.Content as string
        await wx.event(openid, 'subscribe')
        await say('签到')
        clock.at = new Date('2026-10-30T02:00:00Z')
        await say('签到')
        clock.at = new Date('2026-11-02T02:00:00Z')
        await say('签到')
        // October's third check-in, filled on 11-02: October's reward, not 本月 (November)'s
        const reply = await say('补签 2026-10-31')
        expect(reply.split('\n')).toContain(line)
        expect(reply).not.toMatch(/本月|this month/)
      } finally {
        await server.close()
      }
    }
  })
})
