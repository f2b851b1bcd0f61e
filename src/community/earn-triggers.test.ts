import { sql, type Transaction } from 'kysely'
import { describe, expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { pointsBalance } from '../../test/member-fixtures.js'
import type { Database } from '../db/schema.js'
import { birthMonth, city, updateProfile } from './profile.js'
import { hideReview, reviewText, submitReview, unhideReview } from './reviews.js'
import { fingerprint, isArticleUrl, openShareLink, shareLink } from './shares.js'

const TZ = 'Asia/Shanghai'
const APPID = 'wxearn0000000000001'
const WECHAT_UA =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN'
const ARTICLE = 'https://mp.weixin.qq.com/s/AbCdEf123'

describe('earn input checks', () => {
  it('reads birthday months and cities as people type them', () => {
    expect(
      ['5', '05', '5月', '5 月', '五月', '十二月份', 'May', 'dec.', 'September'].map(birthMonth),
    ).toEqual([5, 5, 5, 5, 5, 12, 5, 12, 9])
    expect(['0', '13', '5日', 'ma', '十三月', '', 'mayday'].map(birthMonth)).toEqual([
      null,
      null,
      null,
      null,
      null,
      null,
      null,
    ])
    expect(city(' 杭州 ')).toBe('杭州')
    expect(city('New  York')).toBe('New York')
    expect(city("Xi'an")).toBe("Xi'an")
    for (const bad of ['', '杭州1', '杭州\n上海', 'a'.repeat(21), '<b>', '-杭州'])
      expect(city(bad)).toBeNull()
  })

  it('checks review texts and article URLs', () => {
    expect(reviewText('  很好喝，回购！ ')).toEqual({ ok: true, text: '很好喝，回购！' })
    expect(reviewText('好')).toEqual({ ok: false, reason: 'too_short' })
    expect(reviewText('好'.repeat(501))).toEqual({ ok: false, reason: 'too_long' })
    expect(reviewText('很好喝\u0007回购')).toEqual({ ok: false, reason: 'control' })
    expect(reviewText('第一行\n第二行很好')).toMatchObject({ ok: true })
    expect(isArticleUrl(ARTICLE)).toBe(true)
    for (const bad of [
      'http://mp.weixin.qq.com/s/x',
      'https://evil.example/s/x',
      'https://mp.weixin.qq.com.evil.example/s/x',
      'https://user@mp.weixin.qq.com/s/x',
      'https://mp.weixin.qq.com/s/x\r\nSet-Cookie: a=b',
    ])
      expect(isArticleUrl(bad)).toBe(false)
  })
})

forEachDatabase('earn rules with triggers', (get, dbName) => {
  let n = 0
  const day1 = new Date('2026-12-01T02:00:00Z')
  const day2 = new Date('2026-12-02T02:00:00Z')
  async function member(extra: { display_name?: string } = {}) {
    const row = await get()
      .db.insertInto('members')
      .values({ appid: APPID, openid: `o_earn_${++n}`, first_seen_at: day1, ...extra })
      .returning('id')
      .executeTakeFirstOrThrow()
    return row.id
  }
  const product = async () =>
    await get()
      .db.insertInto('products')
      .values({
        appid: APPID,
        sku: `tea-${++n}`,
        kind: 'flash_sale',
        name: '桂花乌龙',
        price_fen: 990,
        created_at: day1,
      })
      .returning(['id', 'sku'])
      .executeTakeFirstOrThrow()
  async function order(memberId: number, productId: number, status = 'paid', refunded = 0) {
    const no = `QZTEST${++n}`
    await get()
      .db.insertInto('orders')
      .values({
        appid: APPID,
        out_trade_no: no,
        member_id: memberId,
        mp_openid: 'o_mp',
        product_id: productId,
        kind: 'flash_sale',
        description: '桂花乌龙',
        amount_fen: 990,
        status: status as 'paid',
        refunded_fen: refunded,
        expires_at: day1,
        created_at: day1,
      })
      .execute()
    return no
  }
  const balance = (id: number) => pointsBalance(get().db, id)
  /** Σ ledger == cached balance ≥ 0. */
  const ledgerSum = async (id: number) => {
    const { rows } = await sql<{ sum: string | null }>`
      select sum(delta) as sum from points_ledger where member_id = ${id}`.execute(get().db)
    return Number(rows[0]!.sum ?? 0)
  }
  const share = (memberId: number, ref: string, address: string) =>
    shareLink(get().db, { memberId, kind: 'article', ref, address, appid: APPID, now: day1 })
  const review = (memberId: number, outTradeNo: string, now = day1, db = get().db) =>
    submitReview(db, { memberId, outTradeNo, rating: 5, text: '很好喝，回购！', now, timeZone: TZ })

  it('product_review: a paid, not refunded order of the member, once, 3 a day', async () => {
    const me = await member()
    const other = await member()
    const p = await product()
    expect(await review(me, await order(other, p.id))).toEqual({ status: 'not_found' })
    expect(await review(me, await order(me, p.id, 'pending'))).toEqual({ status: 'not_eligible' })
    expect(await review(me, await order(me, p.id, 'refunded', 990))).toEqual({
      status: 'not_eligible',
    })
    expect(await review(me, await order(me, p.id, 'paid', 100))).toEqual({
      status: 'not_eligible',
    })
    const orders = [await order(me, p.id), await order(me, p.id), await order(me, p.id)]
    const fourth = await order(me, p.id)
    for (const no of orders) expect(await review(me, no)).toMatchObject({ points: 20 })
    expect(await review(me, orders[0]!)).toEqual({ status: 'already_reviewed' })
    expect(await review(me, fourth)).toMatchObject({ status: 'created', points: 0, capped: true })
    // the next community day, the cap is fresh
    expect(await review(me, await order(me, p.id), day2)).toMatchObject({ points: 20 })
    expect(await balance(me)).toBe(80)
    expect(await ledgerSum(me)).toBe(80)
  })

  it('a review submitted twice at once is one review and one award', async () => {
    const me = await member()
    const p = await product()
    const no = await order(me, p.id)
    const pools = dbName === 'postgres' ? [get().db, get().open(), get().open()] : [get().db]
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) => review(me, no, day1, pools[i % pools.length])),
    )
    expect(results.filter((r) => r.status === 'created')).toHaveLength(1)
    expect(results.filter((r) => r.status === 'already_reviewed')).toHaveLength(5)
    expect(await balance(me)).toBe(20)
  })

  it('hiding a review takes its points back once, as far as the balance holds', async () => {
    const me = await member()
    const p = await product()
    const first = await review(me, await order(me, p.id))
    const second = await review(me, await order(me, p.id))
    if (first.status !== 'created' || second.status !== 'created') throw new Error('not created')
    const hide = (id: number, appid = APPID) =>
      get()
        .db.transaction()
        .execute((trx) => hideReview(trx, { appid, id, now: day2, timeZone: TZ }))
    expect(await hide(first.reviewId, 'wxother')).toEqual({ status: 'not_found' })
    expect(await hide(first.reviewId)).toMatchObject({
      status: 'hidden',
      reversed: 20,
      shortfall: 0,
    })
    expect(await hide(first.reviewId)).toEqual({ status: 'already_hidden' })
    expect(await balance(me)).toBe(20)
    // the member spends 15 of the second review's 20: only 5 can come back
    await get()
      .db.transaction()
      .execute(async (trx) => {
        await sql`select quanzi_points_change(${APPID}, ${me}::bigint, 'redeem', 'spend-15', null,
          ${day2}::timestamptz, '2026-12-02'::date, '2026-11-30'::date, -15, false, null,
          '[]'::jsonb)`.execute(trx)
      })
    expect(await hide(second.reviewId)).toMatchObject({ reversed: 5, shortfall: 15 })
    expect(await balance(me)).toBe(0)
    expect(await ledgerSum(me)).toBe(0)
    const hidden = await get()
      .db.selectFrom('product_reviews')
      .select(['status', 'reversed_points'])
      .where('member_id', '=', me)
      .orderBy('id')
      .execute()
    expect(hidden).toEqual([
      { status: 'hidden', reversed_points: 20 },
      { status: 'hidden', reversed_points: 5 },
    ])
    // the reversals (day 2) do not count toward the rule's daily cap: three reviews on day 2 earn
    for (let i = 0; i < 3; i++)
      expect(await review(me, await order(me, p.id), day2)).toMatchObject({ points: 20 })
  })

  it('showing a hidden review again gives back what hiding took, cycle after cycle', async () => {
    const me = await member()
    const p = await product()
    const r = await review(me, await order(me, p.id))
    if (r.status !== 'created') throw new Error('not created')
    const act = <T>(
      f: (trx: Transaction<Database>, h: Parameters<typeof hideReview>[1]) => Promise<T>,
      appid = APPID,
    ) =>
      get()
        .db.transaction()
        .execute((trx) => f(trx, { appid, id: r.reviewId, now: day2, timeZone: TZ }))
    expect(await act(unhideReview)).toEqual({ status: 'already_visible' })
    expect(await act(unhideReview, 'wxother')).toEqual({ status: 'not_found' })
    for (let cycle = 0; cycle < 3; cycle++) {
      expect(await act(hideReview)).toMatchObject({ status: 'hidden', reversed: 20 })
      expect(await balance(me)).toBe(0)
      expect(await act(unhideReview)).toMatchObject({ status: 'visible', restored: 20 })
      expect(await act(unhideReview)).toEqual({ status: 'already_visible' })
      expect(await balance(me)).toBe(20)
    }
    expect(await ledgerSum(me)).toBe(20)
    const row = await get()
      .db.selectFrom('product_reviews')
      .select(['status', 'reversed_points', 'hides', 'hidden_at'])
      .where('id', '=', r.reviewId)
      .executeTakeFirstOrThrow()
    expect(row).toEqual({ status: 'visible', reversed_points: 0, hides: 3, hidden_at: null })
  })

  it('content_share: a different WeChat opener earns the sharer once; bots and self do not', async () => {
    const sharer = await member()
    const link = await share(sharer, ARTICLE, '10.0.0.1')
    if (link.status !== 'ok') throw new Error('no link')
    // asking again gives the same link
    expect(await share(sharer, ARTICLE, '10.0.0.1')).toEqual(link)
    for (const [kind, ref] of [
      ['article', 'https://evil.example/x'],
      ['activity', 'nope'],
      ['product', 'nope'],
    ] as const)
      expect(
        await shareLink(get().db, {
          memberId: sharer,
          kind,
          ref,
          address: 'x',
          appid: APPID,
          now: day1,
        }),
      ).toEqual({ status: 'not_found' })

    const open = (address: string, userAgent = WECHAT_UA, cookie?: string) =>
      openShareLink(get().db, {
        code: link.code,
        address,
        userAgent,
        cookie,
        now: day1,
        timeZone: TZ,
      })
    expect(
      await openShareLink(get().db, {
        code: 'nope',
        address: 'x',
        userAgent: WECHAT_UA,
        now: day1,
        timeZone: TZ,
      }),
    ).toBeUndefined()
    expect((await open('10.0.0.2', 'Mozilla/5.0 (compatible; Googlebot/2.1)'))!.outcome).toEqual({
      status: 'not_wechat',
    })
    expect((await open('10.0.0.1'))!.outcome).toEqual({ status: 'self' })
    const first = (await open('10.0.0.2'))!
    expect(first.outcome).toEqual({ status: 'awarded', points: 5 })
    expect(first.link.target_url).toBe(ARTICLE)
    expect(first.opener).toBe(await fingerprint('10.0.0.2', WECHAT_UA))
    // the same person again: without the cookie (same network), or with it (another network)
    expect((await open('10.0.0.2'))!.outcome).toEqual({ status: 'repeat' })
    expect((await open('10.9.9.9', WECHAT_UA, first.opener))!.outcome).toEqual({ status: 'repeat' })
    // a malformed cookie is ignored: the fingerprint decides
    expect((await open('10.0.0.2', WECHAT_UA, 'forged'))!.outcome).toEqual({ status: 'repeat' })
    expect(await balance(sharer)).toBe(5)
    const clicks = await get()
      .db.selectFrom('share_links')
      .select('clicks')
      .where('code', '=', link.code)
      .executeTakeFirstOrThrow()
    expect(clicks.clicks).toBe(6)
  })

  it('content_share without OAuth: forged cookies from one browser count once', async () => {
    const sharer = await member()
    const link = await share(sharer, `${ARTICLE}cookie`, '10.4.0.1')
    if (link.status !== 'ok') throw new Error('no link')
    const open = (o: { address: string; cookie?: string; verifiedOnly?: boolean }) =>
      openShareLink(get().db, {
        code: link.code,
        userAgent: WECHAT_UA,
        now: day1,
        timeZone: TZ,
        ...o,
      })
    // one network and browser, a different made-up cookie each time: one opener
    const forged = []
    for (let i = 0; i < 6; i++)
      forged.push(
        (await open({ address: '10.4.0.2', cookie: i.toString(16).padStart(32, 'b') }))!.outcome,
      )
    expect(forged).toEqual([
      { status: 'awarded', points: 5 },
      ...Array(5).fill({ status: 'repeat' }),
    ])
    // the cookie still recognises the same person on another network…
    expect((await open({ address: '10.4.9.9', cookie: '0'.padStart(32, 'b') }))!.outcome).toEqual({
      status: 'repeat',
    })
    // …without making that network's fingerprint seen: a colleague there, same browser, counts
    expect((await open({ address: '10.4.9.9' }))!.outcome).toEqual({
      status: 'awarded',
      points: 5,
    })
    // …and a friend with a cookie from elsewhere, on a network of their own, counts
    const friend = (await open({ address: '10.4.0.3', cookie: 'c'.repeat(32) }))!
    expect(friend.outcome).toEqual({ status: 'awarded', points: 5 })
    expect(friend.opener).toBe('c'.repeat(32)) // the cookie they have is kept
    // SHARE_OAUTH without an openid: a click, never a counted open
    expect((await open({ address: '10.4.0.4', verifiedOnly: true }))!.outcome).toEqual({
      status: 'unverified',
    })
    expect(await balance(sharer)).toBe(15)
  })

  it('content_share under concurrency: once per opener, 5 a day', async () => {
    const sharer = await member()
    const link = await share(sharer, `${ARTICLE}x`, '10.1.0.1')
    if (link.status !== 'ok') throw new Error('no link')
    const pools = dbName === 'postgres' ? [get().db, get().open(), get().open()] : [get().db]
    const open = (i: number, address: string) =>
      openShareLink(pools[i % pools.length]!, {
        code: link.code,
        address,
        userAgent: WECHAT_UA,
        now: day1,
        timeZone: TZ,
      })
    // one opener, 12 opens at once
    const same = await Promise.all(Array.from({ length: 12 }, (_, i) => open(i, '10.1.0.2')))
    expect(same.filter((o) => o!.outcome.status === 'awarded')).toHaveLength(1)
    expect(same.filter((o) => o!.outcome.status === 'repeat')).toHaveLength(11)
    // 9 more openers at once, twice each: 4 more awards reach the cap of 5, the rest are capped
    const many = await Promise.all(Array.from({ length: 18 }, (_, i) => open(i, `10.1.1.${i % 9}`)))
    const count = (s: string) => many.filter((o) => o!.outcome.status === s).length
    expect(count('awarded')).toBe(4)
    expect(count('capped')).toBe(5)
    expect(count('repeat')).toBe(9)
    expect(await balance(sharer)).toBe(25)
    expect(await ledgerSum(sharer)).toBe(25)
    const opens = await get()
      .db.selectFrom('share_opens')
      .select(({ fn }) => fn.countAll<string>().as('n'))
      .where(
        'link_id',
        '=',
        (
          await get()
            .db.selectFrom('share_links')
            .select('id')
            .where('code', '=', link.code)
            .executeTakeFirstOrThrow()
        ).id,
      )
      .executeTakeFirstOrThrow()
    expect(Number(opens.n)).toBe(10)
  })

  it('complete_profile: 30 points once, when nickname, birthday month and city are all set', async () => {
    const me = await member()
    const at = { now: day1, timeZone: TZ }
    const a = await updateProfile(get().db, me, { birthMonth: 5 }, at)
    expect(a).toMatchObject({ missing: ['nickname', 'city'], awarded: null })
    const b = await updateProfile(get().db, me, { city: '杭州', nickname: '小明' }, at)
    expect(b).toMatchObject({ missing: [], awarded: 30 })
    expect(b.member).toMatchObject({ display_name: '小明', birth_month: 5, city: '杭州' })
    // changing a field later earns nothing more
    expect(await updateProfile(get().db, me, { city: '上海' }, at)).toMatchObject({ awarded: null })
    expect(await balance(me)).toBe(30)

    // completed from two channels at once: one award
    const other = await member({ display_name: '小红' })
    await updateProfile(get().db, other, { birthMonth: 3 }, at)
    const pools = dbName === 'postgres' ? [get().db, get().open()] : [get().db]
    const both = await Promise.all(
      pools
        .concat(pools)
        .map((db, i) => updateProfile(db, other, { city: i % 2 ? '杭州' : '苏州' }, at)),
    )
    expect(both.filter((u) => u.awarded === 30)).toHaveLength(1)
    expect(await balance(other)).toBe(30)
  })
})
