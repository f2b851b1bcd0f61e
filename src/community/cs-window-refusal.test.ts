/**
 * WeChat counts each customer-service window apart (protocol §6.3: a member's message opens 48 h
 * with 5 messages; a follow, a parametric-QR scan or a menu click 1 minute with 3). A 45015 /
 * 45047 refusal closes the window the send was counted in, not the other kind's; the operator's
 * member page says which window is open.
 */
import type { Kysely } from 'kysely'
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { memberReachability } from '../admin/reads/member-reachability.js'
import { translator } from '../bot/i18n.js'
import { type Clock, systemClock } from '../clock.js'
import type { Database, OutboxLane } from '../db/schema.js'
import { silentLogger } from '../logger.js'
import { type SandboxApi, startSandboxApi } from '../sandbox/wechat-api-server.js'
import { accountClient } from '../wechat/api/account-client.js'
import { parseXml } from '../wechat/codec.js'
import { toInboundMessage } from '../wechat/message.js'
import {
  DEFAULT_REMINDER_SETTINGS,
  enqueueCheckinReminders,
  setReminder,
} from './checkin-reminders.js'
import { databaseMemberStore, isDuplicate } from './members.js'
import { type DispatcherOptions, drainOutbox, enqueue, LANE, type OutboxMessage } from './outbox.js'
import { loadReachability, recordUnreachable } from './reachability.js'
import { databaseTokenStore } from './token-store.js'

const SECRET = 'cs-refusal-secret'
let sandboxNow = Date.now()
let wx: SandboxApi
beforeAll(async () => {
  wx = await startSandboxApi({ secret: SECRET, now: () => sandboxNow })
})
afterAll(() => wx.close())
beforeEach(() => wx.clearFaults())

const text = { msgtype: 'text', text: { content: '你好' } }

