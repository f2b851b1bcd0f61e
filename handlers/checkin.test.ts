import { CompiledQuery } from 'kysely'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { checkinStatement } from '../src/community/checkins.js'
import { nameTag } from '../src/community/display-names.js'
import { applyDelta, withMemberLocked } from '../src/community/points-ledger.js'
import { createPusher } from '../src/sandbox/pusher.js'
import { forEachDatabase } from '../test/databases.js'
import { SAFE_ACCOUNT, startServer, type TestServer } from '../test/server.js'
import { countStatements } from '../test/statement-counter.js'

forEachDatabase('签到 / 积分 / 我的 through the OA chat', (get) => {
  let server: TestServer
  // One community day for the suite's own server and pushes (a Wednesday, 12:00 Asia/Shanghai):
  // on the real clock a run across local midnight awarded a second daily_login mid-test (seen in
  // CI at 00:00 Asia/Shanghai) and a second check-in. The tests that move across days have their
  // own servers and clocks, on other weeks (the ranking here is this week's).
  const clock = { now: () => new Date('2026-11-18T04:00:00Z') }
  beforeAll(async () => {
    server = await startServer(get().db, { clock })
  })
  afterAll(() => server.close())

  it('checks in once a day and reports points, level and progress', async () => {
    const wx = server.pusher()
    // the first message of the day also earns daily_login (+10), once: the reply says so
    const first = await wx.text('o_checkin', '签到')
    expect(first.reply!.Content).toBe(
      '签到成功 ✅ +5 积分\n已连续签到 1 天\n每日到访奖励 +10 积分（每天第一条消息）\n当前积分 15，等级 铜牌',
    )
    const again = await wx.text('o_checkin', 'checkin')
    expect(again.reply!.Content).toBe(
      '今天已经签到过啦，明天再来～\n已连续签到 1 天\n当前积分 15，等级 铜牌',
    )
    expect((await wx.text('o_checkin', '积分')).reply!.Content).toBe(
      '当前积分 15，等级 铜牌\n再获得 985 积分即可升级为 银牌',
    )
    const me = (await wx.text('o_checkin', '我的')).reply!.Content as string
    expect(me).toContain('积分 15（累计 15）')
    expect(me).toContain('连续签到 1 天，共签到 1 天')
    expect(me).toContain('今天已签到')
    expect(me).toContain('本月签到 1 天，已补签 0/2 次')
    expect(me).toContain('等级权益：签到与活动积分 1 倍')
    expect((await wx.text('o_checkin', '帮助')).reply!.Content).toContain(
      '每日：签到 · 补签 [日期] · 我的',
    )
    await wx.text('o_rival', '签到')
    const board = (await wx.text('o_checkin', '排行榜')).reply!.Content
    expect(board).toBe(
      `本周积分排行榜\n1. 你 — 15\n1. 粉丝·${nameTag('o_rival')} — 15\n你的排名：第 1 名（15 积分）`,
    )
    expect((await wx.text('o_checkin', '排行榜 总')).reply!.Content).toMatch(/^积分总榜\n/)
    const shop = (await wx.text('o_checkin', '兑换')).reply!.Content
    expect(shop).toContain('积分商城（你有 15 积分）\n1. 10元优惠券 — 100 积分（剩 1000）')
    expect((await wx.text('o_checkin', '兑换 1')).reply!.Content).toBe(
      '积分不足：「10元优惠券」需要 100 积分，你有 15 积分。',
    )
    // an operator grant (the operator API is not built yet: straight through the ledger service)
    const m = await get()
      .db.selectFrom('members')
      .select('id')
      .where('openid', '=', 'o_checkin')
      .executeTakeFirstOrThrow()
    await withMemberLocked(get().db, m.id, (trx, row) =>
      applyDelta(
        trx,
        row,
        {
          appid: SAFE_ACCOUNT.appid,
          memberId: m.id,
          rule: 'grant',
          idempotencyKey: 'e2e-grant',
          now: clock.now(),
          timeZone: 'Asia/Shanghai',
        },
        1000,
      ),
    )
    const redeemed = (await wx.text('o_checkin', '兑换1')).reply!.Content as string
    expect(redeemed).toMatch(
      /^兑换成功 🎁 10元优惠券\n兑换码：[A-Z0-9]{10}\n消耗 100 积分，剩余 915 积分$/,
    )
    expect((await wx.text('o_checkin', '积分')).reply!.Content).toBe(
      '当前积分 915，等级 银牌\n再获得 3985 积分即可升级为 金牌',
    )
  })

  it('mentions daily_login only in the reply of the push that earned it', async () => {
    const clock = { at: new Date('2026-11-10T02:00:00Z'), now: () => clock.at }
    const dayServer = await startServer(get().db, { clock })
    try {
      const wx = createPusher({
        url: `${dayServer.url}/wechat`,
        account: SAFE_ACCOUNT,
        now: () => clock.at.getTime(),
      })
      // the day's first message was something else: 签到 pays +5 and says only that
      expect((await wx.text('o_daily', '积分')).reply!.Content).toMatch(/^当前积分 10，/)
      expect((await wx.text('o_daily', '签到')).reply!.Content).toBe(
        '签到成功 ✅ +5 积分\n已连续签到 1 天\n当前积分 15，等级 铜牌',
      )
      // the next day 签到 comes first: both awards are in the reply, adding up to the balance
      clock.at = new Date('2026-11-11T02:00:00Z')
      expect((await wx.text('o_daily', '签到')).reply!.Content).toBe(
        '签到成功 ✅ +5 积分\n已连续签到 2 天\n每日到访奖励 +10 积分（每天第一条消息）\n当前积分 30，等级 铜牌',
      )
    } finally {
      await dayServer.close()
    }
  })

  it('announces a level-up earned by the first message of the day (daily_login)', async () => {
    const clock = { at: new Date('2026-11-24T02:00:00Z'), now: () => clock.at }
    const dayServer = await startServer(get().db, { clock })
    try {
      const wx = createPusher({
        url: `${dayServer.url}/wechat`,
        account: SAFE_ACCOUNT,
        now: () => clock.at.getTime(),
      })
      expect((await wx.text('o_dayup', '积分')).reply!.Content).toBe(
        '当前积分 10，等级 铜牌\n再获得 990 积分即可升级为 银牌',
      )
      const m = await get()
        .db.selectFrom('members')
        .selectAll()
        .where('openid', '=', 'o_dayup')
        .executeTakeFirstOrThrow()
      const base = { appid: SAFE_ACCOUNT.appid, memberId: m.id, now: clock.at }
      await applyDelta(
        get().db,
        m,
        { ...base, rule: 'grant', idempotencyKey: 'dayup', timeZone: 'Asia/Shanghai' },
        985,
      )
      clock.at = new Date('2026-11-25T02:00:00Z') // the next community day: daily_login +10 → 1005
      expect((await wx.text('o_dayup', '你好')).reply!.Content).toContain(
        '恭喜升级为 银牌！赚取积分 2 倍 🎉',
      )
      expect((await wx.text('o_dayup', '积分')).reply!.Content).toBe(
        '当前积分 1005，等级 银牌\n再获得 3995 积分即可升级为 金牌',
      )
    } finally {
      await dayServer.close()
    }
  })
  it('costs three statements for a first check-in: the claim, the check-in, the reply store', async () => {
    // default settings: badge rules on, make-ups on (the streak is 1), monthly rewards off
    const statements = countStatements(get().db)
    const counted = await startServer(statements.db, { clock })
    try {
      const wx = counted.pusher()
      statements.reset()
      const reply = (await wx.text('o_checkin_count', '签到')).reply!.Content as string
      expect(reply).toMatch(/^签到成功 ✅ \+5 积分\n已连续签到 1 天\n/)
      expect(statements.count()).toBe(3)
      statements.reset()
      expect((await wx.text('o_checkin_count', '签到')).reply!.Content).toMatch(/^今天已经签到过啦/)
      expect(statements.count()).toBe(3)
    } finally {
      await counted.close()
    }
  })
  it('first check-ins that arrive together share their check-in statements', async () => {
    let checkins = 0
    const db = get().db.withPlugin({
      transformQuery: (args) => {
        const node = args.node as { kind: string; sqlFragments?: readonly string[] }
        const text = node.kind === 'RawNode' ? (node.sqlFragments?.join('') ?? '') : ''
        // a check-in alone, or a batch of them
        if (/quanzi_checkin_(day|batch)\(/.test(text)) checkins++
        return args.node
      },
      transformResult: async (args) => args.result,
    })
    const counted = await startServer(db, { clock })
    try {
      const wx = counted.pusher()
      const pushes = await Promise.all(
        Array.from({ length: 16 }, (_, i) =>
          wx.prepare({
            FromUserName: `o_together_${i}`,
            CreateTime: Math.floor(clock.now().getTime() / 1000),
            MsgType: 'text',
            Content: '签到',
            MsgId: BigInt(Date.now()) * 100n + BigInt(i),
          }),
        ),
      )
      const replies = await Promise.all(pushes.map((p) => wx.send(p)))
      for (const r of replies) expect(r.reply!.Content).toMatch(/^签到成功 ✅ \+5 积分\n/)
      // one statement per check-in before they were batched
      expect(checkins).toBeGreaterThan(0)
      expect(checkins).toBeLessThan(16)
    } finally {
      await counted.close()
    }
  })
  it('reads the badge candidates once in the check-in statement (one scan of badge_rules)', async () => {
    // The candidates feed two columns (the rules, and whether one counts check-ins): a CTE that is
    // not materialized would be planned and run once per reference.
    const { db } = get()
    const statement = checkinStatement({
      appid: SAFE_ACCOUNT.appid,
      memberId: 1,
      now: new Date('2026-12-03T04:00:00Z'),
      day: '2026-12-03',
      settings: { streakBonuses: {} },
    }).compile(db)
    const { rows } = await db.executeQuery(
      CompiledQuery.raw(`explain (format json) ${statement.sql}`, [...statement.parameters]),
    )
    expect(JSON.stringify(rows).match(/"Relation Name":\s*"badge_rules"/g)).toHaveLength(1)
  })
})
