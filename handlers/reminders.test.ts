import { afterAll, beforeAll, expect, it } from 'vitest'
import { checkinRemindersJob } from '../jobs/checkin-reminders.js'
import { silentLogger } from '../src/logger.js'
import { createPusher } from '../src/sandbox/pusher.js'
import { forEachDatabase } from '../test/databases.js'
import { SAFE_ACCOUNT, startServer, type TestServer, testConfig } from '../test/server.js'

const TEMPLATE = 'oa_remind_tpl'
// The clock is fixed on a day; the pushes are stamped with the real time.
const config = testConfig({ CHECKIN_REMINDER_TEMPLATE_ID: TEMPLATE, WECHAT_MAX_SKEW_SECONDS: '0' })

forEachDatabase('提醒 / 取消提醒 and the reminder template through the OA chat', (get) => {
  let server: TestServer
  const now = { at: new Date('2026-12-03T10:00:00+08:00') }
  const clock = { now: () => now.at }
  beforeAll(async () => {
    server = await startServer(get().db, { config, clock })
  })
  afterAll(() => server.close())

  const reminder = (openid: string) =>
    get()
      .db.selectFrom('checkin_reminders')
      .innerJoin('members', 'members.id', 'checkin_reminders.member_id')
      .select(['enabled', 'minute_of_day', 'oa_credits', 'oa_template_id'])
      .where('members.openid', '=', openid)
      .executeTakeFirst()

  it('turns the reminder on, sets its time, refuses bad and quiet times, turns it off', async () => {
    const wx = createPusher({ url: `${server.url}/wechat`, account: SAFE_ACCOUNT })
    const on = (await wx.text('o_remind', '提醒')).reply!.Content as string
    expect(on).toMatch(/^已开启签到提醒 ⏰ 每天 20:00 如果你还没签到/)
    expect(on).toContain('取消提醒')
    expect((await wx.text('o_remind', '提醒 20:30')).reply!.Content).toContain('每天 20:30')
    expect(await reminder('o_remind')).toMatchObject({ enabled: true, minute_of_day: 1230 })
    expect((await wx.text('o_remind', '提醒 25:00')).reply!.Content).toBe(
      '时间看不懂：请发送「提醒 20:30」这样的 24 小时制时间。',
    )
    expect((await wx.text('o_remind', '提醒 23:00')).reply!.Content).toBe(
      '22:00–08:00 是免打扰时段，这段时间不会发提醒，请换一个时间。',
    )
    expect(await reminder('o_remind')).toMatchObject({ minute_of_day: 1230 })

    // at 20:30 the job enqueues one customer-service reminder (the member wrote today)
    now.at = new Date('2026-12-03T20:30:00+08:00')
    const run = () =>
      checkinRemindersJob.run({ db: get().db, clock, logger: silentLogger, config, slot: now.at })
    expect(await run()).toEqual({ decided: 1, custom: 1, subscribe: 0, mpSubscribe: 0 })
    expect(await run()).toEqual({ decided: 0, custom: 0, subscribe: 0, mpSubscribe: 0 })

    expect((await wx.text('o_remind', '取消提醒')).reply!.Content).toBe(
      '已关闭签到提醒。想再开启，回复「提醒」。',
    )
    // not on: 提醒 would turn it on at the time chosen before, so that is the time it names
    expect((await wx.text('o_remind', 'unremind')).reply!.Content).toBe(
      '你还没有开启签到提醒。回复「提醒」开启，每天 20:30 提醒你签到。',
    )
    expect(await reminder('o_remind')).toMatchObject({ enabled: false })
    // a time given again keeps the one chosen before when none is given
    expect((await wx.text('o_remind', 'remind')).reply!.Content).toContain('每天 20:30')
  })

  it('取消提醒 from a member who never turned reminders on is kept: the 09:00 one stops too', async () => {
    now.at = new Date('2026-12-03T10:00:00+08:00')
    const wx = createPusher({ url: `${server.url}/wechat`, account: SAFE_ACCOUNT })
    expect((await wx.text('o_never_reminded', '取消提醒')).reply!.Content).toBe(
      '已关闭签到提醒。想再开启，回复「提醒」。',
    )
    // off, at the time 提醒 would choose: the activity's check-in reminder skips the member
    expect(await reminder('o_never_reminded')).toMatchObject({
      enabled: false,
      minute_of_day: 1200,
    })
    expect((await wx.text('o_never_reminded', '取消提醒')).reply!.Content).toBe(
      '你还没有开启签到提醒。回复「提醒」开启，每天 20:00 提醒你签到。',
    )
  })

  it('an accepted reminder template turns it on with one send; a reject takes it back', async () => {
    now.at = new Date('2026-12-03T10:00:00+08:00')
    const wx = createPusher({ url: `${server.url}/wechat`, account: SAFE_ACCOUNT })
    // events are de-duplicated per sender and second (CreateTime): each gets its own second
    let second = Math.floor(Date.now() / 1000) - 100
    const popup = (templateId: string, status: string) =>
      wx.event('o_remind_sub', 'subscribe_msg_popup_event', {
        CreateTime: ++second,
        SubscribeMsgPopupEvent: {
          List: { TemplateId: templateId, SubscribeStatusString: status, PopupScene: '2' },
        },
      })
    await popup('another_template', 'accept')
    expect(await reminder('o_remind_sub')).toBeUndefined()
    await popup(TEMPLATE, 'accept')
    await popup(TEMPLATE, 'accept')
    expect(await reminder('o_remind_sub')).toEqual({
      enabled: true,
      minute_of_day: 1200,
      oa_credits: 2,
      oa_template_id: TEMPLATE,
    })
    await popup(TEMPLATE, 'reject')
    expect(await reminder('o_remind_sub')).toMatchObject({ enabled: true, oa_credits: 0 })
  })
})
