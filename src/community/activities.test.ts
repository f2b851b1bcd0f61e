import { expect, it } from 'vitest'
import { createRouter } from '../../handlers/index.js'
import { forEachDatabase } from '../../test/databases.js'
import { SAFE_ACCOUNT, startServer, testConfig } from '../../test/server.js'
import { createApp } from '../app.js'
import { translator } from '../bot/i18n.js'
import { silentLogger } from '../logger.js'
import { startSandboxApi } from '../sandbox/wechat-api-server.js'
import {
  awardParticipants,
  cancelSignup,
  ensureDefaultActivities,
  isOpeningSlot,
  occurrenceOf,
  periodOf,
  sendActivityReminders,
  signUp,
} from './activities.js'
import {
  cancelReminder,
  DEFAULT_REMINDER_SETTINGS,
  enqueueCheckinReminders,
  recordAuthorisation,
  setReminder,
} from './checkin-reminders.js'
import { LANE } from './outbox.js'

const TZ = 'Asia/Shanghai'
const TOKEN = 'activity-operator-token'

it('finds the occurrence of each cadence', () => {
  const at = new Date('2026-11-26T16:30:00Z') // Friday 27 Nov, 00:30 in Shanghai
  expect(periodOf('daily', at, TZ)).toBe('2026-11-27')
  expect(periodOf('weekly', at, TZ)).toBe('2026-11-23')
  expect(periodOf('monthly', at, TZ)).toBe('2026-11-01')
})

it('names an occurrence by any of its days, and refuses what is not a date', () => {
  expect(occurrenceOf('daily', '2026-11-27')).toBe('2026-11-27')
  expect(occurrenceOf('weekly', '2026-11-27')).toBe('2026-11-23')
  expect(occurrenceOf('weekly', '2026-11-29')).toBe('2026-11-23')
  expect(occurrenceOf('weekly', '2026-11-30')).toBe('2026-11-30')
  expect(occurrenceOf('monthly', '2026-02-28')).toBe('2026-02-01')
  for (const bad of ['2026-02-30', '2026-13-01', '26-11-27', '2026-11-27T00:00:00Z', 'soon', ''])
    expect(() => occurrenceOf('weekly', bad), bad).toThrow(
      /^period: must be a calendar date YYYY-MM-DD/,
    )
})

it("knows the first reminder slot of an activity's occurrence", () => {
  // (instants in UTC; the community is in Shanghai, UTC+8)
  const open = (cron: string, cadence: 'daily' | 'weekly' | 'monthly', at: string) =>
    isOpeningSlot(cron, cadence, new Date(at), TZ)
  // the monthly 评选 has one slot a month: it opens the month
  expect(open('0 10 1 * *', 'monthly', '2026-12-01T02:00:00Z')).toBe(true)
  // Monday and Wednesday 20:00 for a weekly activity: Monday opens the week, Wednesday does not
  expect(open('0 20 * * 1,3', 'weekly', '2026-11-30T12:00:00Z')).toBe(true)
  expect(open('0 20 * * 1,3', 'weekly', '2026-12-02T12:00:00Z')).toBe(false)
  // every Sunday (the week's last day) opens a weekly occurrence
  expect(open('30 8 * * 0', 'weekly', '2026-11-29T00:30:00Z')).toBe(true)
  // every half hour from 9 to 18 for a daily one: 09:00 opens, 09:30 and 12:00 do not
  expect(open('*/30 9-18 * * *', 'daily', '2026-11-25T01:00:00Z')).toBe(true)
  expect(open('*/30 9-18 * * *', 'daily', '2026-11-25T01:30:00Z')).toBe(false)
  expect(open('*/30 9-18 * * *', 'daily', '2026-11-25T04:00:00Z')).toBe(false)
  // every day at 9 for a weekly one: only Monday's
  expect(open('0 9 * * *', 'weekly', '2026-11-23T01:00:00Z')).toBe(true)
  expect(open('0 9 * * *', 'weekly', '2026-11-24T01:00:00Z')).toBe(false)
  // every Monday for a monthly one: the month's first Monday only (7 December 2026)
  expect(open('0 10 * * 1', 'monthly', '2026-12-07T02:00:00Z')).toBe(true)
  expect(open('0 10 * * 1', 'monthly', '2026-12-14T02:00:00Z')).toBe(false)
  // midnight, the occurrence's first minute
  expect(open('0 0 * * *', 'daily', '2026-11-24T16:00:00Z')).toBe(true)
})