forEachDatabase('customer-service window refusals', (get, dbName) => {
  let n = 0
  const clock = {
    time: new Date('2026-11-24T02:00:00Z'),
    now() {
      return this.time
    },
  } satisfies Clock & { time: Date }
  const advance = (ms: number) => {
    clock.time = new Date(clock.time.getTime() + ms)
    sandboxNow += ms
  }
  function account(): DispatcherOptions {
    const appid = `wx${dbName === 'pglite' ? 'r' : 's'}${String(++n).padStart(15, '0')}`
    const db = get().db
    return {
      db,
      api: accountClient({
        tokenStore: databaseTokenStore(db, systemClock),
        appid,
        secret: SECRET,
        baseUrl: wx.url,
        mode: 'stable',
        clock: { now: () => new Date() },
        logger: silentLogger,
        backoffMs: 1,
      }),
      appid,
      clock,
      logger: silentLogger,
      timeZone: 'Asia/Shanghai',
      rate: { perSecond: 0, burst: 1 },
      concurrency: 1,
    }
  }
  const item = (appid: string, openid: string, source: string, lane: OutboxLane) =>
    ({ appid, source, openid, kind: 'custom', payload: text, lane }) satisfies OutboxMessage
  /** A follower who last wrote `ago` ms before the clock (or never: null). */
  async function member(db: Kysely<Database>, appid: string, openid: string, ago: number | null) {
    const at = ago === null ? null : new Date(clock.now().getTime() - ago)
    await db
      .insertInto('members')
      .values({
        appid,
        openid,
        subscribed: true,
        subscribed_at: new Date(clock.now().getTime() - 86_400_000 * 3),
        first_seen_at: new Date(clock.now().getTime() - 86_400_000 * 3),
        last_inbound_at: at,
      })
      .execute()
  }
  /** Receives an event push from `openid` now, as the webhook does (its claim and the member). */
  async function pushEvent(appid: string, openid: string, event: string) {
    const members = databaseMemberStore(get().db, { timeZone: 'Asia/Shanghai' })
    const push = toInboundMessage(
      parseXml(
        `<xml><ToUserName>gh</ToUserName><FromUserName>${openid}</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType><Event>${event}</Event><EventKey>K</EventKey></xml>`,
      ),
    )
    const key = { appid, dedupeKey: `e:${openid}:${event}:${clock.now().getTime()}` }
    const got = await members.receive({ ...key, msgType: 'event', event }, push, clock.now())
    expect(isDuplicate(got)).toBe(false)
    wx.userAction(openid, event) // WeChat opened the event's window before pushing it
  }
  const outcome = async (appid: string) =>
    Object.fromEntries(
      (
        await get()
          .db.selectFrom('push_outbox')
          .select(['source', 'status', 'errcode'])
          .where('appid', '=', appid)
          .execute()
      ).map((r) => [r.source, [r.status, r.errcode]]),
    )

  it("a refusal in the 48-hour window leaves a menu click's minute open for a late reply", async () => {
    const o = account()
    const db = get().db
    await member(db, o.appid, 'rf_click', 47 * 3_600_000) // WeChat thinks the window expired
    await pushEvent(o.appid, 'rf_click', 'CLICK')
    advance(20_000)
    // a notice (48-hour window only) is refused by WeChat: recorded for the message window
    wx.fault('custom.send', { errcode: 45015, errmsg: 'response out of time limit' })
    await enqueue(db, [item(o.appid, 'rf_click', 'notice:1', LANE.notice)], clock.now())
    expect(await drainOutbox(o)).toMatchObject({ sent: 0, skipped: 1 })
    advance(20_000)
    // the click's late reply, inside its minute, goes in the click's window (WeChat takes it)
    const calls = wx.calls('custom.send')
    await enqueue(
      db,
      [
        item(o.appid, 'rf_click', 'reply:1', LANE.reply),
        item(o.appid, 'rf_click', 'notice:2', LANE.notice),
      ],
      clock.now(),
    )
    expect(await drainOutbox(o)).toMatchObject({ sent: 1, skipped: 1 })
    expect(await outcome(o.appid)).toMatchObject({
      'notice:1': ['skipped', 45015],
      'reply:1': ['sent', null],
      'notice:2': ['skipped', 45015], // the message window stays closed, without asking WeChat
    })
    expect(wx.calls('custom.send') - calls).toBe(1)
    const count = await db
      .selectFrom('cs_window_sends')
      .select(['kind', 'quota', 'sent'])
      .where('appid', '=', o.appid)
      .where('openid', '=', 'rf_click')
      .executeTakeFirstOrThrow()
    expect(count).toEqual({ kind: 'event', quota: 3, sent: 1 })
  })

  it("a refusal in a follow's minute does not close the member's message window", async () => {
    const { appid } = account()
    const db = get().db
    await member(db, appid, 'rf_follow', null)
    await pushEvent(appid, 'rf_follow', 'subscribe')
    const followedAt = clock.now()
    advance(10_000)
    // the member writes; a reply counted in the follow's minute comes back refused after that
    await db
      .updateTable('members')
      .set({ last_inbound_at: clock.now() })
      .where('appid', '=', appid)
      .where('openid', '=', 'rf_follow')
      .execute()
    advance(10_000)
    await recordUnreachable(db, {
      appid,
      openid: 'rf_follow',
      errcode: 45047,
      window: { kind: 'event', openedAt: followedAt },
      now: clock.now(),
    })
    const reach = await loadReachability(db, appid, ['rf_follow'], clock.now(), {
      eventWindowsOf: ['rf_follow'],
    })
    expect(reach('rf_follow', 'custom')).toBeNull()
    expect(reach('rf_follow', 'custom', '', 'reply')).toBeNull()
    expect(reach.windows('rf_follow', 'message').map((w) => w.kind)).toEqual(['message'])
    // a refusal of the message window closes it, for notices and replies alike
    await recordUnreachable(db, {
      appid,
      openid: 'rf_follow',
      errcode: 45047,
      window: { kind: 'message', openedAt: new Date(clock.now().getTime() - 10_000) },
      now: clock.now(),
    })
    const after = await loadReachability(db, appid, ['rf_follow'], clock.now(), {
      eventWindowsOf: ['rf_follow'],
    })
    expect(after('rf_follow', 'custom')).toMatchObject({ errcode: 45047 })
    expect(after('rf_follow', 'custom', '', 'reply')).toMatchObject({ errcode: 45047 })
  })

  it("reminds by customer-service message after a refusal in a click's minute, not after one in the 48 hours", async () => {
    const { appid } = account()
    const db = get().db
    const settings = DEFAULT_REMINDER_SETTINGS
    const opts = { timeZone: 'Asia/Shanghai', settings, t: translator('zh-CN') }
    const wroteAt = clock.now() // 10:00 in Shanghai
    const reminded: Record<string, boolean> = {}
    for (const [openid, kind] of [
      ['rf_rem_event', 'event'],
      ['rf_rem_message', 'message'],
    ] as const) {
      await member(db, appid, openid, 0)
      const { id } = await db
        .selectFrom('members')
        .select('id')
        .where('appid', '=', appid)
        .where('openid', '=', openid)
        .executeTakeFirstOrThrow()
      await setReminder(db, { appid, memberId: id, minute: 20 * 60, now: wroteAt, ...opts })
      // a reply counted in a click's minute just before the message, refused after it
      await recordUnreachable(db, {
        appid,
        openid,
        errcode: 45047,
        window: {
          kind,
          openedAt: kind === 'event' ? new Date(wroteAt.getTime() - 10_000) : wroteAt,
        },
        now: new Date(wroteAt.getTime() + 20_000),
      })
    }
    await enqueueCheckinReminders(db, {
      slot: new Date(wroteAt.getTime() + 10 * 3_600_000),
      ...opts,
    })
    for (const openid of ['rf_rem_event', 'rf_rem_message']) {
      const items = await db
        .selectFrom('push_outbox')
        .select('kind')
        .where('appid', '=', appid)
        .where('openid', '=', openid)
        .execute()
      reminded[openid] = items.some((i) => i.kind === 'custom')
    }
    expect(reminded).toEqual({ rf_rem_event: true, rf_rem_message: false })
  })

  it("tells the operator of a new follower's 1-minute window: its kind, end, quota and count", async () => {
    const o = account()
    const db = get().db
    await member(db, o.appid, 'rf_new', null)
    await pushEvent(o.appid, 'rf_new', 'subscribe')
    const followedAt = clock.now()
    await enqueue(db, [item(o.appid, 'rf_new', 'reply:welcome', LANE.reply)], clock.now())
    expect(await drainOutbox(o)).toMatchObject({ sent: 1 })
    const row = await db
      .selectFrom('members')
      .selectAll()
      .where('appid', '=', o.appid)
      .where('openid', '=', 'rf_new')
      .executeTakeFirstOrThrow()
    expect(await memberReachability(db, row, clock.now())).toMatchObject({
      custom: { errcode: 45015 }, // notices: no 48-hour window
      windowKind: 'event',
      windowClosesAt: new Date(followedAt.getTime() + 60_000),
      windowSent: 1,
      windowQuota: 3,
    })
    advance(60_000)
    expect(await memberReachability(db, row, clock.now())).toMatchObject({
      windowKind: null,
      windowClosesAt: null,
      windowSent: 0,
      windowQuota: 5,
    })
  })
})
