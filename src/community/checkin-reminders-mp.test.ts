/**
 * Check-in reminders through the mini program's subscribe message (issue #19, part 3): the third
 * channel after the customer-service message and the OA's subscribe message, sent with the mini
 * program's token to its openid through the outbox's notice lane; a one-time authorisation is
 * consumed exactly once, however many job runs and dispatchers race for it.
 */
import { sql } from 'kysely'
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { sandboxClient } from '../../test/sandbox-client.js'
import { translator } from '../bot/i18n.js'
import { silentLogger } from '../logger.js'
import { type SandboxApi, startSandboxApi } from '../sandbox/wechat-api-server.js'
import {
  DEFAULT_REMINDER_SETTINGS,
  enqueueCheckinReminders,
  expireReminders,
  type ReminderSettings,
  recordAuthorisation,
  setReminder,
} from './checkin-reminders.js'
import { claim, type DispatcherOptions, drainOutbox, enqueue, LANE } from './outbox.js'
import { recordSubscribeAccept } from './reachability.js'

const TZ = 'Asia/Shanghai'
const t = translator('zh-CN')
const SECRET = 'mp-reminder-secret'
const OA_TEMPLATE = 'oa_remind_tpl'
const MP_TEMPLATE = 'mp_remind_tpl'
const settings: ReminderSettings = {
  ...DEFAULT_REMINDER_SETTINGS,
  subscribe: { templateId: OA_TEMPLATE, titleKey: 'thing1', hintKey: 'thing2' },
  mpTemplateId: MP_TEMPLATE,
  mpSubscribe: { titleKey: 'thing1', hintKey: 'thing4', page: 'pages/checkin/index' },
}
/** A Shanghai wall-clock time on a December 2026 day as an instant. */
const at = (day: number, hhmm: string) =>
  new Date(`2026-12-${String(day).padStart(2, '0')}T${hhmm}:00+08:00`)

let wx: SandboxApi
beforeAll(async () => {
  wx = await startSandboxApi({ secret: SECRET })
})
afterAll(() => wx.close())

