import { afterAll, beforeAll, expect, it } from 'vitest'
import { analyticsRollupJob } from '../../jobs/analytics-rollup.js'
import { runScheduled } from '../../jobs/runner.js'
import { forEachDatabase } from '../../test/databases.js'
import {
  PLAIN_ACCOUNT,
  SAFE_ACCOUNT,
  startServer,
  type TestServer,
  testConfig,
} from '../../test/server.js'
import { chunkBudget } from '../budget.js'
import { inviteCode, recordShare } from '../community/invites.js'
import { silentLogger } from '../logger.js'
import { createPusher } from '../sandbox/pusher.js'
import { buildDay, computeDay, type DailyFigure } from './rollup.js'
import { dayText } from './series.js'

const TZ = 'Asia/Shanghai'
/** 10:00 Beijing on 2026-11-01 + n days. */
const dayAt = (n: number, hour = 10) =>
  new Date(Date.UTC(2026, 10, 1 + n, hour - 8, Math.floor(Math.random() * 50)))
const dayName = (n: number) => dayAt(n).toISOString().slice(0, 10)

forEachDatabase('daily rollups from the durable facts', (get, dbName) => {
  let server: TestServer
  const at = { now: dayAt(0) }
  const clock = { now: () => at.now }
  beforeAll(async () => {
    server = await startServer(get().db, {
      clock,
      config: testConfig({ ADMIN_TOKEN: 'analytics-operator-token-01' }),
    })
  })
  afterAll(() => server.close())
  const wx = () =>
    createPusher({
      url: `${server.url}/wechat`,
      account: SAFE_ACCOUNT,
      now: () => at.now.getTime(),
    })
  const figure = (figures: DailyFigure[], metric: string, dim = '') =>
    figures.find((f) => f.metric === metric && f.dim === dim)?.value ?? 0
  const o = (name: string) => `o_${dbName}_${name}`
  /** A member's activity bits on day n. */
  const kindsOf = async (name: string, n: number) =>
    (
      await get()
        .db.selectFrom('member_days')
        .innerJoin('members', 'members.id', 'member_days.member_id')
        .select('kinds')
        .where('members.openid', '=', o(name))
        .where('member_days.day', '=', dayName(n))
        .executeTakeFirstOrThrow()
    ).kinds

  it('counts follows by source, activity, check-ins and points per community day, exactly', async () => {
    const chat = wx()
    // day 0: three follow (an invite QR, a poster QR, a search); two message, one checks in twice
    at.now = dayAt(0, 9)
    await chat.event(o('a'), 'subscribe', { EventKey: 'qrscene_inv_ABCDEFGH' })
    await chat.event(o('b'), 'subscribe', { EventKey: 'qrscene_poster-11' })
    await chat.event(o('c'), 'subscribe')
    at.now = dayAt(0, 12)
    await chat.text(o('a'), '签到')
    await chat.text(o('a'), '签到')
    await chat.text(o('b'), '你好')
    await chat.text(o('b'), '在吗')
    // day 1 (23:30 Beijing is still day 1): b unfollows, c checks in, a says hi
    at.now = dayAt(1, 23)
    await chat.event(o('b'), 'unsubscribe')
    await chat.text(o('c'), '签到')
    await chat.text(o('a'), '早')
    await chat.event(o('a'), 'CLICK', { EventKey: 'MENU_HELP' }) // after the day's first message

    const d0 = await computeDay(get().db, {
      appid: SAFE_ACCOUNT.appid,
      day: dayName(0),
      timeZone: TZ,
    })
    expect(figure(d0, 'followers.new')).toBe(3)
    expect(figure(d0, 'followers.new', 'invite')).toBe(1)
    expect(figure(d0, 'followers.new', 'qr')).toBe(1)
    expect(figure(d0, 'followers.new', 'organic')).toBe(1)
    expect(figure(d0, 'followers.net')).toBe(3)
    // the total at the end of day 0, though b left on day 1
    expect(figure(d0, 'followers.total')).toBe(3)
    expect(figure(d0, 'activity.dau')).toBe(3)
    expect(figure(d0, 'activity.messages')).toBe(4)
    // 4 messages from the 2 members who sent any
    expect(figure(d0, 'activity.messages_per_active')).toBe(2)
    expect(figure(d0, 'checkins.participants')).toBe(1)
    expect(figure(d0, 'checkins.rate')).toBeCloseTo(1 / 3, 10)
    expect(figure(d0, 'checkins.streak', '1')).toBe(1)

    const d1 = await computeDay(get().db, {
      appid: SAFE_ACCOUNT.appid,
      day: dayName(1),
      timeZone: TZ,
    })
    expect(figure(d1, 'followers.unfollowed')).toBe(1)
    expect(figure(d1, 'followers.unfollowed', 'qr')).toBe(1)
    expect(figure(d1, 'followers.total')).toBe(2)
    // the unfollow is not activity: a and c
    expect(figure(d1, 'activity.dau')).toBe(2)
    expect(figure(d1, 'activity.wau')).toBe(3)
    expect(figure(d1, 'activity.mau')).toBe(3)
    expect(figure(d1, 'activity.stickiness')).toBeCloseTo(2 / 3, 10)
    // a menu click later in the day is still recorded as the day's click
    expect((await kindsOf('a', 1)) & 5).toBe(5)

    // points issued per rule add up to the ledger's positive deltas of the day
    const { rows } = await get()
      .db.selectFrom('points_ledger')
      .select(['rule', 'delta'])
      .where('appid', '=', SAFE_ACCOUNT.appid)
      .where('day', '=', dayName(0))
      .execute()
      .then((r) => ({ rows: r }))
    const issued = rows.filter((r) => r.delta > 0).reduce((n, r) => n + r.delta, 0)
    expect(issued).toBeGreaterThan(0)
    expect(figure(d0, 'points.issued')).toBe(issued)
    const checkin = rows.filter((r) => r.rule === 'checkin').reduce((n, r) => n + r.delta, 0)
    expect(figure(d0, 'points.issued', 'checkin')).toBe(checkin)
  })

  it('builds a day once and again with the same rows, and keeps the check-in kind', async () => {
    const db = get().db
    const scope = {
      appid: SAFE_ACCOUNT.appid,
      day: dayName(0),
      timeZone: TZ,
      now: dayAt(1),
      today: dayName(1),
    }
    const first = await buildDay(db, scope)
    const rows = () =>
      db
        .selectFrom('analytics_daily')
        .select(['metric', 'dim', 'value'])
        .where('appid', '=', SAFE_ACCOUNT.appid)
        .where('day', '=', dayName(0))
        .orderBy('metric')
        .orderBy('dim')
        .execute()
    const before = await rows()
    expect(before.length).toBe(first.figures)
    await buildDay(db, scope)
    expect(await rows()).toEqual(before)
    // the member who checked in has the check-in bit on day 0
    expect((await kindsOf('a', 0)) & 3).toBe(3)
    // an old day rebuilt keeps its snapshot figures
    await db
      .updateTable('analytics_daily')
      .set({ value: 99 })
      .where('metric', '=', 'members.level')
      .where('day', '=', dayName(0))
      .execute()
    await buildDay(db, { ...scope, now: dayAt(9), today: dayName(9) })
    const level = (await rows()).filter((r) => r.metric === 'members.level')
    expect(level.length).toBeGreaterThan(0)
    for (const r of level) expect(r.value).toBe(99)
  })

  const admin = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${server.url}/admin/api/analytics${path}`, {
      method,
      headers: {
        authorization: 'Bearer analytics-operator-token-01',
        'content-type': 'application/json',
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    const text = await res.text()
    // biome-ignore lint/suspicious/noExplicitAny: response JSON, checked by the assertions
    let json: any = null
    try {
      json = JSON.parse(text)
    } catch {}
    return { status: res.status, text, json, type: res.headers.get('content-type') }
  }

  it('serves series by day, week and month: built days, the days not built yet live, as CSV', async () => {
    at.now = dayAt(2, 15) // day 2 is today
    // Only day 0 is built: day 1 (the job's lag) is read live, like today — not 0.
    expect((await admin('POST', '/rebuild', { from: dayName(0), to: dayName(0) })).json).toEqual({
      rebuilt: 1,
    })
    const lag = await admin(
      'GET',
      `/series?metric=followers.unfollowed&from=${dayName(-1)}&to=${dayName(2)}`,
    )
    // the day before the first build is before the account's data: empty, 0
    expect(lag.json.points).toEqual([
      { start: dayName(-1), value: 0, partial: false },
      { start: dayName(0), value: 0, partial: false },
      { start: dayName(1), value: 1, partial: false },
      { start: dayName(2), value: 0, partial: true },
    ])
    expect(lag.json.asOf).toBe(dayName(0))
    // Now day 1 is built too: days 0 and 1 come from the rollup
    expect((await admin('POST', '/rebuild', { from: dayName(1), to: dayName(1) })).json).toEqual({
      rebuilt: 1,
    })
    const series = await admin(
      'GET',
      `/series?metric=followers.new&from=${dayName(-2)}&to=${dayName(2)}`,
    )
    expect(series.status).toBe(200)
    // days before the first build are before the account's data: 0 (the install's month adds up)
    expect(series.json.points).toEqual([
      { start: dayName(-2), value: 0, partial: false },
      { start: dayName(-1), value: 0, partial: false },
      { start: dayName(0), value: 3, partial: false },
      { start: dayName(1), value: 0, partial: false },
      { start: dayName(2), value: 0, partial: true },
    ])
    // today's figure is live: a follow now shows at once
    await wx().event(o('d'), 'subscribe')
    await new Promise((r) => setTimeout(r, 5100)) // the live cache lives 5 s
    const again = await admin('GET', `/series?metric=followers.new&from=${dayName(2)}`)
    expect(again.json.points).toEqual([{ start: dayName(2), value: 1, partial: true }])
    // 2026-11-01 is a Sunday: its week starts on Monday 10-26; sums per week
    const weekly = await admin(
      'GET',
      `/series?metric=followers.new&from=${dayName(0)}&to=${dayName(2)}&granularity=week`,
    )
    expect(weekly.json.points).toEqual([
      { start: '2026-10-26', value: 3, partial: false },
      { start: '2026-11-02', value: 1, partial: true },
    ])
    // a stock takes the period's last day; by source through dim
    const invite = await admin(
      'GET',
      `/series?metric=followers.new&dim=invite&from=${dayName(0)}&to=${dayName(0)}`,
    )
    expect(invite.json.points[0].value).toBe(1)
    const csv = await admin(
      'GET',
      `/series?metric=followers.new&from=${dayName(0)}&to=${dayName(1)}&format=csv`,
    )
    expect(csv.type).toContain('text/csv')
    expect(csv.text).toBe(`start,value,partial\n${dayName(0)},3,false\n${dayName(1)},0,false\n`)
    // the CSV carries the series' values: no orders, no average order value (empty), not 0
    const aov = await admin(
      'GET',
      `/series?metric=commerce.aov_fen&from=${dayName(0)}&to=${dayName(1)}&format=csv`,
    )
    expect(aov.text).toBe(`start,value,partial\n${dayName(0)},,false\n${dayName(1)},,false\n`)
    // the overview compares today with yesterday and the same day last week
    const overview = await admin('GET', '/overview')
    const followers = overview.json.metrics.find(
      (m: { metric: string }) => m.metric === 'followers.total',
    )
    // the same day last week was before the first build (before the account's data): 0, and no
    // change against it
    expect(followers).toMatchObject({
      today: 3,
      yesterday: 2,
      sameDayLastWeek: 0,
      yesterdayVsWeekBefore: null,
    })
  }, 30_000)

  it('refuses bad analytics requests clearly and changes nothing', async () => {
    const count = async () =>
      (
        await get()
          .db.selectFrom('analytics_daily')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .executeTakeFirstOrThrow()
      ).n
    const before = await count()
    expect((await admin('GET', '/series?metric=nope')).status).toBe(400)
    expect((await admin('GET', '/series?metric=activity.dau&from=2026-13-01')).status).toBe(400)
    expect(
      (await admin('GET', `/series?metric=activity.dau&from=${dayName(2)}&to=${dayName(0)}`))
        .status,
    ).toBe(400)
    expect((await admin('GET', '/series?metric=activity.dau&appid=wxnope')).status).toBe(404)
    expect((await admin('POST', '/rebuild', { from: dayName(0), to: dayName(2) })).status).toBe(400)
    expect((await admin('POST', '/rebuild', { from: dayName(0) })).status).toBe(400)
    expect(Number(await count())).toBe(Number(before))
  })

  it('the nightly job builds every day not built yet, up to yesterday, and then nothing', async () => {
    const db = get().db
    await db.deleteFrom('analytics_days').execute()
    await db.deleteFrom('analytics_daily').execute()
    const ctx = {
      db,
      clock: { now: () => dayAt(3, 4) },
      logger: silentLogger,
      config: testConfig(),
      slot: dayAt(3, 4),
    }
    const first = await analyticsRollupJob.run(ctx)
    // facts from day 0 (and day 2's follow): days 0, 1, 2 are built; the second account has no
    // facts yet: yesterday is built (all zero), so its figures read 0, not "not built"
    expect(first).toEqual({ built: { [SAFE_ACCOUNT.appid]: 3, [PLAIN_ACCOUNT.appid]: 1 } })
    expect(await analyticsRollupJob.run(ctx)).toEqual({
      built: { [SAFE_ACCOUNT.appid]: 0, [PLAIN_ACCOUNT.appid]: 0 },
    })
    const quiet = await db
      .selectFrom('analytics_days')
      .select('day')
      .where('appid', '=', PLAIN_ACCOUNT.appid)
      .execute()
    expect(quiet.map((d) => dayText(d.day))).toEqual([dayName(2)])
    const days = await db
      .selectFrom('analytics_days')
      .select('day')
      .where('appid', '=', SAFE_ACCOUNT.appid)
      .orderBy('day')
      .execute()
    expect(days.map((d) => dayText(d.day))).toEqual([dayName(0), dayName(1), dayName(2)])
  })

  it('the nightly job builds the days a rebuild ahead of it skipped (a gap is never left unbuilt)', async () => {
    const db = get().db
    await db.deleteFrom('analytics_days').execute()
    await db.deleteFrom('analytics_daily').execute()
    const ctx = {
      db,
      clock: { now: () => dayAt(3, 4) },
      logger: silentLogger,
      config: testConfig(),
      slot: dayAt(3, 4),
    }
    // the job built day 0, then failed for two nights; an operator rebuilt only day 2
    await buildDay(db, {
      appid: SAFE_ACCOUNT.appid,
      day: dayName(0),
      timeZone: TZ,
      now: dayAt(3, 4),
      today: dayName(3),
    })
    await buildDay(db, {
      appid: SAFE_ACCOUNT.appid,
      day: dayName(2),
      timeZone: TZ,
      now: dayAt(3, 4),
      today: dayName(3),
    })
    expect(await analyticsRollupJob.run(ctx)).toEqual({
      built: { [SAFE_ACCOUNT.appid]: 1, [PLAIN_ACCOUNT.appid]: 1 },
    })
    const days = await db
      .selectFrom('analytics_days')
      .select('day')
      .where('appid', '=', SAFE_ACCOUNT.appid)
      .orderBy('day')
      .execute()
    expect(days.map((d) => dayText(d.day))).toEqual([dayName(0), dayName(1), dayName(2)])
    expect(await analyticsRollupJob.run(ctx)).toEqual({
      built: { [SAFE_ACCOUNT.appid]: 0, [PLAIN_ACCOUNT.appid]: 0 },
    })
  })

  it('the nightly job with a tiny budget builds a day an invocation, paused in between, and ends as one run does', async () => {
    const db = get().db
    const figures = () =>
      db
        .selectFrom('analytics_daily')
        .select(['appid', 'metric', 'day', 'dim', 'value'])
        .orderBy(['appid', 'metric', 'day', 'dim'])
        .execute()
    const expected = await figures()
    expect(expected.length).toBeGreaterThan(0)
    await db.deleteFrom('analytics_days').execute()
    await db.deleteFrom('analytics_daily').execute()
    const deps = {
      db,
      clock: { now: () => dayAt(3, 4) },
      logger: silentLogger,
      config: testConfig(),
    }
    const slot = dayAt(3, 4)
    const tick = (k: number) =>
      runScheduled(analyticsRollupJob, deps, {
        slot: new Date(slot.getTime() + k * 60_000),
        due: k === 0,
        timeZone: TZ,
        worker: `t${k}`,
        budget: chunkBudget(0),
      })
    // Days 0, 1, 2 to build, and the quiet second account's day 2: one a tick.
    expect((await tick(0)).map((r) => r.status)).toEqual(['paused'])
    expect((await tick(1)).map((r) => r.status)).toEqual(['paused'])
    expect((await tick(2)).map((r) => r.status)).toEqual(['paused'])
    const [last] = await tick(3)
    expect(last).toMatchObject({
      status: 'ran',
      slot,
      result: { built: { [SAFE_ACCOUNT.appid]: 0, [PLAIN_ACCOUNT.appid]: 1 } },
    })
    expect(await figures()).toEqual(expected)
  })

  it('counts the invite funnel and the K-factor of a day', async () => {
    const chat = wx()
    at.now = dayAt(5, 9)
    // the inviter fetches their invite (the QR needs the WeChat API: the code and share suffice)
    await chat.text(o('inviter'), '你好')
    const inviter = await get()
      .db.selectFrom('members')
      .selectAll()
      .where('openid', '=', o('inviter'))
      .executeTakeFirstOrThrow()
    const code = await inviteCode(get().db, inviter, at.now)
    await recordShare(get().db, { member: inviter, now: at.now, timeZone: TZ })
    at.now = dayAt(5, 10)
    await chat.event(o('friend1'), 'subscribe', { EventKey: `qrscene_inv_${code}` })
    await chat.event(o('friend2'), 'subscribe', { EventKey: `qrscene_inv_${code}` })
    await chat.text(o('friend1'), '签到') // qualifies the invite
    const d = await computeDay(get().db, {
      appid: SAFE_ACCOUNT.appid,
      day: dayName(5),
      timeZone: TZ,
    })
    expect(figure(d, 'invites.sharers')).toBe(1)
    expect(figure(d, 'invites.follows')).toBe(2)
    expect(figure(d, 'invites.attributed')).toBe(2)
    expect(figure(d, 'invites.qualified')).toBe(1)
    const dau = figure(d, 'activity.dau')
    expect(dau).toBe(3)
    expect(figure(d, 'invites.share_rate')).toBeCloseTo(1 / 3, 10)
    expect(figure(d, 'invites.per_sharer')).toBe(2)
    expect(figure(d, 'invites.conversion')).toBe(0.5)
    // K = i × conv × c = 2 × 0.5 × 1/3
    expect(figure(d, 'invites.k_factor')).toBeCloseTo(1 / 3, 10)
  })

  it('serves the retention triangle and the fitted curves, and refuses bad queries', async () => {
    at.now = dayAt(6, 10)
    // the nightly job built days 0–2 and their cohort cells (test above)
    const cohorts = await admin(
      'GET',
      `/cohorts?grain=day&from=${dayName(0)}&to=${dayName(0)}&maxAge=2`,
    )
    expect(cohorts.status).toBe(200)
    // a, b and c followed on day 0; on day 1 a and c were active (b left)
    expect(cohorts.json.cohorts[0]).toMatchObject({ start: dayName(0), size: 3 })
    expect(cohorts.json.cohorts[0].retained.slice(0, 2)).toEqual([3, 2])
    expect((await admin('GET', '/cohorts?maxAge=999')).status).toBe(400)
    expect((await admin('GET', '/cohorts?segment=nobody')).status).toBe(400)
    expect((await admin('GET', '/cohorts?source=invite&grain=week')).status).toBe(200)
    const fits = await admin('GET', `/fits?from=${dayName(0)}&to=${dayName(2)}`)
    expect(fits.status).toBe(200)
    expect(fits.json.growth.series).toBe('followers.total')
    expect((await admin('GET', '/fits?horizon=-1')).status).toBe(400)
  })
})
