import { afterAll, beforeAll, expect, it } from 'vitest'
import { applyDelta, withMemberLocked } from '../src/community/points-ledger.js'
import { recomputeRecommendations } from '../src/community/recommendations.js'
import { ensureDefaultRewards } from '../src/community/rewards.js'
import { createPusher } from '../src/sandbox/pusher.js'
import { forEachDatabase } from '../test/databases.js'
import { SAFE_ACCOUNT, startServer, type TestServer } from '../test/server.js'

const appid = SAFE_ACCOUNT.appid
const now = new Date('2026-11-24T04:00:00Z')

forEachDatabase('兑换 recommends what members like you redeemed', (get) => {
  let server: TestServer
  const clock = { now: () => now }
  beforeAll(async () => {
    server = await startServer(get().db, { clock })
  })
  afterAll(() => server.close())

  it('shows popular rewards to a member with none, similar ones after a redemption', async () => {
    const db = get().db
    await ensureDefaultRewards(db, appid, now)
    const R = Object.fromEntries(
      (
        await db.selectFrom('rewards').select(['id', 'code']).where('appid', '=', appid).execute()
      ).map((r) => [r.code, r.id]),
    ) as Record<number, number>
    // history: R1 & R3 twice, R1 & R2 once
    let n = 0
    for (const codes of [
      [1, 3],
      [1, 3],
      [1, 2],
    ]) {
      const { id } = await db
        .insertInto('members')
        .values({ appid, openid: `o_hist_${++n}`, first_seen_at: now })
        .returning('id')
        .executeTakeFirstOrThrow()
      for (const c of codes)
        await db
          .insertInto('redemptions')
          .values({
            appid,
            member_id: id,
            reward_id: R[c]!,
            cost: 1,
            code: `H${n}${c}`,
            status: 'issued',
            created_at: now,
          })
          .execute()
    }
    const wx = createPusher({
      url: `${server.url}/wechat`,
      account: SAFE_ACCOUNT,
      now: () => now.getTime(),
    })
    // before the first nightly rebuild: no recommendation lines
    const plain = (await wx.text('o_rec_me', '兑换')).reply!.Content as string
    expect(plain).not.toMatch(/大家都在兑|相似的会员/)
    await recomputeRecommendations(db, { now, minTogether: 1 })
    const list = (await wx.text('o_rec_me', '兑换')).reply!.Content as string
    expect(list).toContain(
      '4. 50元返现 — 5000 积分（剩 50）\n🔥 大家都在兑：10元优惠券（兑换 1） / VIP 会员 1 个月（兑换 3） / 精美礼品（兑换 2）\n发送「兑换 编号」兑换',
    )
    const me = await db
      .selectFrom('members')
      .selectAll()
      .where('openid', '=', 'o_rec_me')
      .executeTakeFirstOrThrow()
    await withMemberLocked(db, me.id, (trx, m) =>
      applyDelta(
        trx,
        m,
        {
          appid,
          memberId: me.id,
          rule: 'grant',
          idempotencyKey: 'rec-grant',
          now,
          timeZone: 'Asia/Shanghai',
        },
        1000,
      ),
    )
    const done = (await wx.text('o_rec_me', '兑换 1')).reply!.Content as string
    expect(done).toMatch(
      /^兑换成功 🎁 10元优惠券\n兑换码：[A-Z0-9]{10}\n消耗 100 积分，剩余 \d+ 积分\n💡 和你相似的会员还兑换了：VIP 会员 1 个月（兑换 3） \/ 精美礼品（兑换 2）$/,
    )
    const again = (await wx.text('o_rec_me', 'redeem')).reply!.Content as string
    expect(again).toContain('相似的会员还兑换了：VIP 会员 1 个月（兑换 3）')
  })
})

/** Eighteen rewards with names of 20 to 60 characters (the admin API allows 60). */
const catalog = Array.from({ length: 18 }, (_, i) => {
  const length = 20 + Math.round((i * 40) / 17)
  return {
    code: i + 1,
    name: `${i + 1}号${'社区周年纪念限定款精美礼品套装'.repeat(5)}`.slice(0, length),
    cost: 100 * (i + 1),
    stock: i % 3 === 0 ? null : 10 + i,
  }
})

forEachDatabase('兑换 lists the catalog in pages that fit a reply', (get) => {
  let server: TestServer
  const clock = { now: () => now }
  const bytes = (s: string) => new TextEncoder().encode(s).length
  beforeAll(async () => {
    await get()
      .db.insertInto('rewards')
      .values(catalog.map((r) => ({ ...r, appid, per_member_limit: null, created_at: now })))
      .execute()
    server = await startServer(get().db, { clock })
  })
  afterAll(() => server.close())

  it('answers 兑换 within 2048 bytes with a next-page hint, and 兑换 第2页 with the rest', async () => {
    expect(catalog.map((r) => [...r.name].length)).toEqual(
      expect.arrayContaining([20, 60]) as number[],
    )
    const lines = catalog.map(
      (r) => `${r.code}. ${r.name} — ${r.cost} 积分${r.stock === null ? '' : `（剩 ${r.stock}）`}`,
    )
    expect(bytes(lines.join('\n'))).toBeGreaterThan(2048) // the list alone is over the limit
    const wx = server.pusher()
    const first = (await wx.text('o_catalog', '兑换')).reply!.Content as string
    expect(bytes(first)).toBeLessThanOrEqual(2048)
    expect(first).toMatch(/^积分商城（你有 \d+ 积分）\n1\. /)
    expect(first).toContain('发送「兑换 编号」兑换，例如「兑换 1」')
    expect(first).toMatch(/第 1\/2 页，发送「兑换 第2页」看下一页。$/)

    const second = (await wx.text('o_catalog', '兑换 第2页')).reply!.Content as string
    expect(bytes(second)).toBeLessThanOrEqual(2048)
    expect(second).toMatch(/第 2\/2 页（最后一页）。$/)
    // every reward once, in order, in today's format
    const shown = [first, second].flatMap((p) => p.split('\n').filter((l) => /^\d+\. /.test(l)))
    expect(shown).toEqual(lines)
    expect((await wx.text('o_catalog', 'redeem page 2')).reply!.Content).toBe(second)
    expect((await wx.text('o_catalog', '兑换 第3页')).reply!.Content).toBe(
      '没有第 3 页（一共 2 页），发送「兑换 第1页」看第 1 页。',
    )
    // a bare number still redeems that reward
    expect((await wx.text('o_catalog', '兑换 2')).reply!.Content).toMatch(
      new RegExp(`^积分不足：「${catalog[1]!.name}」需要 200 积分，你有 \\d+ 积分。$`),
    )
  })
})
