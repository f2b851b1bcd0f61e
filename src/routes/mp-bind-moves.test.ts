/**
 * What a 绑定 moves besides commerce (src/shop/member-moves.ts): a mini-program user who set a
 * check-in reminder, filled the profile, shared links and reviewed an order in the mini program
 * before entering their follower's code finds all of it on the follower afterwards — the reminder
 * goes out, the profile is there, later opens of their links earn the follower — and nothing is
 * paid twice. Through the HTTP API, as the mini program and the links' openers use it.
 */
import type { Hono } from 'hono'
import { beforeAll, expect, it } from 'vitest'
import { createRouter } from '../../handlers/index.js'
import { forEachDatabase } from '../../test/databases.js'
import { waitingForLock } from '../../test/held-transaction.js'
import { pointsBalance } from '../../test/member-fixtures.js'
import { SAFE_ACCOUNT, testConfig } from '../../test/server.js'
import { createApp } from '../app.js'
import { translator } from '../bot/i18n.js'
import { awardBadges } from '../community/badges.js'
import {
  cancelReminder,
  enqueueCheckinReminders,
  recordAuthorisation,
  setReminder,
} from '../community/checkin-reminders.js'
import { issueBindingCode } from '../community/identities.js'
import { updateProfile } from '../community/profile.js'
import { hideReview } from '../community/reviews.js'
import { shareLink } from '../community/shares.js'
import type { Config } from '../config.js'
import { silentLogger } from '../logger.js'
import { signSession } from '../shop/mp-auth.js'
import { linkMiniProgramUser } from '../shop/mp-link.js'
import type { ShopRouteOptions } from './shop.js'

const APPID = SAFE_ACCOUNT.appid
const MP_APPID = 'wxmpmoves0000000001'
const SECRET = 'mp-moves-session-secret-0123456789'
const TEMPLATE = 'mp_moves_remind_tpl'
const WECHAT_UA = 'Mozilla/5.0 (Linux; Android 14) Mobile MicroMessenger/8.0.50.2701 NetType/WIFI'