forEachDatabase('community activities', (get, dbName) => {
  const appid = SAFE_ACCOUNT.appid
  const now = new Date('2026-11-25T04:00:00Z')
  const members = async (prefix: string, n: number, fields: Record<string, unknown> = {}) =>
    get()
      .db.insertInto('members')
      .values(
        Array.from({ length: n }, (_, i) => ({
          appid,
          openid: `${prefix}_${dbName}_${i}`,
          subscribed: true,
          first_seen_at: now,
          last_inbound_at: now,
          ...fields,
        })),
      )
      .returning(['id', 'openid'])
      .execute()
  const admin = async (method: string, path: string, body?: unknown) => {
    const res = await createApp({
      config: testConfig({ ADMIN_TOKEN: TOKEN }),
      db: get().db,
      router: createRouter(),
      logger: silentLogger,
      clock: { now: () => now },
    }).request(`/admin/api/accounts/${appid}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    return { status: res.status, json: (await res.json()) as Record<string, unknown> }
  }

  it('holds the capacity under 100 concurrent sign-ups, with a waitlist that moves up', async () => {
    const created = await admin('POST', '/activities', {
      key: 'salon',
      name: '线下沙龙',
      description: '周六下午',
      cron: '0 10 * * 6',
      cadence: 'weekly',
      points: 20,
      capacity: 10,
    })
    expect(created.status).toBe(201)
    expect(
      (await admin('POST', '/activities', { ...(created.json as object), key: 'bad key' })).status,
    ).toBe(400)
    const crowd = await members('o_salon', 100)
    const results = await Promise.all(
      crowd.map((m) =>
        signUp(get().db, { appid, memberId: m.id, ref: 'salon', now, timeZone: TZ }),
      ),
    )
    expect(results.filter((r) => r.status === 'confirmed')).toHaveLength(10)
    expect(results.filter((r) => r.status === 'waitlisted')).toHaveLength(90)
    const list = async () =>
      (await admin('GET', '/activities/salon/signups')).json.signups as {
        openid: string
        status: string
      }[]
    const before = await list()
    const firstWaiting = before.find((s) => s.status === 'waitlisted')!.openid
    const leaving = crowd.find((m) => m.openid === before[0]!.openid)!
    expect(
      await cancelSignup(get().db, {
        appid,
        memberId: leaving.id,
        ref: 'salon',
        now,
        timeZone: TZ,
      }),
    ).toBe('cancelled')
    const after = await list()
    expect(after.filter((s) => s.status === 'confirmed')).toHaveLength(10)
    expect(after.find((s) => s.openid === firstWaiting)?.status).toBe('confirmed')
    // taking part pays once per member and occurrence
    const award = await admin('POST', '/activities/salon/award', { openids: [firstWaiting] })
    expect(award.json).toMatchObject({ points: 20, results: [{ status: 'applied' }] })
    const again = await admin('POST', '/activities/salon/award', { openids: [firstWaiting] })
    expect(again.json).toMatchObject({ results: [{ status: 'duplicate' }] })
    expect((await admin('POST', '/activities/salon/award', { openids: ['o_nobody'] })).status).toBe(
      404,
    )
  })

  it('needs a purchase for 好物分享, and reminds signed-up members and those who have not checked in', async () => {
    await ensureDefaultActivities(get().db, appid, now)
    const [buyer] = await members('o_buyer', 1, { purchase_count: 1 })
    const [browser] = await members('o_browser', 1)
    const share = (memberId: number) =>
      signUp(get().db, { appid, memberId, ref: 'share', now, timeZone: TZ })
    expect((await share(browser!.id)).status).toBe('needs_purchase')
    expect((await share(buyer!.id)).status).toBe('confirmed')
    expect((await share(buyer!.id)).status).toBe('already')
    expect(
      (await signUp(get().db, { appid, memberId: buyer!.id, ref: 'checkin', now, timeZone: TZ }))
        .status,
    ).toBe('no_signup')
    const t = translator('zh-CN')
    // Friday 20:00 in Shanghai: the 好物分享 reminder
    const friday = new Date('2026-11-27T12:00:00Z')
    const shareQueued = await sendActivityReminders(get().db, { slot: friday, timeZone: TZ, t })
    expect(shareQueued).toBeGreaterThanOrEqual(1)
    const notice = await get()
      .db.selectFrom('push_outbox')
      .select(['openid', 'payload'])
      .where('source', 'like', 'activity:%')
      .where('openid', '=', buyer!.openid)
      .executeTakeFirstOrThrow()
    expect(JSON.parse(notice.payload).text.content).toMatch(/^⏰ 好物分享/)
    expect(await sendActivityReminders(get().db, { slot: friday, timeZone: TZ, t })).toBe(0) // once per slot
    // with group robots configured, the reminder is announced in the groups too
    const wecom = await startSandboxApi()
    try {
      const robots = {
        keys: { [`chat-${dbName}`]: `activity-robot-${dbName}` },
        baseUrl: wecom.url,
      }
      const saturday = new Date('2026-11-28T02:00:00Z') // 10:00, the salon's reminder
      await sendActivityReminders(get().db, { slot: saturday, timeZone: TZ, t, robots })
      const posts = () => wecom.sent.filter((s) => s.appid === `activity-robot-${dbName}`).length
      const posted = posts()
      expect(posted).toBeGreaterThanOrEqual(1)
      // the slot run again (a failed run's retry): the groups are not posted to twice
      await sendActivityReminders(get().db, { slot: saturday, timeZone: TZ, t, robots })
      expect(posts()).toBe(posted)
    } finally {
      await wecom.close()
    }
    // 09:00: the check-in reminder goes to recent members who have not checked in
    const nine = new Date('2026-11-25T01:00:00Z')
    await sendActivityReminders(get().db, { slot: nine, timeZone: TZ, t })
    const reminded = await get()
      .db.selectFrom('push_outbox')
      .select('openid')
      .where('source', '=', 'checkin-reminder:2026-11-25')
      .execute()
    expect(reminded.map((r) => r.openid)).toContain(browser!.openid)
  })

  it('cancelling a waitlisted sign-up frees no place; a confirmed one moves the waitlist up', async () => {
    expect(
      (
        await admin('POST', '/activities', {
          key: 'tiny',
          name: '小型茶话会',
          description: '只有一个位子',
          cron: '0 10 * * 6',
          cadence: 'weekly',
          capacity: 1,
        })
      ).status,
    ).toBe(201)
    const [a, b, c, d, e] = await members('o_tiny', 5)
    const join = async (m: { id: number }) =>
      (await signUp(get().db, { appid, memberId: m.id, ref: 'tiny', now, timeZone: TZ })).status
    const leave = (m: { id: number }) =>
      cancelSignup(get().db, { appid, memberId: m.id, ref: 'tiny', now, timeZone: TZ })
    expect([await join(a!), await join(b!), await join(c!)]).toEqual([
      'confirmed',
      'waitlisted',
      'waitlisted',
    ])
    const list = async () =>
      Object.fromEntries(
        (
          (await admin('GET', '/activities/tiny/signups')).json.signups as {
            openid: string
            status: string
          }[]
        ).map((x) => [x.openid, x.status]),
      )
    expect(await leave(b!)).toBe('cancelled')
    expect(await list()).toEqual({ [a!.openid]: 'confirmed', [c!.openid]: 'waitlisted' })
    expect(await leave(b!)).toBe('not_signed_up')
    // the confirmed member leaves: the first waiting takes the place
    expect(await leave(a!)).toBe('cancelled')
    expect(await list()).toEqual({ [c!.openid]: 'confirmed' })
    expect([await join(d!), await join(e!)]).toEqual(['waitlisted', 'waitlisted'])
    // with the capacity raised meanwhile, a freed place lets in as many as there is room for
    await get()
      .db.updateTable('activities')
      .set({ capacity: 2 })
      .where('key', '=', 'tiny')
      .execute()
    expect(await leave(c!)).toBe('cancelled')
    expect(await list()).toEqual({ [d!.openid]: 'confirmed', [e!.openid]: 'confirmed' })
    // any day of the week names the week's list
    const friday = await admin('GET', '/activities/tiny/signups?period=2026-11-27')
    expect(friday.json).toMatchObject({ period: '2026-11-23', signups: [{}, {}] })
  })

  it('awards once per member and occurrence, whichever day of it is named', async () => {
    expect(
      (
        await admin('POST', '/activities', {
          key: 'weekly-award',
          name: '每周打卡',
          description: '一周一次',
          cron: '0 20 * * 0',
          cadence: 'weekly',
          points: 10,
        })
      ).status,
    ).toBe(201)
    const [m] = await members('o_award', 1)
    const award = (period?: string) =>
      admin('POST', '/activities/weekly-award/award', { openids: [m!.openid], period })
    const first = await award('2026-11-24')
    expect(first.json).toMatchObject({ results: [{ status: 'applied' }] })
    const sameWeek = await award('2026-11-27')
    expect(sameWeek.json).toMatchObject({ results: [{ status: 'duplicate' }] })
    // the answer names the occurrence
    expect([first.json.period, sameWeek.json.period]).toEqual(['2026-11-23', '2026-11-23'])
    // no period: the current occurrence (now is Wednesday the 25th), the same week again
    expect((await award()).json).toMatchObject({ results: [{ status: 'duplicate' }] })
    const direct = (period: string) =>
      awardParticipants(get().db, {
        appid,
        key: 'weekly-award',
        period,
        memberIds: [m!.id],
        now,
        timeZone: TZ,
      })
    expect(await direct('2026-11-29')).toEqual([
      { memberId: m!.id, status: 'duplicate', points: 0 },
    ])
    // a bronze member: the activity's 10 × 1
    expect(await direct('2026-11-30')).toEqual([{ memberId: m!.id, status: 'applied', points: 10 }])
    await expect(direct('2026-11-31')).rejects.toThrow(/^period: must be a calendar date/)
    expect((await award('2026-11-31')).status).toBe(400)
    const ledger = await get()
      .db.selectFrom('points_ledger')
      .select(['delta', 'reference'])
      .where('member_id', '=', m!.id)
      .where('rule', '=', 'activity_weekly-award')
      .orderBy('id')
      .execute()
    expect(ledger).toEqual([
      { delta: 10, reference: '每周打卡 2026-11-23' },
      { delta: 10, reference: '每周打卡 2026-11-30' },
    ])
  })

  it('awards only an occurrence that has started and is not older than the activity', async () => {
    // Created on Wednesday the 25th: its first occurrence is the week of the 23rd, the current one.
    const created = await admin('POST', '/activities', {
      key: 'bounded',
      name: '有界活动',
      description: '只发已开始的场次',
      cron: '0 20 * * 0',
      cadence: 'weekly',
      points: 100000,
    })
    expect(created.status).toBe(201)
    const [m] = await members('o_bounded', 1)
    const award = (period?: string) =>
      admin('POST', '/activities/bounded/award', { openids: [m!.openid], period })
    for (const period of ['2026-11-30', '2026-11-16', '2020-01-06']) {
      const refused = await award(period)
      expect(refused.status).toBe(400)
      expect(refused.json).toEqual({
        code: 'BAD_REQUEST',
        message: 'period: must be an occurrence from 2026-11-23 to 2026-11-23',
      })
    }
    expect((await award('2026-11-29')).json).toMatchObject({ results: [{ status: 'applied' }] })
    const ledger = await get()
      .db.selectFrom('points_ledger')
      .select(['delta', 'reference'])
      .where('member_id', '=', m!.id)
      .execute()
    expect(ledger).toEqual([{ delta: 100000, reference: '有界活动 2026-11-23' }])
  })

  it('the opening reminder of a sign-up activity invites who can sign up; later ones remind sign-ups only', async () => {
    const db = get().db
    const t = translator('zh-CN')
    await ensureDefaultActivities(db, appid, now)
    // The monthly 评选 opens at 10:00 on the 1st (02:00 UTC): nobody has signed up for December yet.
    const opening = new Date('2026-12-01T02:00:00Z')
    const hoursBefore = (h: number) => new Date(opening.getTime() - h * 3600_000)
    const [inWindow] = await members('o_contest_window', 1, { last_inbound_at: hoursBefore(1) })
    const [stale] = await members('o_contest_stale', 1, { last_inbound_at: hoursBefore(49) })
    const [optedOut] = await members('o_contest_td', 1, {
      last_inbound_at: hoursBefore(1),
      marketing_opt_out: true,
    })
    const [gone] = await members('o_contest_gone', 1, {
      last_inbound_at: hoursBefore(1),
      subscribed: false,
    })
    const [early, november] = await members('o_contest_signed', 2, {
      last_inbound_at: hoursBefore(2),
    })
    const contest = (memberId: number, at: Date) =>
      signUp(db, { appid, memberId, ref: 'contest', now: at, timeZone: TZ })
    expect((await contest(early!.id, hoursBefore(1))).status).toBe('confirmed') // 09:00 on the 1st
    expect((await contest(november!.id, new Date('2026-11-20T02:00:00Z'))).status).toBe('confirmed')
    await sendActivityReminders(db, { slot: opening, timeZone: TZ, t })
    // what one activity's reminder slot queued, by openid
    const sent = async (key: string, at: Date) => {
      const { id } = await db
        .selectFrom('activities')
        .select('id')
        .where('appid', '=', appid)
        .where('key', '=', key)
        .executeTakeFirstOrThrow()
      const rows = await db
        .selectFrom('push_outbox')
        .select(['openid', 'payload'])
        .where('source', '=', `activity:${id}:${at.toISOString()}`)
        .execute()
      return Object.fromEntries(
        rows.map((r) => [r.openid, JSON.parse(r.payload).text.content as string]),
      )
    }
    const december = await sent('contest', opening)
    expect(december[inWindow!.openid]).toBe(
      '📣 月度评选：每月 1 日开启评选，入选得积分（基础 50 分，乘你的等级倍数）\n回复「报名 contest」参加。',
    )
    expect(december[november!.openid]).toMatch(/^📣 月度评选/) // signed up for November only
    expect(december[early!.openid]).toBe(
      '⏰ 月度评选：每月 1 日开启评选，入选得积分（基础 50 分，乘你的等级倍数）',
    )
    for (const m of [stale, optedOut, gone]) expect(december[m!.openid], m!.openid).toBeUndefined()

    // A weekly activity reminded on Monday and Wednesday: Monday's opens the week
    expect(
      (
        await admin('POST', '/activities', {
          key: 'duo',
          name: '双日共读',
          description: '周一、周三晚 8 点',
          cron: '0 20 * * 1,3',
          cadence: 'weekly',
        })
      ).status,
    ).toBe(201)
    const monday = new Date('2026-11-30T12:00:00Z')
    const wednesday = new Date('2026-12-02T12:00:00Z')
    const [reader, lurker] = await members('o_duo', 2, {
      last_inbound_at: new Date(monday.getTime() - 3600_000),
    })
    const duo = (m: { id: number }) =>
      signUp(db, { appid, memberId: m.id, ref: 'duo', now: monday, timeZone: TZ })
    expect((await duo(reader!)).status).toBe('confirmed')
    await sendActivityReminders(db, { slot: monday, timeZone: TZ, t })
    const mondays = await sent('duo', monday)
    expect(mondays[reader!.openid]).toMatch(/^⏰ 双日共读/)
    expect(mondays[lurker!.openid]).toMatch(/^📣 双日共读/)
    await db
      .updateTable('members')
      .set({ last_inbound_at: new Date(wednesday.getTime() - 3600_000) })
      .where('id', 'in', [reader!.id, lurker!.id])
      .execute()
    await sendActivityReminders(db, { slot: wednesday, timeZone: TZ, t })
    const wednesdays = await sent('duo', wednesday)
    expect(wednesdays[reader!.openid]).toMatch(/^⏰ 双日共读/)
    expect(wednesdays[lurker!.openid]).toBeUndefined()
  })

  it('sends the daily check-in reminder only to members whose choices allow it, and one reminder a day of either kind', async () => {
    const db = get().db
    const t = translator('zh-CN')
    const app = `wx_checkin_choices_${dbName}`
    const at = (hhmm: string) => new Date(`2026-12-03T${hhmm}:00+08:00`) // a Thursday
    await ensureDefaultActivities(db, app, at('08:00'))
    const who = ['plain', 'never', 'off', 'own', 'td', 'later', 'sub'] as const
    const rows = await db
      .insertInto('members')
      .values(
        who.map((w) => ({
          appid: app,
          openid: `o_choice_${w}_${dbName}`,
          subscribed: true,
          first_seen_at: at('08:00'),
          // `sub` wrote 47 h before 09:00: inside the window then, outside it by 20:00
          last_inbound_at:
            w === 'sub' ? new Date(at('09:00').getTime() - 47 * 3600_000) : at('08:00'),
          marketing_opt_out: w === 'td', // 退订
        })),
      )
      .returning(['id', 'openid'])
      .execute()
    const m = Object.fromEntries(who.map((w, i) => [w, rows[i]!]))
    const settings = {
      ...DEFAULT_REMINDER_SETTINGS,
      subscribe: { templateId: 'tpl_remind', titleKey: 'thing1', hintKey: 'thing2' },
    }
    const remind = (w: string, minute: number | undefined, when: string) =>
      setReminder(db, {
        appid: app,
        memberId: m[w]!.id,
        minute,
        now: at(when),
        timeZone: TZ,
        settings,
      })
    // 取消提醒 from a member who never turned reminders on, and from one turning theirs off
    await cancelReminder(db, m.never!.id, at('08:10'))
    await remind('off', undefined, '08:10')
    await cancelReminder(db, m.off!.id, at('08:20'))
    // 提醒 12:20: their own reminder covers the day
    await remind('own', 12 * 60 + 20, '08:10')
    await sendActivityReminders(db, { slot: at('09:00'), timeZone: TZ, t })
    const items = () =>
      db
        .selectFrom('push_outbox')
        .select(['openid', 'source', 'lane', 'payload', 'expires_at'])
        .where('appid', '=', app)
        .orderBy('id')
        .execute()
    const nine = await items()
    expect(nine.map((i) => i.openid).sort()).toEqual(
      [m.later!.openid, m.plain!.openid, m.sub!.openid].sort(),
    )
    const plain = nine.find((i) => i.openid === m.plain!.openid)!
    // the day's check-in reminder source, marketing (nobody asked for it), 2 h at most late
    expect(plain).toMatchObject({ source: 'checkin-reminder:2026-12-03', lane: LANE.campaign })
    expect(new Date(plain.expires_at!)).toEqual(at('11:00'))
    expect(JSON.parse(plain.payload).text.content).toBe(
      '⏰ 每日签到提醒：每天 9 点提醒还没签到的朋友\n回复「取消提醒」不再提醒。',
    )
    // `later` turns their own reminder on at 10:00 for 12:20: today's came already, none again
    await remind('later', 12 * 60 + 20, '10:00')
    await enqueueCheckinReminders(db, { slot: at('12:20'), timeZone: TZ, settings, t })
    const noon = await items()
    expect(noon.filter((i) => i.openid === m.later!.openid)).toHaveLength(1)
    // while `own` gets theirs, as they asked
    expect(noon.filter((i) => i.openid === m.own!.openid)).toMatchObject([
      { source: 'checkin-reminder:2026-12-03', lane: LANE.notice },
    ])
    expect(noon).toHaveLength(4)
    // `sub` accepts the reminder template at 10:00 (on at 20:00, one send outside the window): at
    // 20:00 today's reminder came already, so none goes and the authorisation is kept
    await recordAuthorisation(db, {
      appid: app,
      memberId: m.sub!.id,
      source: { app: 'oa' },
      templateId: 'tpl_remind',
      now: at('10:00'),
      timeZone: TZ,
      settings,
    })
    await enqueueCheckinReminders(db, { slot: at('20:00'), timeZone: TZ, settings, t })
    expect((await items()).filter((i) => i.openid === m.sub!.openid)).toHaveLength(1)
    expect(
      await db
        .selectFrom('checkin_reminders')
        .select(['enabled', 'oa_credits'])
        .where('member_id', '=', m.sub!.id)
        .executeTakeFirst(),
    ).toEqual({ enabled: true, oa_credits: 1 })
  })

  it('keeps the daily check-in reminder away for a reminder that is on or a 取消提醒, not for one merely off', async () => {
    const db = get().db
    const t = translator('zh-CN')
    const app = `wx_checkin_off_${dbName}`
    const date = (day: number) => `2026-12-${String(day).padStart(2, '0')}`
    const at = (day: number, hhmm: string) => new Date(`${date(day)}T${hhmm}:00+08:00`)
    await ensureDefaultActivities(db, app, at(7, '08:00'))
    const who = ['plain', 'refused', 'chose', 'cycle'] as const
    const rows = await db
      .insertInto('members')
      .values(
        who.map((w) => ({
          appid: app,
          openid: `o_off_${w}_${dbName}`,
          subscribed: true,
          first_seen_at: at(7, '08:00'),
        })),
      )
      .returning(['id', 'openid'])
      .execute()
    const m = Object.fromEntries(who.map((w, i) => [w, rows[i]!]))
    const settings = { ...DEFAULT_REMINDER_SETTINGS, mpTemplateId: 'tpl_mp_remind' }
    // an accept in the mini program whose time (23:00) was refused for quiet hours: the send is
    // kept, the reminder left off — the member did not choose off (POST /api/mp/reminders)
    const refusedAccept = (w: string, when: Date) =>
      recordAuthorisation(db, {
        appid: app,
        memberId: m[w]!.id,
        source: { app: 'mp', openid: `o_mp_${w}_${dbName}` },
        templateId: 'tpl_mp_remind',
        now: when,
        timeZone: TZ,
        settings,
        turnOn: false,
      })
    const remind = (w: string, when: Date) =>
      setReminder(db, { appid: app, memberId: m[w]!.id, now: when, timeZone: TZ, settings })
    const state = (w: string) =>
      db
        .selectFrom('checkin_reminders')
        .select(['enabled', 'cancelled'])
        .where('member_id', '=', m[w]!.id)
        .executeTakeFirstOrThrow()
    /** Who the day's 09:00 每日签到提醒 goes to (all of them wrote within the 48 h window). */
    const nine = async (day: number) => {
      await db
        .updateTable('members')
        .set({ last_inbound_at: at(day, '08:00') })
        .where('appid', '=', app)
        .execute()
      await sendActivityReminders(db, { slot: at(day, '09:00'), timeZone: TZ, t })
      const items = await db
        .selectFrom('push_outbox')
        .select('openid')
        .where('appid', '=', app)
        .where('source', '=', `checkin-reminder:${date(day)}`)
        .execute()
      const names = Object.fromEntries(who.map((w) => [m[w]!.openid, w]))
      return items.map((i) => names[i.openid]).sort()
    }
    await refusedAccept('refused', at(7, '08:10'))
    // 取消提醒 from one who never turned reminders on; a refused accept after it keeps the choice
    expect(await cancelReminder(db, m.chose!.id, at(7, '08:10'))).toBe(true)
    await refusedAccept('chose', at(7, '08:20'))
    await remind('cycle', at(7, '08:10')) // 提醒
    expect(await nine(7)).toEqual(['plain', 'refused'])
    expect(await state('refused')).toEqual({ enabled: false, cancelled: false })
    // 取消提醒 after the refused accept is their choice: the 09:00 one stops too
    expect(await cancelReminder(db, m.refused!.id, at(7, '10:00'))).toBe(true)
    expect(await cancelReminder(db, m.refused!.id, at(7, '10:00'))).toBe(false)
    expect(await cancelReminder(db, m.cycle!.id, at(7, '10:00'))).toBe(true) // 提醒, 取消提醒
    expect(await state('refused')).toEqual({ enabled: false, cancelled: true })
    expect(await nine(8)).toEqual(['plain'])
    // 提醒 again: their own reminder is on (the choice to be off is gone), it covers the day
    await remind('cycle', at(8, '10:00'))
    expect(await state('cycle')).toEqual({ enabled: true, cancelled: false })
    expect(await nine(9)).toEqual(['plain'])
    // and 取消提醒 once more keeps the 09:00 one away while theirs is off
    expect(await cancelReminder(db, m.cycle!.id, at(9, '10:00'))).toBe(true)
    expect(await state('cycle')).toEqual({ enabled: false, cancelled: true })
    expect(await nine(10)).toEqual(['plain'])
  })

  it('tells a member promoted off the waitlist, once per sign-up', async () => {
    const db = get().db
    expect(
      (
        await admin('POST', '/activities', {
          key: 'duet',
          name: '二人读书会',
          description: '只有一个位子',
          cron: '0 10 * * 6',
          cadence: 'weekly',
          capacity: 1,
        })
      ).status,
    ).toBe(201)
    const [a, b, c] = await members('o_duet', 3)
    const minutes = (n: number) => new Date(now.getTime() + n * 60_000)
    const join = async (x: { id: number }, at: Date) =>
      (await signUp(db, { appid, memberId: x.id, ref: 'duet', now: at, timeZone: TZ })).status
    const leave = (x: { id: number }, at: Date, t?: ReturnType<typeof translator>) =>
      cancelSignup(db, { appid, memberId: x.id, ref: 'duet', now: at, timeZone: TZ, t })
    const told = async () =>
      (
        await db
          .selectFrom('push_outbox')
          .select(['openid', 'lane', 'payload'])
          .where('source', 'like', 'activity-promoted:%')
          .where('openid', 'in', [a!.openid, b!.openid, c!.openid])
          .orderBy('id')
          .execute()
      ).map((r) => [r.openid, r.lane, JSON.parse(r.payload).text.content])
    expect([await join(a!, minutes(0)), await join(b!, minutes(1))]).toEqual([
      'confirmed',
      'waitlisted',
    ])
    expect(await leave(a!, minutes(2))).toBe('cancelled')
    const promoted = [
      b!.openid,
      LANE.notice,
      '🎉 有人退出，你已从候补转为「二人读书会」的正式报名，开始前会提醒你。',
    ]
    expect(await told()).toEqual([promoted])
    // leaving again changes nothing and tells no one
    expect(await leave(a!, minutes(3))).toBe('not_signed_up')
    expect(await told()).toEqual([promoted])
    // b leaves and signs up again behind c: promoted again, a new sign-up, told again (in English)
    expect(await join(c!, minutes(4))).toBe('waitlisted')
    expect(await leave(b!, minutes(5))).toBe('cancelled')
    expect(await join(b!, minutes(6))).toBe('waitlisted')
    expect(await leave(c!, minutes(7), translator('en'))).toBe('cancelled')
    expect(await told()).toEqual([
      promoted,
      [c!.openid, LANE.notice, promoted[2]],
      [
        b!.openid,
        LANE.notice,
        '🎉 A place opened up: you are off the waitlist and in "二人读书会" — we will remind you before it starts.',
      ],
    ])
  })

  it('signs up through the OA chat', async () => {
    // The suite's instant (a Wednesday, 12:00 Asia/Shanghai) for the server and the pushes: the
    // weekly 话题讨论's occurrence is the local week, and on the real clock a Monday 00:00 between
    // 报名 and 取消报名 left the new week's occurrence with no sign-up to cancel.
    const server = await startServer(get().db, { clock: { now: () => now } })
    try {
      const chat = server.pusher()
      const list = (await chat.text(`o_chat_${dbName}`, '活动')).reply!.Content as string
      expect(list).toContain('每周话题讨论（topic）')
      expect((await chat.text(`o_chat_${dbName}`, '报名 topic')).reply!.Content).toBe(
        '报名成功 ✅「每周话题讨论」，开始前会提醒你。',
      )
      expect((await chat.text(`o_chat_${dbName}`, '报名 每周话题讨论')).reply!.Content).toBe(
        '你已经报名「每周话题讨论」啦。',
      )
      expect((await chat.text(`o_chat_${dbName}`, '报名 nope')).reply!.Content).toMatch(
        /没有找到活动/,
      )
      expect((await chat.text(`o_chat_${dbName}`, '取消报名 topic')).reply!.Content).toBe(
        '已取消报名。',
      )
    } finally {
      await server.close()
    }
  })
})