forEachDatabase('check-in reminders by mini-program subscribe message', (get, name) => {
  const APPID = `wxmprem${name === 'pglite' ? 'a' : 'b'}0000000001`
  const MP_APPID = `wxmpapp${name === 'pglite' ? 'a' : 'b'}0000000001`
  let seq = 0
  /** A follower whose customer-service window closed on the 1st. */
  const member = async () => {
    const suffix = `${++seq}_${Math.random().toString(36).slice(2, 8)}`
    const row = await get()
      .db.insertInto('members')
      .values({
        appid: APPID,
        openid: `o_oa_${suffix}`,
        first_seen_at: at(1, '09:00'),
        subscribed: true,
        subscribed_at: at(1, '09:00'),
        last_inbound_at: at(1, '10:00'),
      })
      .returning(['id', 'openid'])
      .executeTakeFirstOrThrow()
    return { ...row, mpOpenid: `o_mp_${suffix}` }
  }
  const authorise = (m: { id: number; mpOpenid: string }, app: 'oa' | 'mp', now = at(3, '10:00')) =>
    recordAuthorisation(get().db, {
      appid: APPID,
      memberId: m.id,
      source: app === 'oa' ? { app } : { app, openid: m.mpOpenid },
      templateId: app === 'oa' ? OA_TEMPLATE : MP_TEMPLATE,
      now,
      timeZone: TZ,
      settings,
    })
  const run = (slot: Date, db = get().db) =>
    enqueueCheckinReminders(db, { slot, timeZone: TZ, settings, t })
  const credits = (memberId: number) =>
    get()
      .db.selectFrom('checkin_reminders')
      .select(['oa_credits', 'mp_credits'])
      .where('member_id', '=', memberId)
      .executeTakeFirstOrThrow()
  const items = (openid: string) =>
    get()
      .db.selectFrom('push_outbox')
      .select(['kind', 'payload', 'lane', 'status', 'errcode'])
      .where('appid', '=', APPID)
      .where('openid', '=', openid)
      .orderBy('id')
      .execute()
  const dispatcher = (db = get().db, mp = true, now = at(3, '20:00')): DispatcherOptions => {
    const client = (appid: string) => sandboxClient(db, { appid, secret: SECRET, baseUrl: wx.url })
    return {
      db,
      api: client(APPID),
      mpApi: mp ? client(MP_APPID) : undefined,
      appid: APPID,
      clock: { now: () => now },
      logger: silentLogger,
      timeZone: TZ,
      rate: { perSecond: 0, burst: 1 },
    }
  }
  const mpSends = (touser?: string) =>
    wx.sent.filter(
      (s) => s.method === 'mp.subscribe.send' && (touser === undefined || s.touser === touser),
    )

  beforeEach(async () => {
    await sql`delete from push_outbox`.execute(get().db)
    await sql`delete from checkin_reminders`.execute(get().db)
    await sql`delete from outbox_pauses`.execute(get().db)
    wx.sent.length = 0
  })

  it('uses the mini-program authorisation after the window and the OA authorisation', async () => {
    const m = await member()
    await authorise(m, 'mp')
    await authorise(m, 'oa')
    // the OA's subscribe message first, then the mini program's
    expect(await run(at(3, '20:00'))).toEqual({
      decided: 1,
      custom: 0,
      subscribe: 1,
      mpSubscribe: 0,
    })
    // sent (one still queued at its deadline would be expired, its credit given back)
    expect(await drainOutbox(dispatcher())).toMatchObject({ sent: 1 })
    expect(await run(at(4, '20:00'))).toEqual({
      decided: 1,
      custom: 0,
      subscribe: 0,
      mpSubscribe: 1,
    })
    expect(await drainOutbox(dispatcher(get().db, true, at(4, '20:00')))).toMatchObject({ sent: 1 })
    expect(await credits(m.id)).toEqual({ oa_credits: 0, mp_credits: 0 })
    const [, mp] = await items(m.openid)
    expect(mp).toMatchObject({ kind: 'mp_subscribe', lane: 1 })
    expect(JSON.parse(mp!.payload)).toEqual({
      touser: m.mpOpenid,
      template_id: MP_TEMPLATE,
      page: 'pages/checkin/index',
      data: {
        thing1: { value: '今天还没签到' },
        thing4: { value: '回复签到领积分，取消提醒可退订' },
      },
    })
    // used up: nothing on the 5th
    expect(await run(at(5, '20:00'))).toMatchObject({ decided: 1, mpSubscribe: 0 })
    // without the mini program's keys configured the authorisation is only recorded
    await authorise(m, 'mp', at(5, '21:00'))
    const recordOnly = { ...settings, mpSubscribe: undefined }
    expect(
      await enqueueCheckinReminders(get().db, {
        slot: at(6, '20:00'),
        timeZone: TZ,
        settings: recordOnly,
        t,
      }),
    ).toMatchObject({ decided: 1, mpSubscribe: 0 })
    expect((await credits(m.id)).mp_credits).toBe(1)
  })

  it('sends with the mini program’s own token to its openid; 43101 drops the authorisation, no retry', async () => {
    const ok = await member()
    const refused = await member()
    await authorise(ok, 'mp')
    await authorise(refused, 'mp')
    await authorise(refused, 'mp') // two accepts counted; WeChat says none is left
    wx.setUser(refused.mpOpenid, { subscribe: true, refused: [MP_TEMPLATE] })
    expect(await run(at(3, '20:00'))).toMatchObject({ decided: 2, mpSubscribe: 2 })
    expect(await drainOutbox(dispatcher())).toMatchObject({ sent: 1, skipped: 1, retried: 0 })
    const [sent] = mpSends()
    expect(sent).toMatchObject({ appid: MP_APPID, touser: ok.mpOpenid })
    expect(sent!.body).toMatchObject({ template_id: MP_TEMPLATE, page: 'pages/checkin/index' })
    expect(wx.sent.filter((s) => s.method === 'subscribe.send')).toEqual([])
    expect(await items(refused.openid)).toMatchObject([{ status: 'skipped', errcode: 43101 }])
    expect((await credits(refused.id)).mp_credits).toBe(0) // the second accept is not believed
    expect((await credits(ok.id)).mp_credits).toBe(0)
    const calls = wx.calls('mp.subscribe.send')
    expect(await drainOutbox(dispatcher())).toMatchObject({ sent: 0, skipped: 0, retried: 0 })
    expect(wx.calls('mp.subscribe.send')).toBe(calls)
    // the refused member is not chosen on the 4th; a new accept gives one send again
    expect(await run(at(4, '20:00'))).toMatchObject({ decided: 2, mpSubscribe: 0 })
    await authorise(refused, 'mp', at(4, '21:00'))
    expect((await credits(refused.id)).mp_credits).toBe(1)
  })

  it('a 43101 keeps the credit of an accept given after the item was enqueued', async () => {
    const m = await member()
    const drainAt = (now: Date) => drainOutbox({ ...dispatcher(), clock: { now: () => now } })
    await authorise(m, 'mp')
    wx.setUser(m.mpOpenid, { subscribe: true, refused: [MP_TEMPLATE] })
    expect(await run(at(3, '20:00'))).toMatchObject({ mpSubscribe: 1 })
    expect((await credits(m.id)).mp_credits).toBe(0)
    // the member accepts again while the item waits: a new authorisation, not the refused one
    await authorise(m, 'mp', at(3, '20:01'))
    expect(await drainAt(at(3, '20:02'))).toMatchObject({ sent: 0, skipped: 1, retried: 0 })
    expect(await items(m.openid)).toMatchObject([{ status: 'skipped', errcode: 43101 }])
    expect((await credits(m.id)).mp_credits).toBe(1)
    // accepted before the next item was enqueued: its refusal drops every credit counted
    await authorise(m, 'mp', at(4, '10:00'))
    expect(await run(at(4, '20:00'))).toMatchObject({ mpSubscribe: 1 })
    expect((await credits(m.id)).mp_credits).toBe(1)
    expect(await drainAt(at(4, '20:02'))).toMatchObject({ sent: 0, skipped: 1 })
    expect((await credits(m.id)).mp_credits).toBe(0)
  })

  it('an account 43101 keeps the template open and the credit after an accept given since the enqueue', async () => {
    const m = await member()
    const drainAt = (now: Date) => drainOutbox({ ...dispatcher(), clock: { now: () => now } })
    /** An accept of the OA's reminder template, as handlers/receipts.ts records it. */
    const accept = async (now: Date) => {
      await authorise(m, 'oa', now)
      await recordSubscribeAccept(get().db, {
        appid: APPID,
        openid: m.openid,
        templateId: OA_TEMPLATE,
        now,
      })
    }
    await accept(at(3, '10:00'))
    wx.setUser(m.openid, { subscribe: true, refused: [OA_TEMPLATE] })
    expect(await run(at(3, '20:00'))).toMatchObject({ subscribe: 1 })
    // the member accepts again while the item waits: the refusal answers the older authorisation
    await accept(at(3, '20:01'))
    expect(await drainAt(at(3, '20:02'))).toMatchObject({ sent: 0, skipped: 1, retried: 0 })
    expect(await items(m.openid)).toMatchObject([{ kind: 'subscribe', errcode: 43101 }])
    expect((await credits(m.id)).oa_credits).toBe(1)
    wx.setUser(m.openid, { subscribe: true, refused: [] })
    expect(await run(at(4, '20:00'))).toMatchObject({ subscribe: 1 })
    expect(await drainAt(at(4, '20:02'))).toMatchObject({ sent: 1, skipped: 0 })
    // accepted (twice) before the next item was enqueued: its refusal closes the template
    await accept(at(4, '21:00'))
    await accept(at(4, '21:00'))
    wx.setUser(m.openid, { subscribe: true, refused: [OA_TEMPLATE] })
    expect(await run(at(5, '20:00'))).toMatchObject({ subscribe: 1 })
    expect(await drainAt(at(5, '20:02'))).toMatchObject({ sent: 0, skipped: 1 })
    expect(await run(at(6, '20:00'))).toMatchObject({ decided: 1, subscribe: 0 })
    expect((await credits(m.id)).oa_credits).toBe(1)
  })

  it('a 45009 of the mini program pauses only its own API until midnight', async () => {
    const m = await member()
    await authorise(m, 'mp')
    await run(at(3, '20:00'))
    wx.fault('mp.subscribe.send', { errcode: 45009, errmsg: 'reach max api daily quota limit' })
    expect(await drainOutbox(dispatcher())).toMatchObject({ sent: 0, paused: true })
    const pauses = await get()
      .db.selectFrom('outbox_pauses')
      .select(['api', 'paused_until'])
      .where('appid', '=', APPID)
      .execute()
    expect(pauses).toEqual([{ api: 'mp_subscribe', paused_until: at(4, '00:00') }])
    expect(await items(m.openid)).toMatchObject([{ kind: 'mp_subscribe', status: 'pending' }])
    await sql`delete from outbox_pauses`.execute(get().db)
  })

  it('a reminder a 45009 held until midnight expires unsent at the quiet hours; credits come back', async () => {
    const [a, b, c] = [await member(), await member(), await member()]
    // a wrote at 19:00 (customer-service window), b accepted the OA template, c the mini program's
    await get()
      .db.updateTable('members')
      .set({ last_inbound_at: at(3, '19:00') })
      .where('id', '=', a.id)
      .execute()
    await setReminder(get().db, {
      appid: APPID,
      memberId: a.id,
      now: at(3, '10:00'),
      timeZone: TZ,
      settings,
    })
    await authorise(b, 'oa')
    await authorise(c, 'mp')
    expect(await run(at(3, '20:00'))).toMatchObject({ custom: 1, subscribe: 1, mpSubscribe: 1 })
    expect([await credits(b.id), await credits(c.id)]).toMatchObject([
      { oa_credits: 0 },
      { mp_credits: 0 },
    ])
    const quota = { errcode: 45009, errmsg: 'reach max api daily quota limit' }
    for (const method of ['custom.send', 'subscribe.send', 'mp.subscribe.send'])
      wx.fault(method, quota)
    expect(await drainOutbox(dispatcher())).toMatchObject({ sent: 0, paused: true })
    // the pauses end at midnight Beijing time: inside the quiet hours (22:00–08:00), a new day
    const late = dispatcher(get().db, true, new Date(at(4, '00:00').getTime() + 30_000))
    expect(await drainOutbox(late)).toMatchObject({ sent: 0, skipped: 3 })
    expect(wx.sent).toEqual([])
    for (const m of [a, b, c])
      expect(await items(m.openid)).toMatchObject([{ status: 'skipped', errcode: null }])
    // the one-time authorisations they used were never spent: given back
    expect([await credits(b.id), await credits(c.id)]).toMatchObject([
      { oa_credits: 1 },
      { mp_credits: 1 },
    ])
  })

  it('the job gives back the credit of a reminder expired unsent while a pause holds it', async () => {
    // A London community (UTC in December): WeChat's quota resets at midnight Beijing time, 16:00
    // here, so a 45009 after 16:00 pauses the API until 16:00 the next day — after a 15:50 reminder
    const London = 'Europe/London'
    const utc = (day: number, hhmm: string) =>
      new Date(`2026-12-${String(day).padStart(2, '0')}T${hhmm}:00Z`)
    const runAt = (slot: Date) =>
      enqueueCheckinReminders(get().db, { slot, timeZone: London, settings, t })
    const drainAt = (now: Date) =>
      drainOutbox({ ...dispatcher(), timeZone: London, clock: { now: () => now } })
    const m = await member()
    await setReminder(get().db, {
      appid: APPID,
      memberId: m.id,
      minute: 15 * 60 + 50,
      now: utc(3, '10:00'),
      timeZone: London,
      settings,
    })
    await recordAuthorisation(get().db, {
      appid: APPID,
      memberId: m.id,
      source: { app: 'oa' },
      templateId: OA_TEMPLATE,
      now: utc(3, '10:00'),
      timeZone: London,
      settings,
    })
    expect(await runAt(utc(3, '15:50'))).toMatchObject({ subscribe: 1 })
    expect((await credits(m.id)).oa_credits).toBe(0)
    // WeChat is busy (certainly not delivered: retried), then its daily quota is used up
    wx.fault('subscribe.send', ...Array.from({ length: 4 }, () => ({ status: 503 })))
    expect(await drainAt(utc(3, '15:50'))).toMatchObject({ retried: 1 })
    wx.clearFaults()
    wx.fault('subscribe.send', { errcode: 45009, errmsg: 'reach max api daily quota limit' })
    expect(await drainAt(utc(3, '16:05'))).toMatchObject({ sent: 0, paused: true })
    // the reminder's deadline (17:50) passes; the job's next minute stores it expired, credit back
    const expiry = await runAt(utc(3, '17:51'))
    expect((await credits(m.id)).oa_credits).toBe(1)
    expect(await items(m.openid)).toMatchObject([{ status: 'skipped', errcode: null }])
    expect(expiry).toMatchObject({ decided: 0, expired: 1 })
    // so the next day's reminder goes through it, although the pause still holds the old item
    expect(await runAt(utc(4, '15:50'))).toMatchObject({ decided: 1, subscribe: 1 })
    // when the pause ends only the new one is sent; the expired one gave its credit back once
    expect(await drainAt(utc(4, '16:01'))).toMatchObject({ sent: 1, skipped: 0 })
    expect(wx.sent.filter((s) => s.method === 'subscribe.send')).toHaveLength(1)
    expect((await credits(m.id)).oa_credits).toBe(0)
  })

  it('expires a reminder and gives its credit back once, with job runs and dispatchers racing', async () => {
    const ms = await Promise.all(Array.from({ length: 20 }, () => member()))
    for (const [i, m] of ms.entries()) await authorise(m, i < 10 ? 'oa' : 'mp')
    expect(await run(at(3, '20:00'))).toMatchObject({ subscribe: 10, mpSubscribe: 10 })
    // nothing was sent; well past every deadline, job runs and dispatchers race for the items
    const other = name === 'postgres' ? get().open() : get().db
    const late = at(5, '12:00')
    const [a, b, c, d] = await Promise.all([
      expireReminders(get().db, { now: late, batch: 7 }),
      expireReminders(other, { now: late, batch: 7 }),
      drainOutbox(dispatcher(get().db, true, late)),
      drainOutbox(dispatcher(other, true, late)),
    ])
    expect(a + b + c.skipped + d.skipped).toBe(20)
    expect(wx.sent).toEqual([])
    const left = await get()
      .db.selectFrom('checkin_reminders')
      .select((eb) => [
        eb.fn.sum<number>('oa_credits').as('oa'),
        eb.fn.sum<number>('mp_credits').as('mp'),
      ])
      .executeTakeFirstOrThrow()
    expect([Number(left.oa), Number(left.mp)]).toEqual([10, 10])
  })

  it('a dispatcher stores a late reminder expired with its credit back, or neither', async () => {
    const m = await member()
    await authorise(m, 'oa')
    expect(await run(at(3, '20:00'))).toMatchObject({ subscribe: 1 })
    expect((await credits(m.id)).oa_credits).toBe(0)
    // The dispatcher's database fails once, on the statement giving the credit back (as a crash
    // or a dropped connection would there), after the item was claimed late, past its deadline.
    let failed = false
    const failing = get().db.withPlugin({
      transformQuery({ node }) {
        const text = JSON.stringify(node)
        const givesCredit =
          (node.kind === 'UpdateQueryNode' && text.includes('"oa_credits"')) ||
          (node.kind === 'RawNode' && /update checkin_reminders r set oa_credits/.test(text))
        if (givesCredit && !failed) {
          failed = true
          throw new Error('the connection was lost')
        }
        return node
      },
      transformResult: async ({ result }) => result,
    })
    const late = at(4, '12:00')
    await expect(drainOutbox(dispatcher(failing, true, late))).rejects.toThrow(
      'connection was lost',
    )
    expect(failed).toBe(true)
    // neither: the item is still the claim's (taken again when its lease runs out), no credit back
    const [item] = await items(m.openid)
    expect({ status: item!.status, credit: (await credits(m.id)).oa_credits }).toEqual({
      status: 'sending',
      credit: 0,
    })
    // the job's sweep leaves another's claim alone; the next dispatcher after the lease finishes it
    expect(await expireReminders(get().db, { now: late })).toBe(0)
    const later = new Date(late.getTime() + 61_000)
    expect(await drainOutbox(dispatcher(get().db, true, later))).toMatchObject({ skipped: 1 })
    expect(await items(m.openid)).toMatchObject([{ status: 'skipped', errcode: null }])
    expect((await credits(m.id)).oa_credits).toBe(1)
    // once: nothing is left to expire or give back
    expect(await drainOutbox(dispatcher(get().db, true, later))).toMatchObject({ skipped: 0 })
    expect(await expireReminders(get().db, { now: later })).toBe(0)
    expect((await credits(m.id)).oa_credits).toBe(1)
    expect(wx.sent).toEqual([])
  })

  it('the job expires a reminder whose dispatcher died holding it, once its lease is over', async () => {
    const m = await member()
    await authorise(m, 'oa')
    expect(await run(at(3, '20:00'))).toMatchObject({ subscribe: 1 })
    // a dispatcher claims it and dies before its send (never marked); its lease runs to 12:00
    const claimed = await claim(get().db, {
      appid: APPID,
      lane: LANE.notice,
      limit: 10,
      token: 'dead-dispatcher',
      lease: at(4, '12:00'),
      now: at(3, '20:00'),
    })
    expect(claimed).toHaveLength(1)
    const item = () =>
      get()
        .db.selectFrom('push_outbox')
        .select(['status', 'errcode', 'errmsg', 'claim_token'])
        .where('id', '=', claimed[0]!.id)
        .executeTakeFirstOrThrow()
    // past its deadline (22:00) but the lease still live: the claim's, left alone
    expect(await run(at(4, '11:59'))).toEqual({
      decided: 0,
      custom: 0,
      subscribe: 0,
      mpSubscribe: 0,
    })
    expect(await item()).toMatchObject({ status: 'sending', claim_token: 'dead-dispatcher' })
    expect((await credits(m.id)).oa_credits).toBe(0)
    // the lease over: expired, its claim cleared, the credit back — once over two runs
    expect(await run(at(4, '12:01'))).toMatchObject({ decided: 0, expired: 1 })
    expect(await item()).toEqual({
      status: 'skipped',
      errcode: null,
      errmsg: 'expired',
      claim_token: null,
    })
    expect((await credits(m.id)).oa_credits).toBe(1)
    expect(await run(at(4, '12:02'))).toEqual({
      decided: 0,
      custom: 0,
      subscribe: 0,
      mpSubscribe: 0,
    })
    expect((await credits(m.id)).oa_credits).toBe(1)
  })

  it('a dispatcher back after the job expired the reminder it held finds its claim gone', async () => {
    const m = await member()
    await authorise(m, 'oa')
    // a notice due before the reminder: the dispatcher's one worker sends it first
    const first = { template_id: 'TPL_FIRST', data: { keyword1: { value: '到货' } } }
    await enqueue(
      get().db,
      [
        {
          appid: APPID,
          source: 'notice:first',
          openid: 'o_first',
          kind: 'template',
          payload: first,
        },
      ],
      at(3, '19:00'),
    )
    expect(await run(at(3, '20:00'))).toMatchObject({ subscribe: 1 })
    // The dispatcher claims both (its clock stands at 20:00, before the reminder's deadline) and
    // stalls in the first send past its lease and the deadline: meanwhile the job runs.
    const o = dispatcher()
    let swept: Awaited<ReturnType<typeof run>> | undefined
    const api: typeof o.api = {
      ...o.api,
      async call(req) {
        if (req.method === 'template.send') swept ??= await run(at(4, '12:00'))
        return o.api.call(req)
      },
    }
    expect(await drainOutbox({ ...o, api, concurrency: 1 })).toMatchObject({
      sent: 1,
      skipped: 0,
      failed: 0,
    })
    expect(swept).toMatchObject({ decided: 0, expired: 1 })
    // back, it may not mark the reminder (nor store a result): not sent, expired once, credit once
    expect(wx.sent.map((s) => s.method)).toEqual(['template.send'])
    expect(await items(m.openid)).toMatchObject([{ status: 'skipped', errcode: null }])
    expect((await credits(m.id)).oa_credits).toBe(1)
    expect(await drainOutbox(dispatcher(get().db, true, at(4, '12:01')))).toMatchObject({
      sent: 0,
      skipped: 0,
    })
    expect(await expireReminders(get().db, { now: at(4, '12:01') })).toBe(0)
    expect((await credits(m.id)).oa_credits).toBe(1)
  })

  it('a reminder retried past 2 h after its time expires unsent', async () => {
    const m = await member()
    await get()
      .db.updateTable('members')
      .set({ last_inbound_at: at(3, '18:00') })
      .where('id', '=', m.id)
      .execute()
    await setReminder(get().db, {
      appid: APPID,
      memberId: m.id,
      minute: 19 * 60,
      now: at(3, '10:00'),
      timeZone: TZ,
      settings,
    })
    expect(await run(at(3, '19:00'))).toMatchObject({ custom: 1 })
    // 503 (certainly not delivered): retried later, and the later attempts are late
    wx.fault('custom.send', ...Array.from({ length: 4 }, () => ({ status: 503 })))
    expect(await drainOutbox(dispatcher(get().db, true, at(3, '19:00')))).toMatchObject({
      retried: 1,
    })
    wx.clearFaults()
    const late = dispatcher(get().db, true, new Date(at(3, '21:00').getTime() + 30_000))
    expect(await drainOutbox(late)).toMatchObject({ sent: 0, skipped: 1 })
    expect(wx.sent).toEqual([])
    expect(await items(m.openid)).toMatchObject([{ kind: 'custom', status: 'skipped' }])
  })

  it('without the mini program’s client the item fails instead of going through the OA', async () => {
    const m = await member()
    await authorise(m, 'mp')
    await run(at(3, '20:00'))
    expect(await drainOutbox(dispatcher(get().db, false))).toMatchObject({ sent: 0, failed: 1 })
    expect(wx.sent).toEqual([])
  })

  it('consumes each one-time authorisation exactly once with job runs and dispatchers in parallel', async () => {
    const ms = await Promise.all(Array.from({ length: 30 }, () => member()))
    for (const m of ms) await authorise(m, 'mp')
    // PGlite has one connection: the runs interleave on it; PostgreSQL runs them truly apart
    const other = name === 'postgres' ? get().open() : get().db
    const slot = at(3, '20:00')
    const runs = await Promise.all([run(slot), run(slot, other), run(slot, other)])
    expect(runs.reduce((n, r) => n + r.mpSubscribe, 0)).toBe(30)
    expect(runs.reduce((n, r) => n + r.decided, 0)).toBe(30)
    const left = await get()
      .db.selectFrom('checkin_reminders')
      .select((eb) => eb.fn.sum<number>('mp_credits').as('credits'))
      .executeTakeFirstOrThrow()
    expect(Number(left.credits)).toBe(0)
    const drains = await Promise.all([drainOutbox(dispatcher()), drainOutbox(dispatcher(other))])
    expect(drains.reduce((n, d) => n + d.sent, 0)).toBe(30)
    const sent = mpSends()
    expect(sent).toHaveLength(30)
    expect(new Set(sent.map((s) => s.touser))).toEqual(new Set(ms.map((m) => m.mpOpenid)))
    // a later run the same day finds nothing more to send
    expect(await run(at(3, '20:05'))).toMatchObject({ decided: 0 })
  })
})