forEachDatabase('what a 绑定 moves: reminder, profile, share links, reviews', (get, name) => {
  let app: Hono
  let config: Config
  // 10:00 in Shanghai: no quiet hours, and no day boundary near
  const now = new Date('2026-12-03T02:00:00Z')
  const clock = { now: () => now }
  const at = { now, timeZone: 'Asia/Shanghai' }
  let n = 0

  beforeAll(() => {
    config = testConfig({ CHECKIN_REMINDER_MP_TEMPLATE_ID: TEMPLATE })
    // Only what these routes use of the shop: its accounts and the session secret.
    const shop = {
      settings: { appid: APPID, mpAppid: MP_APPID },
      gateway: { mchid: '1900000001' },
      sessionSecret: SECRET,
    } as unknown as ShopRouteOptions['shop']
    app = createApp({
      config,
      db: get().db,
      router: createRouter(),
      logger: silentLogger,
      clock,
      shop,
      clientAddress: (c) => c.req.header('x-test-peer') ?? '10.8.0.1',
    })
  })

  /**
   * A mini-program user with a member of their own, signed in, and a follower of the account who
   * sent 绑定; `bind()` enters the follower's code in the mini program.
   */
  async function user() {
    const i = ++n
    const openid = `o_mp_moves_${i}`
    const own = await get()
      .db.insertInto('members')
      .values({ appid: MP_APPID, openid, first_seen_at: now })
      .returning('id')
      .executeTakeFirstOrThrow()
    await get()
      .db.insertInto('mp_users')
      .values({ appid: MP_APPID, openid, member_id: own.id, created_at: now })
      .execute()
    const follower = await get()
      .db.insertInto('members')
      .values({ appid: APPID, openid: `o_oa_moves_${i}`, first_seen_at: now, subscribed: true })
      .returning('id')
      .executeTakeFirstOrThrow()
    const token = await signSession(SECRET, {
      memberId: own.id,
      openid,
      expiresAt: new Date(now.getTime() + 3600_000),
    })
    const bind = async () => {
      const { code } = await issueBindingCode(get().db, follower.id, now)
      const bound = await call('/api/mp/bind', { token, body: { code } })
      expect([bound.status, bound.json.member?.id]).toEqual([200, follower.id])
      return bound.json.linked as { orders: number; points: number }
    }
    const mp = (path: string, init: { method?: string; body?: unknown; peer?: string } = {}) =>
      call(`/api/mp${path}`, { ...init, token })
    return { i, openid, own: own.id, follower: follower.id, bind, mp }
  }

  const call = async (
    path: string,
    init: { token?: string; method?: string; body?: unknown; peer?: string },
  ) => {
    const res = await app.request(path, {
      method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
      headers: {
        'content-type': 'application/json',
        ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
        ...(init.peer ? { 'x-test-peer': init.peer } : {}),
      },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    })
    // biome-ignore lint/suspicious/noExplicitAny: response JSON, checked by the assertions
    return { status: res.status, json: (await res.json()) as Record<string, any> }
  }
  /** A friend opens share link `code` in WeChat from `peer` (a fingerprint per address). */
  const open = (code: string, peer: string) =>
    app.request(`/r/s/${code}`, { headers: { 'x-test-peer': peer, 'user-agent': WECHAT_UA } })
  const balance = (id: number) => pointsBalance(get().db, id)
  const rules = async (id: number) =>
    (
      await get()
        .db.selectFrom('points_ledger')
        .select('rule')
        .where('member_id', '=', id)
        .orderBy('id')
        .execute()
    ).map((r) => r.rule)
  const reminders = (u: { own: number; follower: number }) =>
    get()
      .db.selectFrom('checkin_reminders')
      .select(['member_id', 'appid', 'enabled', 'minute_of_day', 'mp_credits', 'mp_openid'])
      .where('member_id', 'in', [u.own, u.follower])
      .execute()

  it('moves the reminder, the profile and a share link with its opens; nothing is paid twice', async () => {
    const u = await user()
    const article = `https://mp.weixin.qq.com/s/Moves${u.i}`
    // in the mini program, before the 绑定
    const set = await u.mp('/reminders', {
      body: { result: { [TEMPLATE]: 'accept' }, time: '21:15' },
    })
    expect(set.json.reminder).toEqual({ enabled: true, time: '21:15' })
    const profile = { nickname: '小红', birthMonth: 7, city: '杭州' }
    expect((await u.mp('/profile', { method: 'PUT', body: profile })).json.awarded).toBe(30)
    const shared = await u.mp('/shares', {
      body: { kind: 'article', ref: article },
      peer: '10.8.1.1',
    })
    const code = shared.json.code as string
    await open(code, '10.8.1.2') // a friend: +5 on the mini-program member
    expect(await balance(u.own)).toBe(35)

    expect((await u.bind()).points).toBe(35)

    // the reminder is the follower's, and goes out through the mini program's authorisation
    expect(await reminders(u)).toEqual([
      {
        member_id: u.follower,
        appid: APPID,
        enabled: true,
        minute_of_day: 21 * 60 + 15,
        mp_credits: 1,
        mp_openid: u.openid,
      },
    ])
    expect((await u.mp('/reminders')).json.reminder).toEqual({ enabled: true, time: '21:15' })
    await enqueueCheckinReminders(get().db, {
      slot: new Date('2026-12-03T13:15:00Z'), // 21:15 in Shanghai
      timeZone: 'Asia/Shanghai',
      settings: config.checkin.reminders!,
      t: translator('zh-CN'),
    })
    const sent = await get()
      .db.selectFrom('push_outbox')
      .select(['kind', 'payload'])
      .where('appid', '=', APPID)
      .where('openid', '=', `o_oa_moves_${u.i}`)
      .where('source', '=', 'checkin-reminder:2026-12-03')
      .execute()
    expect(sent.map((s) => [s.kind, JSON.parse(s.payload).touser])).toEqual([
      ['mp_subscribe', u.openid],
    ])

    // the profile is the follower's; changing it later pays complete_profile no second time
    expect((await u.mp('/profile')).json.profile).toEqual({ ...profile, missing: [] })
    expect((await u.mp('/profile', { method: 'PUT', body: { city: '苏州' } })).json.awarded).toBe(
      null,
    )

    // the link is the follower's: the friend again is a repeat, a new friend earns the follower,
    // and the user opening it from where they asked for it is themself
    const link = await get()
      .db.selectFrom('share_links')
      .select('member_id')
      .where('code', '=', code)
      .executeTakeFirstOrThrow()
    expect(link.member_id).toBe(u.follower)
    await open(code, '10.8.1.2')
    await open(code, '10.8.1.1')
    await open(code, '10.8.1.3')
    expect(await balance(u.follower)).toBe(40)
    expect(await balance(u.own)).toBe(0)
    // the balance moved in, then its lifetime (a delta-0 entry: the level comes along, 0082)
    expect(await rules(u.follower)).toEqual(['mp_link_in', 'mp_link_in', 'content_share'])
    // asked for again, the same link
    const again = await u.mp('/shares', { body: { kind: 'article', ref: article } })
    expect(again.json.code).toBe(code)
  })

  it('merges two reminders: one that is on stays on, the follower’s time when both are', async () => {
    // both on: the follower's 20:00 stays, the mini program's accepted send joins it
    const a = await user()
    await setReminder(get().db, {
      appid: APPID,
      memberId: a.follower,
      minute: 20 * 60,
      ...at,
      settings: config.checkin.reminders!,
    })
    await a.mp('/reminders', { body: { result: { [TEMPLATE]: 'accept' }, time: '21:15' } })
    await a.bind()
    expect(await reminders(a)).toEqual([
      {
        member_id: a.follower,
        appid: APPID,
        enabled: true,
        minute_of_day: 20 * 60,
        mp_credits: 1,
        mp_openid: a.openid,
      },
    ])
    // the follower's turned off (取消提醒), the mini program's on: it stays on, at its time
    const b = await user()
    await setReminder(get().db, {
      appid: APPID,
      memberId: b.follower,
      minute: 20 * 60,
      ...at,
      settings: config.checkin.reminders!,
    })
    await cancelReminder(get().db, b.follower, now)
    await b.mp('/reminders', { body: { result: { [TEMPLATE]: 'accept' }, time: '21:15' } })
    await b.bind()
    expect(await reminders(b)).toEqual([
      {
        member_id: b.follower,
        appid: APPID,
        enabled: true,
        minute_of_day: 21 * 60 + 15,
        mp_credits: 1,
        mp_openid: b.openid,
      },
    ])
  })

  it('merges two reminders that are off: a 取消提醒 of either is kept, one that is on clears it', async () => {
    const merged = (u: { follower: number }) =>
      get()
        .db.selectFrom('checkin_reminders')
        .select(['member_id', 'enabled', 'cancelled', 'mp_credits'])
        .where('member_id', '=', u.follower)
        .execute()
    // the follower's off without a choice (an accept whose time was refused for quiet hours), the
    // mini program's turned off (DELETE /reminders): the choice comes with it
    const a = await user()
    await recordAuthorisation(get().db, {
      appid: APPID,
      memberId: a.follower,
      source: { app: 'mp', openid: `o_mp_elsewhere_${a.i}` },
      templateId: TEMPLATE,
      ...at,
      settings: config.checkin.reminders!,
      turnOn: false,
    })
    expect((await a.mp('/reminders', { method: 'DELETE' })).json.reminder).toEqual({
      enabled: false,
      time: '20:00',
    })
    await a.bind()
    expect(await merged(a)).toEqual([
      { member_id: a.follower, enabled: false, cancelled: true, mp_credits: 1 },
    ])
    // the follower's 取消提醒, the mini program's off without a choice (23:00 refused): kept
    const b = await user()
    await cancelReminder(get().db, b.follower, now)
    const refused = await b.mp('/reminders', {
      body: { result: { [TEMPLATE]: 'accept' }, time: '23:00' },
    })
    expect(refused.json.code).toBe('QUIET_HOURS')
    await b.bind()
    expect(await merged(b)).toEqual([
      { member_id: b.follower, enabled: false, cancelled: true, mp_credits: 1 },
    ])
    // the follower's 取消提醒, the mini program's on: on, the choice to be off gone with it
    const c = await user()
    await cancelReminder(get().db, c.follower, now)
    await c.mp('/reminders', { body: { result: { [TEMPLATE]: 'accept' } } })
    await c.bind()
    expect(await merged(c)).toEqual([
      { member_id: c.follower, enabled: true, cancelled: false, mp_credits: 1 },
    ])
  })

  it('fills the follower’s profile gaps; complete only now, it earns complete_profile once', async () => {
    const u = await user()
    await updateProfile(get().db, u.follower, { nickname: '老王', city: '上海' }, at)
    const put = await u.mp('/profile', { method: 'PUT', body: { birthMonth: 5, city: '杭州' } })
    expect(put.json.awarded).toBe(null)
    await u.bind()
    // the follower's own values win; the mini program's fill the gap
    expect((await u.mp('/profile')).json.profile).toEqual({
      nickname: '老王',
      birthMonth: 5,
      city: '上海',
      missing: [],
    })
    expect(await rules(u.follower)).toEqual(['complete_profile'])
    expect(await balance(u.follower)).toBe(30)
    expect((await u.mp('/profile', { method: 'PUT', body: { city: '苏州' } })).json.awarded).toBe(
      null,
    )
    expect(await balance(u.follower)).toBe(30)
  })

  it('merges a link to what the follower shares too: its code and its openers join the follower’s', async () => {
    const u = await user()
    const article = `https://mp.weixin.qq.com/s/Both${u.i}`
    const theirs = await shareLink(get().db, {
      memberId: u.follower,
      kind: 'article',
      ref: article,
      address: '10.8.2.9',
      appid: APPID,
      now,
    })
    if (theirs.status !== 'ok') throw new Error(theirs.status)
    await open(theirs.code, '10.8.2.2') // friend B: +5 on the follower
    const mine = await u.mp('/shares', {
      body: { kind: 'article', ref: article },
      peer: '10.8.2.1',
    })
    const code = mine.json.code as string
    await open(code, '10.8.2.3') // friend A: +5 on the mini-program member
    await open(code, '10.8.2.2') // friend B, another link then: +5 on the mini-program member
    expect([await balance(u.follower), await balance(u.own)]).toEqual([5, 10])

    await u.bind()
    const links = await get()
      .db.selectFrom('share_links')
      .select(['code', 'clicks'])
      .where('member_id', 'in', [u.own, u.follower])
      .execute()
    expect(links).toEqual([{ code: theirs.code, clicks: 3 }])
    // friends A and B count once across both codes; friend C through the old code earns the follower
    await open(theirs.code, '10.8.2.3')
    await open(code, '10.8.2.2')
    expect(await balance(u.follower)).toBe(15)
    const c = await open(code, '10.8.2.4')
    expect(c.headers.get('location')).toBe(article)
    expect(await balance(u.follower)).toBe(20)
    expect(await balance(u.own)).toBe(0)
    // asked for in the mini program now, the follower's link
    expect((await u.mp('/shares', { body: { kind: 'article', ref: article } })).json.code).toBe(
      theirs.code,
    )
  })

  /** A paid order of the user's own member, reviewed in the mini program (+20): the review id. */
  async function reviewed(u: Awaited<ReturnType<typeof user>>): Promise<number> {
    const product = await get()
      .db.insertInto('products')
      .values({
        appid: APPID,
        sku: `moves-tea-${u.i}`,
        kind: 'flash_sale',
        name: '桂花乌龙',
        price_fen: 990,
        created_at: now,
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    const outTradeNo = `QZMOVE${String(u.i).padStart(6, '0')}`
    await get()
      .db.insertInto('orders')
      .values({
        appid: APPID,
        out_trade_no: outTradeNo,
        member_id: u.own,
        mp_openid: u.openid,
        product_id: product.id,
        kind: 'flash_sale',
        description: '桂花乌龙',
        amount_fen: 990,
        status: 'paid',
        expires_at: now,
        created_at: now,
      })
      .execute()
    const review = await u.mp('/reviews', {
      body: { outTradeNo, rating: 5, text: '很好喝，回购！' },
    })
    expect(review.json.points).toBe(20)
    return review.json.review.id
  }
  const hide = (id: number) =>
    get()
      .db.transaction()
      .execute((trx) => hideReview(trx, { appid: APPID, id, ...at }))

  it('moves the reviews with their orders: hiding one takes the points back from the follower', async () => {
    const u = await user()
    const id = await reviewed(u)
    await u.bind()
    expect(await balance(u.follower)).toBe(20)
    expect(await hide(id)).toMatchObject({ status: 'hidden', reversed: 20, shortfall: 0 })
    expect(await balance(u.follower)).toBe(0)
  })

  it('awards the follower the badges the moved purchases earn', async () => {
    const u = await user()
    await get()
      .db.updateTable('members')
      .set({ purchase_count: 1 })
      .where('id', '=', u.own)
      .execute()
    await awardBadges(get().db, u.own, { purchases: null }, { now })
    await u.bind()
    const badges = await get()
      .db.selectFrom('member_badges')
      .select('badge_key')
      .where('member_id', '=', u.follower)
      .execute()
    expect(badges.map((b) => b.badge_key)).toEqual(['first_purchase'])
  })

  it('tells the follower of those badges in the community’s language', async () => {
    const u = await user()
    await get()
      .db.updateTable('members')
      .set({ purchase_count: 1 })
      .where('id', '=', u.own)
      .execute()
    const { code } = await issueBindingCode(get().db, u.follower, now)
    const linked = await linkMiniProgramUser(get().db, {
      mpAppid: MP_APPID,
      openid: u.openid,
      code,
      now,
      timeZone: 'Asia/Shanghai',
      t: translator('en'),
    })
    expect(linked.status).toBe('linked')
    const notices = await get()
      .db.selectFrom('push_outbox')
      .select('payload')
      .where('source', 'like', 'badge:%')
      .where('openid', '=', `o_oa_moves_${u.i}`)
      .execute()
    expect(notices).toHaveLength(1)
    expect(JSON.stringify(notices[0]!.payload)).toContain('New badge')
  })

  /** Until a statement like `query` waits for a lock (PostgreSQL). */
  const waiting = (query: string) => waitingForLock(get().db, query)
  /** Another connection holds member `id`'s row until `release()` (or 10 s). */
  async function hold(id: number) {
    let release = () => {}
    const released = new Promise<void>((resolve) => (release = resolve))
    let locked = () => {}
    const isLocked = new Promise<void>((resolve) => (locked = resolve))
    const done = get()
      .open()
      .transaction()
      .execute(async (trx) => {
        await trx.selectFrom('members').select('id').where('id', '=', id).forUpdate().execute()
        locked()
        await Promise.race([released, new Promise((resolve) => setTimeout(resolve, 10_000))])
      })
    await isLocked
    return { release, done }
  }
  /**
   * The 绑定 waits for the mini-program member's row first, then `racer` — which read the member
   * before the 绑定 moved what it works on — waits for it too; then the row is let go.
   */
  async function racing(u: Awaited<ReturnType<typeof user>>, racer: () => unknown) {
    const holder = await hold(u.own)
    const bound = u.bind()
    await waiting('%from "members" where "id" in ($1, $2) order by "id" for update')
    const raced = racer()
    await waiting('select * from "members" where "id" = $1 for no key update')
    holder.release()
    const [, , result] = await Promise.all([holder.done, bound, raced])
    return result
  }

  it.runIf(name === 'postgres')(
    'an open racing the 绑定 earns the follower (PostgreSQL: the sharer read before the move)',
    async () => {
      const u = await user()
      const ref = `https://mp.weixin.qq.com/s/Race${u.i}`
      const shared = await u.mp('/shares', { body: { kind: 'article', ref }, peer: '10.8.3.1' })
      await racing(u, () => open(shared.json.code, '10.8.3.2'))
      // the open was decided after the move: on the follower, not through the points moved
      expect([await balance(u.follower), await balance(u.own)]).toEqual([5, 0])
      expect([await rules(u.follower), await rules(u.own)]).toEqual([['content_share'], []])
    },
  )

  it.runIf(name === 'postgres')(
    'hiding a review racing the 绑定 takes the points back from the follower (PostgreSQL)',
    async () => {
      const u = await user()
      const id = await reviewed(u)
      const hidden = await racing(u, () => hide(id))
      expect(hidden).toMatchObject({ status: 'hidden', reversed: 20, shortfall: 0 })
      expect([await balance(u.follower), await balance(u.own)]).toEqual([0, 0])
    },
  )
})
