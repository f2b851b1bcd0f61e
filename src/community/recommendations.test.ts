import { sql } from 'kysely'
import { expect, it } from 'vitest'
import { findJob } from '../../jobs/index.js'
import { forEachDatabase } from '../../test/databases.js'
import type { Config } from '../config.js'
import { silentLogger } from '../logger.js'
import { validateTemplateMessage } from '../wechat/api/messages.js'
import { recommendRewards, recomputeRecommendations, templateText } from './recommendations.js'
import { ensureDefaultRewards } from './rewards.js'

const now = new Date('2026-11-24T04:00:00Z')
const daysAgo = (d: number) => new Date(now.getTime() - d * 86_400_000)

it('templateText keeps a name inside a template field', () => {
  expect(templateText('精美礼品', 20)).toBe('精美礼品')
  expect(templateText('VIP 会员\n1 个月 🎁', 20)).toBe('VIP 会员 1 个月')
  expect(templateText('一二三四五六七八', 5)).toBe('一二三四…')
  expect(templateText('礼品', 0)).toBe('')
  // NEL, a line break \s does not match, and control characters: a space
  expect(templateText('会员\u0085月卡\t季', 20)).toBe('会员 月卡 季')
  // flags, keycaps and joined emoji leave nothing behind (no invisible joiners or selectors)
  expect(templateText('🇨🇳1️⃣❤️👨‍👩‍👧家庭卡', 20)).toBe('1家庭卡')
  for (const name of ['会员\u0085月卡', '🇨🇳国庆礼', '❤️👨‍👩‍👧家庭卡'])
    expect(() =>
      validateTemplateMessage({
        touser: 'o_x',
        template_id: 'tpl_1',
        data: { thing1: { value: templateText(name, 20) } },
      }),
    ).not.toThrow()
})

it('refuses a template value with a flag or a keycap, as any emoji', () => {
  for (const value of ['🇨🇳', '1️⃣', 'a\u200db'])
    expect(() =>
      validateTemplateMessage({ touser: 'o_x', template_id: 'tpl_1', data: { thing1: { value } } }),
    ).toThrow(/emoji/)
})

