import { sql } from 'kysely'
import { beforeEach, describe, expect, it } from 'vitest'
import { migrations } from '../../migrations/index.js'
import { forEachDatabase } from '../../test/databases.js'
import { translator } from '../bot/i18n.js'
import { chunkBudget } from '../budget.js'
import {
  cancelReminder,
  DEFAULT_REMINDER_SETTINGS,
  enqueueCheckinReminders,
  parseReminderTime,
  type ReminderSettings,
  recordAuthorisation,
  reminderDeadline,
  revokeAuthorisation,
  setReminder,
} from './checkin-reminders.js'

const TZ = 'Asia/Shanghai'
const t = translator('zh-CN')
const APPID = 'wxreminders000001'
const TEMPLATE = 'remind_tpl_1'
const settings: ReminderSettings = {
  ...DEFAULT_REMINDER_SETTINGS,
  subscribe: { templateId: TEMPLATE, titleKey: 'thing1', hintKey: 'thing2' },
}
/** A Shanghai wall-clock time on a December 2026 day as an instant. */
const at = (day: number, hhmm: string) =>
  new Date(`2026-12-${String(day).padStart(2, '0')}T${hhmm}:00+08:00`)

describe('parseReminderTime', () => {
  it('reads 24-hour times and refuses the rest', () => {
    expect(parseReminderTime('20:30')).toBe(1230)
    expect(parseReminderTime('8:05')).toBe(485)
    expect(parseReminderTime('20：30')).toBe(1230)
    expect(parseReminderTime('20点')).toBe(1200)
    expect(parseReminderTime('7')).toBe(420)
    for (const bad of ['24:00', '20:60', '20:3', 'abc', '', '20:30pm', '-1'])
      expect(parseReminderTime(bad)).toBeNull()
  })
})

describe('reminderDeadline', () => {
  it('is 2 h after the time, or the start of the quiet hours, or midnight, whichever is first', () => {
    const deadline = (hhmm: string, s: ReminderSettings = settings) =>
      reminderDeadline(at(3, hhmm), s, TZ).toISOString()
    expect(deadline('19:00')).toBe(at(3, '21:00').toISOString())
    expect(deadline('20:00')).toBe(at(3, '22:00').toISOString())
    expect(deadline('21:30')).toBe(at(3, '22:00').toISOString())
    const noQuiet = { ...settings, quietHours: null }
    expect(deadline('21:30', noQuiet)).toBe(at(3, '23:30').toISOString())
    expect(deadline('23:00', noQuiet)).toBe(at(4, '00:00').toISOString())
    // quiet hours that do not wrap midnight
    const afternoon = { ...settings, quietHours: { from: 13 * 60, to: 14 * 60 } }
    expect(deadline('12:15', afternoon)).toBe(at(3, '13:00').toISOString())
  })
})

