import { expect, it } from 'vitest'
import { createRouter } from '../../handlers/index.js'
import { forEachDatabase } from '../../test/databases.js'
import { SAFE_ACCOUNT, startServer, testConfig } from '../../test/server.js'
import { createApp } from '../app.js'
import { translator } from '../bot/i18n.js'
import { silentLogger } from '../logger.js'
import { createPusher } from '../sandbox/pusher.js'
import { startSandboxApi } from '../sandbox/wechat-api-server.js'
import {
  cancelSignup,
  ensureDefaultActivities,
  periodOf,
  sendActivityReminders,
  signUp,
} from './activities.js'

const TZ = 'Asia/Shanghai'
const TOKEN = 'activity-operator-token'

it('finds the occurrence of each cadence', () => {
  const at = new Date('2026-11-26T16:30:00Z') // Friday 27 Nov, 00:30 in Shanghai
  expect(periodOf('daily', at, TZ)).toBe('2026-11-27')
  expect(periodOf('weekly', at, TZ)).toBe('2026-11-23')
  expect(periodOf('monthly', at, TZ)).toBe('2026-11-01')
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
    const shareQueued = await sendActivityReminders(get().db, { now: friday, timeZone: TZ, t })
    expect(shareQueued).toBeGreaterThanOrEqual(1)
    const notice = await get()
      .db.selectFrom('push_outbox')
      .select(['openid', 'payload'])
      .where('source', 'like', 'activity:%')
      .where('openid', '=', buyer!.openid)
      .executeTakeFirstOrThrow()
    expect(JSON.parse(notice.payload).text.content).toMatch(/^⏰ 好物分享/)
    expect(await sendActivityReminders(get().db, { now: friday, timeZone: TZ, t })).toBe(0) // once per slot
    // with group robots configured, the reminder is announced in the groups too
    const wecom = await startSandboxApi()
    try {
      const robots = {
        keys: { [`chat-${dbName}`]: `activity-robot-${dbName}` },
        baseUrl: wecom.url,
      }
      const saturday = new Date('2026-11-28T02:00:00Z') // 10:00, the salon's reminder
      await sendActivityReminders(get().db, { now: saturday, timeZone: TZ, t, robots })
      expect(
        wecom.sent.filter((s) => s.appid === `activity-robot-${dbName}`).length,
      ).toBeGreaterThanOrEqual(1)
    } finally {
      await wecom.close()
    }
    // 09:00: the check-in reminder goes to recent members who have not checked in
    const nine = new Date('2026-11-25T01:00:00Z')
    await sendActivityReminders(get().db, { now: nine, timeZone: TZ, t })
    const reminded = await get()
      .db.selectFrom('push_outbox')
      .select('openid')
      .where('source', 'like', 'activity:%:2026-11-25T01:00:00.000Z')
      .execute()
    expect(reminded.map((r) => r.openid)).toContain(browser!.openid)
  })

  it('signs up through the OA chat', async () => {
    const server = await startServer(get().db, { clock: { now: () => new Date() } })
    try {
      const chat = createPusher({ url: `${server.url}/wechat`, account: SAFE_ACCOUNT })
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