forEachDatabase('recommendations', (get, dbName) => {
  let n = 0
  /**
   * The hand-computed dataset (rewards R1–R3 = codes 1–3, product P1):
   *   m1: R1 R2 P1   m2: R1 R2   m3: R1 (40 days ago) R3   m4: R2 P1
   *   m5: R3 cancelled, P1 refunded (partly) — counts for nothing   m6: nothing
   * members: R1 3 (2 recent), R2 3, R3 1, P1 2
   * cosine: R1–R2 2/√9 = 0.6667, R1–R3 1/√3 = 0.5774, R1–P1 1/√6 = 0.4082, R2–P1 2/√6 = 0.8165
   */
  async function seed(appid: string) {
    const db = get().db
    await ensureDefaultRewards(db, appid, now)
    const rewards = await db
      .selectFrom('rewards')
      .select(['id', 'code'])
      .where('appid', '=', appid)
      .execute()
    const R = Object.fromEntries(rewards.map((r) => [r.code, r.id])) as Record<number, number>
    const { id: P1 } = await db
      .insertInto('products')
      .values({
        appid,
        sku: `p1-${appid}`,
        kind: 'flash_sale',
        name: '秒杀',
        price_fen: 100,
        stock: null,
        per_member_limit: null,
        created_at: now,
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    const m: number[] = []
    for (let i = 1; i <= 6; i++) {
      const row = await db
        .insertInto('members')
        .values({ appid, openid: `o_rec_${++n}`, first_seen_at: now, last_active_at: now })
        .returning('id')
        .executeTakeFirstOrThrow()
      m[i] = row.id
    }
    const redeemed = async (
      member: number,
      code: number,
      at = daysAgo(2),
      status: 'issued' | 'cancelled' = 'issued',
    ) =>
      db
        .insertInto('redemptions')
        .values({
          appid,
          member_id: member,
          reward_id: R[code]!,
          cost: 1,
          code: `C${++n}`,
          status,
          created_at: at,
        })
        .execute()
    const bought = async (member: number, refundedFen = 0) =>
      db
        .insertInto('orders')
        .values({
          appid,
          out_trade_no: `T${++n}`,
          member_id: member,
          mp_openid: `mp${member}`,
          product_id: P1,
          kind: 'flash_sale',
          description: '秒杀',
          amount_fen: 100,
          refunded_fen: refundedFen,
          status: 'paid',
          expires_at: now,
          created_at: daysAgo(3),
          paid_at: daysAgo(3),
        })
        .execute()
    await redeemed(m[1]!, 1)
    await redeemed(m[1]!, 2)
    await bought(m[1]!)
    await redeemed(m[2]!, 1)
    await redeemed(m[2]!, 2)
    await redeemed(m[2]!, 2) // twice: still one member
    await redeemed(m[3]!, 1, daysAgo(40))
    await redeemed(m[3]!, 3)
    await redeemed(m[4]!, 2)
    await bought(m[4]!)
    await redeemed(m[5]!, 3, daysAgo(1), 'cancelled')
    await bought(m[5]!, 50)
    // a pending (unpaid) order counts for nothing either
    await db
      .insertInto('orders')
      .values({
        appid,
        out_trade_no: `T${++n}`,
        member_id: m[6]!,
        mp_openid: 'mp6',
        product_id: P1,
        kind: 'flash_sale',
        description: '秒杀',
        amount_fen: 100,
        status: 'pending',
        expires_at: now,
        created_at: now,
      })
      .execute()
    return { R, P1, m }
  }
  const similarities = (appid: string) =>
    get()
      .db.selectFrom('item_similarities')
      .select(['item_kind', 'item_id', 'similar_kind', 'similar_id', 'together', 'rank'])
      .select(sql<number>`round(score::numeric, 4)::float8`.as('score'))
      .where('appid', '=', appid)
      .orderBy('item_kind')
      .orderBy('item_id')
      .orderBy('rank')
      .execute()

  it('computes cosine similarity and popularity from redemptions and paid, unrefunded orders', async () => {
    const appid = 'wxrecs000000000001'
    const { R, P1 } = await seed(appid)
    await recomputeRecommendations(get().db, { now, minTogether: 1 })
    const r = (id: number) => ({ kind: 'reward', id })
    const p = { kind: 'product', id: P1 }
    const row = (
      a: { kind: string; id: number },
      b: typeof a,
      together: number,
      score: number,
      rank: number,
    ) => ({
      item_kind: a.kind,
      item_id: a.id,
      similar_kind: b.kind,
      similar_id: b.id,
      together,
      score,
      rank,
    })
    const expected = [
      row(p, r(R[2]!), 2, 0.8165, 1),
      row(p, r(R[1]!), 1, 0.4082, 2),
      row(r(R[1]!), r(R[2]!), 2, 0.6667, 1),
      row(r(R[1]!), r(R[3]!), 1, 0.5774, 2),
      row(r(R[1]!), p, 1, 0.4082, 3),
      row(r(R[2]!), p, 2, 0.8165, 1),
      row(r(R[2]!), r(R[1]!), 2, 0.6667, 2),
      row(r(R[3]!), r(R[1]!), 1, 0.5774, 1),
    ]
    const sorted = (rows: typeof expected) =>
      [...rows].sort(
        (a, b) =>
          a.item_kind.localeCompare(b.item_kind) || a.item_id - b.item_id || a.rank - b.rank,
      )
    expect(await similarities(appid)).toEqual(sorted(expected))
    const popularity = await get()
      .db.selectFrom('item_popularity')
      .select(['item_kind', 'item_id', 'members', 'recent_members'])
      .where('appid', '=', appid)
      .orderBy('item_kind')
      .orderBy('item_id')
      .execute()
    expect(popularity).toEqual(
      [
        { item_kind: 'product', item_id: P1, members: 2, recent_members: 2 },
        { item_kind: 'reward', item_id: R[1]!, members: 3, recent_members: 2 },
        { item_kind: 'reward', item_id: R[2]!, members: 3, recent_members: 3 },
        { item_kind: 'reward', item_id: R[3]!, members: 1, recent_members: 1 },
      ].sort((a, b) => a.item_kind.localeCompare(b.item_kind) || a.item_id - b.item_id),
    )
    // minTogether 2 (the default) keeps only the pairs two members share; topN cuts per item.
    await recomputeRecommendations(get().db, { now })
    expect((await similarities(appid)).map((x) => x.score)).toEqual([
      0.8165, 0.6667, 0.8165, 0.6667,
    ])
    await recomputeRecommendations(get().db, { now, minTogether: 1, topN: 1 })
    expect((await similarities(appid)).map((x) => x.rank)).toEqual([1, 1, 1, 1])
  })

  it('recommends similar rewards first, popular ones as the fallback, never one redeemed or out of stock', async () => {
    const appid = 'wxrecs000000000002'
    const { R, m } = await seed(appid)
    await recomputeRecommendations(get().db, { now, minTogether: 1 })
    const recs = await recommendRewards(get().db, { appid, memberIds: m.slice(1) })
    const names = (i: number) => recs.get(m[i]!)?.map((x) => `${x.code}:${x.because}`)
    // m3 has R1, R3: R2 is similar to R1; nothing else is left.
    expect(names(3)).toEqual(['2:similar'])
    // m4 has R2, P1: R1 scores 0.6667 + 0.4082; R3 only as popular.
    expect(names(4)).toEqual(['1:similar', '3:popular'])
    // m6 has nothing (a pending order): popular by recent members, then all time — R2 (3), R1 (2), R3.
    expect(names(6)).toEqual(['2:popular', '1:popular', '3:popular'])
    // m5's cancelled R3 and refunded P1 count for nothing: R3 is still offered.
    expect(names(5)).toEqual(['2:popular', '1:popular', '3:popular'])
    // m1 has R1 and R2: R3 is similar to R1.
    expect(names(1)).toEqual(['3:similar'])
    expect(recs.get(m[1]!)).toEqual([
      { code: 3, name: 'VIP 会员 1 个月', cost: 1000, because: 'similar' },
    ])
    // limit
    expect(
      (await recommendRewards(get().db, { appid, memberIds: [m[6]!], limit: 1 })).get(m[6]!),
    ).toEqual([{ code: 2, name: '精美礼品', cost: 500, because: 'popular' }])
    // out of stock and disabled rewards are not offered
    await get().db.updateTable('rewards').set({ stock: 0 }).where('id', '=', R[2]!).execute()
    await get().db.updateTable('rewards').set({ enabled: false }).where('id', '=', R[3]!).execute()
    const after = await recommendRewards(get().db, { appid, memberIds: [m[3]!, m[6]!] })
    expect(after.get(m[3]!)).toBeUndefined()
    expect(after.get(m[6]!)?.map((x) => x.code)).toEqual([1])
    // another account's data never leaks in
    expect(
      (await recommendRewards(get().db, { appid: 'wxrecs_other', memberIds: [m[6]!] })).size,
    ).toBe(0)
  })

  it('the nightly job is idempotent and reruns give the same tables', async () => {
    const appid = 'wxrecs000000000003'
    await seed(appid)
    const job = findJob('recompute-recommendations')!
    expect(job).toBeDefined()
    const ctx = {
      db: get().db,
      clock: { now: () => now },
      logger: silentLogger,
      config: {} as Config,
      slot: now,
    }
    const first = await job.run(ctx)
    const before = await similarities(appid)
    const second = await job.run(ctx)
    expect(await similarities(appid)).toEqual(before)
    expect(second).toMatchObject({ items: first.items, similarities: first.similarities })
    expect(before.length).toBeGreaterThan(0)
    // the summary counts every account's rows (this file's earlier accounts too)
    const all = await get().db.selectFrom('item_similarities').select('appid').execute()
    expect(first).toMatchObject({ similarities: all.length })
    expect(all.length).toBeGreaterThanOrEqual(before.length)
  })

  if (dbName === 'postgres')
    it('concurrent rebuilds on two connections serialize (no duplicate rows, same result)', async () => {
      const appid = 'wxrecs000000000004'
      await seed(appid)
      const other = get().open()
      await Promise.all([
        recomputeRecommendations(get().db, { now, minTogether: 1 }),
        recomputeRecommendations(other, { now, minTogether: 1 }),
      ])
      expect(await similarities(appid)).toHaveLength(8)
    })
})