forEachDatabase('check-in reminders', (get, name) => {
  let seq = 0
  const member = async (o: { lastInbound?: Date | null; subscribed?: boolean } = {}) => {
    const row = await get()
      .db.insertInto('members')
      .values({
        appid: APPID,
        openid: `o_rem_${++seq}_${Math.random().toString(36).slice(2, 8)}`,
        first_seen_at: at(1, '09:00'),
        subscribed: o.subscribed ?? true,
        subscribed_at: at(1, '09:00'),
        last_inbound_at: o.lastInbound === undefined ? at(3, '10:00') : o.lastInbound,
      })
      .returning(['id', 'openid'])
      .executeTakeFirstOrThrow()
    return row
  }
  const optIn = async (memberId: number, minute?: number, now = at(3, '10:00')) =>
    setReminder(get().db, { appid: APPID, memberId, minute, now, timeZone: TZ, settings })
  const run = (slot: Date, s: ReminderSettings = settings, batch?: number) =>
    enqueueCheckinReminders(get().db, { slot, timeZone: TZ, settings: s, t, batch })
  const queued = (openid: string) =>
    get()
      .db.selectFrom('push_outbox')
      .select(['source', 'kind', 'payload', 'lane'])
      .where('openid', '=', openid)
      .orderBy('id')
      .execute()
  /** The member accepts the OA reminder template (one send more). */
  const authorise = (memberId: number, now: Date) =>
    recordAuthorisation(get().db, {
      appid: APPID,
      memberId,
      source: { app: 'oa' },
      templateId: TEMPLATE,
      now,
      timeZone: TZ,
      settings,
    })
  const credits = async (memberId: number) =>
    (
      await get()
        .db.selectFrom('checkin_reminders')
        .select('oa_credits')
        .where('member_id', '=', memberId)
        .executeTakeFirstOrThrow()
    ).oa_credits

  /**
   * The queued reminders are sent, as a dispatcher would: one still queued at its deadline is
   * expired by the next run, its credit given back.
   */
  const sendQueued = () =>
    sql`update push_outbox set status = 'sent' where status = 'pending'`.execute(get().db)

  beforeEach(async () => {
    await sql`delete from push_outbox`.execute(get().db)
    await sql`delete from checkin_reminders`.execute(get().db)
  })

  it('reminds once at the chosen time, by customer-service message inside the window', async () => {
    const m = await member()
    expect(await optIn(m.id)).toEqual({ status: 'on', minute: 1200 })
    expect(await run(at(3, '19:59'))).toEqual({
      decided: 0,
      custom: 0,
      subscribe: 0,
      mpSubscribe: 0,
    })
    expect(await run(at(3, '20:00'))).toEqual({
      decided: 1,
      custom: 1,
      subscribe: 0,
      mpSubscribe: 0,
    })
    expect(await run(at(3, '20:01'))).toEqual({
      decided: 0,
      custom: 0,
      subscribe: 0,
      mpSubscribe: 0,
    })
    const [item] = await queued(m.openid)
    expect(item).toMatchObject({ source: 'checkin-reminder:2026-12-03', kind: 'custom', lane: 1 })
    expect(JSON.parse(item!.payload).text.content).toContain('回复「取消提醒」不再提醒')
    // the next day again (the window opened on the 3rd is still open on the 4th at 20:00)
    expect(await run(at(4, '20:00'))).toMatchObject({ decided: 1, custom: 1 })
    expect((await queued(m.openid)).map((i) => i.source)).toEqual([
      'checkin-reminder:2026-12-03',
      'checkin-reminder:2026-12-04',
    ])
  })

  it('skips members who checked in that day, do not follow, or turned it off', async () => {
    const checked = await member()
    const gone = await member({ subscribed: false })
    const off = await member()
    for (const m of [checked, gone, off]) await optIn(m.id)
    await get()
      .db.insertInto('checkins')
      .values({
        member_id: checked.id,
        appid: APPID,
        day: '2026-12-03',
        streak: 1,
        points: 5,
        created_at: at(3, '09:00'),
      })
      .execute()
    expect(await cancelReminder(get().db, off.id, at(3, '11:00'))).toBe(true)
    expect(await cancelReminder(get().db, off.id, at(3, '11:00'))).toBe(false)
    expect(await run(at(3, '20:00'))).toEqual({
      decided: 2,
      custom: 0,
      subscribe: 0,
      mpSubscribe: 0,
    })
    // the one who checked in is reminded the next day
    expect(await run(at(4, '20:00'))).toMatchObject({ decided: 2, custom: 1 })
    expect(await queued(checked.openid)).toHaveLength(1)
  })

  it('falls back to an authorised subscribe message outside the window, one send per accept', async () => {
    const m = await member({ lastInbound: at(1, '10:00') }) // window closed by the 3rd, 20:00
    const auth = () => authorise(m.id, at(3, '10:00'))
    await auth() // turns the reminder on at the default time, one send
    expect(await run(at(3, '20:00'))).toEqual({
      decided: 1,
      custom: 0,
      subscribe: 1,
      mpSubscribe: 0,
    })
    expect(await credits(m.id)).toBe(0)
    const [item] = await queued(m.openid)
    expect(item!.kind).toBe('subscribe')
    expect(JSON.parse(item!.payload)).toEqual({
      template_id: TEMPLATE,
      data: {
        thing1: { value: '今天还没签到' },
        thing2: { value: '回复签到领积分，取消提醒可退订' },
      },
    })
    await sendQueued()
    // used up: nothing the next day; two accepts give two more days
    expect(await run(at(4, '20:00'))).toEqual({
      decided: 1,
      custom: 0,
      subscribe: 0,
      mpSubscribe: 0,
    })
    await auth()
    await auth()
    expect(await credits(m.id)).toBe(2)
    expect(await run(at(5, '20:00'))).toMatchObject({ subscribe: 1 })
    await sendQueued()
    // a reject forgets it; a refusal recorded by the outbox (43101) closes it too
    await revokeAuthorisation(get().db, {
      memberId: m.id,
      app: 'oa',
      templateId: TEMPLATE,
      now: at(5, '21:00'),
    })
    expect(await credits(m.id)).toBe(0)
    await auth()
    await get()
      .db.insertInto('member_reachability')
      .values({
        appid: APPID,
        openid: m.openid,
        channel: 'subscribe',
        scope: TEMPLATE,
        errcode: 43101,
        recorded_at: at(5, '22:00'),
      })
      .execute()
    expect(await run(at(6, '20:00'))).toEqual({
      decided: 1,
      custom: 0,
      subscribe: 0,
      mpSubscribe: 0,
    })
    expect(await credits(m.id)).toBe(1)
  })

  it('uses the subscribe message when the window’s customer-service quota is used up', async () => {
    const m = await member({ lastInbound: at(3, '10:00') })
    await optIn(m.id)
    await get()
      .db.insertInto('cs_window_sends')
      .values({ appid: APPID, openid: m.openid, window_opened_at: at(3, '10:00'), sent: 5 })
      .execute()
    expect(await run(at(3, '20:00'))).toEqual({
      decided: 1,
      custom: 0,
      subscribe: 0,
      mpSubscribe: 0,
    })
    await authorise(m.id, at(4, '09:00'))
    expect(await run(at(4, '20:00'))).toMatchObject({ custom: 0, subscribe: 1 })
  })

  it('never counts on a follow’s or a click’s 1-minute window for a reminder', async () => {
    const m = await member({ lastInbound: at(3, '10:00') })
    await optIn(m.id)
    // the outbox moved the count to a click's minute (quota 3): the message window's 5 are used
    await get()
      .db.insertInto('cs_window_sends')
      .values({
        appid: APPID,
        openid: m.openid,
        window_opened_at: at(3, '19:59'),
        sent: 1,
        quota: 3,
      })
      .execute()
    expect(await run(at(3, '20:00'))).toEqual({
      decided: 1,
      custom: 0,
      subscribe: 0,
      mpSubscribe: 0,
    })
  })

  it('never sends inside quiet hours nor hours late, and refuses a quiet time', async () => {
    const m = await member()
    expect(await optIn(m.id, 22 * 60 + 30)).toEqual({
      status: 'quiet',
      quietHours: { from: 1320, to: 480 },
    })
    await optIn(m.id, 21 * 60 + 30)
    const quietFrom21: ReminderSettings = { ...settings, quietHours: { from: 21 * 60, to: 480 } }
    // the quiet hours changed after the member chose 21:30: moved on, not sent
    expect(await run(at(3, '21:30'), quietFrom21)).toEqual({
      decided: 1,
      custom: 0,
      subscribe: 0,
      mpSubscribe: 0,
    })
    // a run two hours late (the job was down) does not send the 4th's reminder either
    expect(await run(at(4, '23:31'), { ...settings, quietHours: null })).toEqual({
      decided: 1,
      custom: 0,
      subscribe: 0,
      mpSubscribe: 0,
    })
    expect(await queued(m.openid)).toEqual([])
    await get()
      .db.updateTable('members')
      .set({ last_inbound_at: at(5, '09:00') })
      .where('id', '=', m.id)
      .execute()
    expect(await run(at(5, '21:45'))).toMatchObject({ custom: 1 }) // 15 minutes late is fine
  })

  it('a time already passed today starts tomorrow; changing the time keeps one a day', async () => {
    const m = await member()
    await optIn(m.id, 20 * 60, at(3, '20:45'))
    expect(await run(at(3, '21:00'))).toMatchObject({ decided: 0 })
    expect(await run(at(4, '20:00'))).toMatchObject({ custom: 1 })
    await optIn(m.id, 21 * 60, at(4, '20:10')) // a second time the same day
    expect(await run(at(4, '21:00'))).toEqual({
      decided: 1,
      custom: 0,
      subscribe: 0,
      mpSubscribe: 0,
    })
    expect(await queued(m.openid)).toHaveLength(1)
  })

  it('works in batches', async () => {
    const ms = await Promise.all(Array.from({ length: 7 }, () => member()))
    for (const m of ms) await optIn(m.id)
    expect(await run(at(3, '20:00'), settings, 3)).toEqual({
      decided: 7,
      custom: 7,
      subscribe: 0,
      mpSubscribe: 0,
    })
  })

  it('decides every due member once with its batches running at once', async () => {
    const ms = await Promise.all(Array.from({ length: 40 }, () => member()))
    for (const m of ms) await optIn(m.id)
    const slot = at(3, '20:00')
    const o = { slot, timeZone: TZ, settings, t, batch: 3, parallel: 4 }
    expect(await enqueueCheckinReminders(get().db, o)).toEqual({
      decided: 40,
      custom: 40,
      subscribe: 0,
      mpSubscribe: 0,
    })
    const { rows } = await sql<{ n: number; members: number }>`select count(*)::integer as n,
      count(distinct openid)::integer as members from push_outbox
      where source = 'checkin-reminder:2026-12-03'`.execute(get().db)
    expect(rows[0]).toEqual({ n: 40, members: 40 })
    expect(await enqueueCheckinReminders(get().db, o)).toEqual({
      decided: 0,
      custom: 0,
      subscribe: 0,
      mpSubscribe: 0,
    })
  })

  it('with a spent budget stops between batches; the next runs go on and send what one run does', async () => {
    const ms = await Promise.all(Array.from({ length: 7 }, () => member()))
    for (const m of ms) await optIn(m.id)
    const bounded = (slot: Date) =>
      enqueueCheckinReminders(get().db, {
        slot,
        timeZone: TZ,
        settings,
        t,
        batch: 3,
        budget: chunkBudget(0),
        // one loop: each parallel loop does its first batch whatever the budget says
        parallel: 1,
      })
    const first = await bounded(at(3, '20:00'))
    expect(first).toEqual({ decided: 3, custom: 3, subscribe: 0, mpSubscribe: 0, unfinished: true })
    expect(await bounded(at(3, '20:01'))).toEqual({ ...first })
    expect(await bounded(at(3, '20:02'))).toEqual({
      decided: 1,
      custom: 1,
      subscribe: 0,
      mpSubscribe: 0,
    })
    for (const m of ms) expect(await queued(m.openid)).toHaveLength(1)
  })

  it('migration 0080 counts a reminder that is off as the member’s choice (取消提醒), one that is on as not', async () => {
    const [on, cancelled, refused] = [await member(), await member(), await member()]
    await optIn(on.id)
    await optIn(cancelled.id)
    await cancelReminder(get().db, cancelled.id, at(3, '11:00'))
    // an accept whose time was refused for quiet hours: off, not by choice — but a row written
    // before the migration cannot be told apart, so it counts as a 取消提醒
    await recordAuthorisation(get().db, {
      appid: APPID,
      memberId: refused.id,
      source: { app: 'oa' },
      templateId: TEMPLATE,
      now: at(3, '11:00'),
      timeZone: TZ,
      settings,
      turnOn: false,
    })
    const state = async () =>
      (
        await get()
          .db.selectFrom('checkin_reminders')
          .select(['member_id', 'enabled', 'cancelled'])
          .where('member_id', 'in', [on.id, cancelled.id, refused.id])
          .orderBy('member_id')
          .execute()
      ).map((r) => [r.enabled, r.cancelled])
    expect(await state()).toEqual([
      [true, false],
      [false, true],
      [false, false],
    ])
    const migration = migrations['0080_checkin_reminder_cancelled']!
    await get()
      .db.transaction()
      .execute(async (trx) => {
        await migration.down!(trx)
        await migration.up(trx)
      })
    expect(await state()).toEqual([
      [true, false],
      [false, true],
      [false, true],
    ])
    // a reminder that is on is never also cancelled
    await expect(
      get()
        .db.updateTable('checkin_reminders')
        .set({ cancelled: true })
        .where('member_id', '=', on.id)
        .execute(),
    ).rejects.toThrow(/checkin_reminders_cancelled_off/)
  })

  // PGlite has one connection: real parallel transactions need PostgreSQL.
  it.runIf(name === 'postgres')(
    'decides each member once with job instances in parallel',
    async () => {
      const ms = await Promise.all(
        Array.from({ length: 120 }, (_, i) =>
          member({ lastInbound: i % 2 === 0 ? at(3, '10:00') : at(1, '10:00') }),
        ),
      )
      for (const m of ms) {
        await optIn(m.id)
        await authorise(m.id, at(3, '11:00'))
      }
      const other = get().open()
      const slot = at(3, '20:00')
      const runs = await Promise.all([
        enqueueCheckinReminders(get().db, { slot, timeZone: TZ, settings, t, batch: 7 }),
        enqueueCheckinReminders(other, { slot, timeZone: TZ, settings, t, batch: 7 }),
        enqueueCheckinReminders(other, { slot, timeZone: TZ, settings, t, batch: 11 }),
      ])
      expect(runs.reduce((n, r) => n + r.decided, 0)).toBe(120)
      expect(runs.reduce((n, r) => n + r.custom, 0)).toBe(60)
      expect(runs.reduce((n, r) => n + r.subscribe, 0)).toBe(60)
      const { rows } = await sql<{ n: number; members: number }>`select count(*)::integer as n,
      count(distinct openid)::integer as members from push_outbox
      where source = 'checkin-reminder:2026-12-03'`.execute(get().db)
      expect(rows[0]).toEqual({ n: 120, members: 120 })
      const left = await get()
        .db.selectFrom('checkin_reminders')
        .select((eb) => eb.fn.sum<number>('oa_credits').as('credits'))
        .executeTakeFirstOrThrow()
      expect(Number(left.credits)).toBe(60) // only the 60 sent by subscribe message used theirs
    },
  )
})
