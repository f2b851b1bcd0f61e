import { afterAll, beforeAll, expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { SAFE_ACCOUNT, startServer, type TestServer } from '../../test/server.js'
import { createPusher } from '../sandbox/pusher.js'
import { buildDay, computeDay, type DailyFigure } from './rollup.js'

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
    server = await startServer(get().db, { clock })
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
    const kinds = await db
      .selectFrom('member_days')
      .innerJoin('members', 'members.id', 'member_days.member_id')
      .select('kinds')
      .where('members.openid', '=', o('a'))
      .where('member_days.day', '=', dayName(0))
      .executeTakeFirstOrThrow()
    expect(kinds.kinds & 2).toBe(2)
    expect(kinds.kinds & 1).toBe(1)
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
})
