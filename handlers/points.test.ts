/** 积分 / 我的 and the console's member page show the next points to expire (POINTS_EXPIRY). */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { createApp } from '../src/app.js'
import { addDays, localDay } from '../src/community/community-time.js'
import { stampLots } from '../src/community/points-expiry.js'
import { applyDelta, withMemberLocked } from '../src/community/points-ledger.js'
import { silentLogger } from '../src/logger.js'
import { createPusher } from '../src/sandbox/pusher.js'
import { seedOperators, signIn } from '../test/console-kit.js'
import { forEachDatabase } from '../test/databases.js'
import { SAFE_ACCOUNT, startServer, type TestServer, testConfig } from '../test/server.js'
import { createRouter } from './index.js'

const TZ = 'Asia/Shanghai'

forEachDatabase('expiring points in 积分, 我的 and the member page', (get) => {
  let server: TestServer
  // one instant for the server, the grant and the stamping (a real one: pushes are signed now)
  const now = new Date()
  const clock = { now: () => now }
  beforeAll(async () => {
    server = await startServer(get().db, { clock })
  })
  afterAll(() => server.close())

  it('shows how many points are valid until when, once the lots are stamped', async () => {
    const wx = createPusher({ url: `${server.url}/wechat`, account: SAFE_ACCOUNT })
    const openid = 'o_expiring_points'
    // the first message earns daily_login; no policy applied yet: no expiry line
    expect((await wx.text(openid, '积分')).reply!.Content).not.toContain('有效期')
    const { id } = await get()
      .db.selectFrom('members')
      .select('id')
      .where('openid', '=', openid)
      .executeTakeFirstOrThrow()
    await withMemberLocked(get().db, id, (trx, m) =>
      applyDelta(
        trx,
        m,
        {
          appid: SAFE_ACCOUNT.appid,
          memberId: id,
          rule: 'grant',
          idempotencyKey: 'expiring-grant',
          now,
          timeZone: TZ,
        },
        90,
      ),
    )
    await stampLots(get().db, {
      now,
      timeZone: TZ,
      settings: { policy: { mode: 'days', days: 30 }, noticeDays: 7 },
    })
    const date = addDays(localDay(now, TZ), 30)
    const line = `其中 100 积分有效期至 ${date}，记得及时使用`
    expect((await wx.text(openid, '积分')).reply!.Content).toBe(
      `当前积分 100，等级 铜牌\n${line}\n再获得 900 积分即可升级为 银牌`,
    )
    expect((await wx.text(openid, '我的')).reply!.Content).toContain(`\n${line}\n`)

    await seedOperators(get().db, now)
    const app = createApp({
      config: testConfig(),
      db: get().db,
      router: createRouter(),
      logger: silentLogger,
      clock,
      clientAddress: () => '203.0.113.9',
    })
    const { cookie } = await signIn(app, 'viewer1')
    const page = await app.request(`/console/members/${openid}`, { headers: { cookie } })
    const html = await page.text()
    expect(html).toContain('即将过期')
    expect(html).toContain(`100 积分，有效期至 ${date}`)
  })
})

forEachDatabase('我的 fits a member holding many badges', (get) => {
  let server: TestServer
  const now = new Date()
  beforeAll(async () => {
    server = await startServer(get().db, { clock: { now: () => now } })
  })
  afterAll(() => server.close())

  it('lists the badges that fit within 2048 bytes, then 「等」', async () => {
    const db = get().db
    const wx = server.pusher()
    const openid = 'o_many_badges'
    await wx.text(openid, '我的')
    const { id } = await db
      .selectFrom('members')
      .select('id')
      .where('openid', '=', openid)
      .executeTakeFirstOrThrow()
    // 80 badges with 20-character names (the admin API's longest): 4800+ bytes of names
    const names = Array.from({ length: 80 }, (_, i) =>
      `${String(i + 1).padStart(2, '0')}号社区年度荣誉纪念徽章限定款式收藏`.slice(0, 20),
    )
    await db
      .insertInto('badge_rules')
      .values(
        names.map((name, i) => ({
          appid: SAFE_ACCOUNT.appid,
          key: `many_${i + 1}`,
          name,
          predicate: '{"counter":"checkins","gte":1}',
          updated_at: now,
        })),
      )
      .execute()
    await db
      .insertInto('member_badges')
      .values(
        names.map((_, i) => ({
          member_id: id,
          badge_key: `many_${i + 1}`,
          appid: SAFE_ACCOUNT.appid,
          awarded_at: new Date(now.getTime() + i * 1000),
        })),
      )
      .execute()
    const me = (await wx.text(openid, '我的')).reply!.Content as string
    expect(new TextEncoder().encode(me).length).toBeLessThanOrEqual(2048)
    const line = me.split('\n').at(-1)!
    expect(line).toMatch(/^徽章 80 枚：01号.*、\d\d号[^、]* 等$/)
    const shown = line.slice('徽章 80 枚：'.length, -' 等'.length).split('、')
    expect(shown).toEqual(names.slice(0, shown.length))
    expect(shown.length).toBeGreaterThan(10)
  })
})
