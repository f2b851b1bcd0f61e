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
