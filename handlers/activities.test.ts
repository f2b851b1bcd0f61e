import { afterAll, beforeAll, expect, it } from 'vitest'
import { ensureDefaultActivities } from '../src/community/activities.js'
import { applyDelta, withMemberLocked } from '../src/community/points-ledger.js'
import { forEachDatabase } from '../test/databases.js'
import { SAFE_ACCOUNT, startServer, type TestServer, testConfig } from '../test/server.js'

const appid = SAFE_ACCOUNT.appid
const now = new Date('2026-11-24T04:00:00Z')
const bytes = (s: string) => new TextEncoder().encode(s).length

/** Twelve open activities, each described in 45 characters (the admin API allows 200). */
const activities = Array.from({ length: 12 }, (_, i) => ({
  key: `club-${i + 1}`,
  name: `第${i + 1}期社区读书会线下分享`,
  description: `每周六上午十点在社区活动室一起读书分享，读完一本书的朋友可以领取二十积分奖励哦欢迎来参加${i % 10}`,
}))

forEachDatabase('活动 lists activities in pages that fit a reply', (get) => {
  let zh: TestServer
  let en: TestServer
  const clock = { now: () => now }
  beforeAll(async () => {
    const db = get().db
    await ensureDefaultActivities(db, appid, now)
    await db
      .updateTable('activities')
      .set({ status: 'closed' })
      .where('appid', '=', appid)
      .execute()
    await db
      .insertInto('activities')
      .values(
        activities.map((a) => ({
          ...a,
          appid,
          cron: '0 10 * * 6',
          cadence: 'weekly' as const,
          status: 'open' as const,
          created_at: now,
        })),
      )
      .execute()
    zh = await startServer(db, { clock })
    en = await startServer(db, { clock, config: testConfig({ QUANZI_LOCALE: 'en' }) })
  })
  afterAll(async () => {
    await zh.close()
    await en.close()
  })

  it('answers 活动 within 2048 bytes with a next-page hint, and 活动 2 with the rest', async () => {
    expect(activities.every((a) => [...a.description].length === 45)).toBe(true)
    const wx = zh.pusher()
    const lines = activities.map((a) => `· ${a.name}（${a.key}）— ${a.description}`)
    expect(bytes(lines.join('\n'))).toBeGreaterThan(2048) // the list alone is over the limit

    const first = (await wx.text('o_act_pages', '活动')).reply!.Content as string
    expect(bytes(first)).toBeLessThanOrEqual(2048)
    expect(first.startsWith('本期社区活动：\n')).toBe(true)
    expect(first).toContain('发送「报名 活动代码」参加，例如「报名 topic」。')
    expect(first.endsWith('第 1/2 页，发送「活动 2」看下一页。')).toBe(true)

    const second = (await wx.text('o_act_pages', '活动 2')).reply!.Content as string
    expect(bytes(second)).toBeLessThanOrEqual(2048)
    expect(second.endsWith('第 2/2 页（最后一页）。')).toBe(true)
    // every activity once, in order, in today's format
    const shown = [first, second].flatMap((p) => p.split('\n').filter((l) => l.startsWith('· ')))
    expect(shown).toEqual(lines)
    expect((await wx.text('o_act_pages', '活动第2页')).reply!.Content).toBe(second)

    expect((await wx.text('o_act_pages', '活动 3')).reply!.Content).toBe(
      '没有第 3 页（一共 2 页），发送「活动 1」看第 1 页。',
    )
  })

  it('pages the English list the same way', async () => {
    const wx = en.pusher()
    const first = (await wx.text('o_act_pages_en', 'activities')).reply!.Content as string
    expect(bytes(first)).toBeLessThanOrEqual(2048)
    expect(first.startsWith('Community activities:\n')).toBe(true)
    expect(first.endsWith('Page 1 of 2: send "activities 2" for the next page.')).toBe(true)
    const second = (await wx.text('o_act_pages_en', 'activities 2')).reply!.Content as string
    expect(second.endsWith('Page 2 of 2 (the last).')).toBe(true)
    const shown = [first, second].flatMap((p) => p.split('\n').filter((l) => l.startsWith('· ')))
    expect(shown).toEqual(activities.map((a) => `· ${a.name} (${a.key}) — ${a.description}`))
    expect((await wx.text('o_act_pages_en', 'activities page 5')).reply!.Content).toBe(
      'There is no page 5 (there are 2). Send "activities 1" for page 1.',
    )
  })
  it("names an activity's points as each member gets them (× their level), never one fixed figure", async () => {
    const db = get().db
    const reopen = (status: 'open' | 'closed') =>
      db
        .updateTable('activities')
        .set({ status })
        .where('appid', '=', appid)
        .where('key', '=', 'topic')
        .execute()
    await reopen('open')
    try {
      const wx = zh.pusher()
      await wx.text('o_act_gold', '你好')
      const { id } = await db
        .selectFrom('members')
        .select('id')
        .where('appid', '=', appid)
        .where('openid', '=', 'o_act_gold')
        .executeTakeFirstOrThrow()
      await withMemberLocked(db, id, (trx, m) =>
        applyDelta(
          trx,
          m,
          {
            appid,
            memberId: id,
            rule: 'grant',
            idempotencyKey: 'act-gold',
            now,
            timeZone: 'Asia/Shanghai',
          },
          6000,
        ),
      )
      const topic = (reply: string) => reply.split('\n').find((l) => l.includes('（topic）'))
      const gold = (await wx.text('o_act_gold', '活动')).reply!.Content as string
      expect(topic(gold)).toBe(
        '· 每周话题讨论（topic）— 每周三晚 8 点开聊，参与讨论得积分（基础 10 分，乘你的等级倍数）（你参加可得 30 积分）',
      )
      const bronze = (await wx.text('o_act_bronze', '活动')).reply!.Content as string
      expect(topic(bronze)).toContain('（你参加可得 10 积分）')
      // activities worth no points name none
      expect(gold).not.toContain('你参加可得 0')
    } finally {
      await reopen('closed')
    }
  })
})
