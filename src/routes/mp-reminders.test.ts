import { afterAll, beforeAll, expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { testConfig } from '../../test/server.js'
import { startShopServer } from '../../test/shop-server.js'
import { type SandboxApi, startSandboxApi } from '../sandbox/wechat-api-server.js'

const TEMPLATE = 'mp_remind_tpl'

forEachDatabase('the check-in reminder in the mini program (/api/mp/reminders)', (get) => {
  let wx: SandboxApi
  let app: Awaited<ReturnType<typeof startShopServer>>
  const clock = { now: () => new Date('2026-12-03T10:00:00+08:00') }

  beforeAll(async () => {
    wx = await startSandboxApi()
    app = await startShopServer(get().db, wx.url, {
      config: testConfig({ CHECKIN_REMINDER_MP_TEMPLATE_ID: TEMPLATE }),
      clock,
    })
  })
  afterAll(async () => {
    await app.close()
    await wx.close()
  })

  const api = async (method: string, token: string | undefined, body?: unknown) => {
    const res = await fetch(`${app.url}/api/mp/reminders`, {
      method,
      headers: {
        'content-type': 'application/json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    // biome-ignore lint/suspicious/noExplicitAny: response JSON, checked by the assertions
    return { status: res.status, json: (await res.json()) as Record<string, any> }
  }
  const login = async (openid: string) => {
    const res = await fetch(`${app.url}/api/mp/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code: wx.loginCode(app.shop.settings.mpAppid, openid) }),
    })
    return ((await res.json()) as { token: string }).token
  }

  it('records the authorisation, sets the time, refuses bad input, turns it off', async () => {
    expect((await api('GET', undefined)).status).toBe(401)
    const openid = `o_mp_remind_${Math.random().toString(36).slice(2, 8)}`
    const token = await login(openid)
    expect(await api('GET', token)).toEqual({
      status: 200,
      json: { reminder: null, templateId: TEMPLATE },
    })
    // bad input changes nothing
    for (const body of [
      { result: { [TEMPLATE]: 'maybe' } },
      { result: { other: 'accept' } },
      { result: { [TEMPLATE]: 'accept' }, time: '8pm' },
      { result: { [TEMPLATE]: 'reject' }, time: '23:30' }, // quiet hours, nothing granted
      { result: { [TEMPLATE]: 'accept' }, extra: 1 },
    ]) {
      const res = await api('POST', token, body)
      expect(res.status).toBe(400)
      expect(typeof res.json.message).toBe('string')
    }
    expect((await api('GET', token)).json.reminder).toBeNull()

    const accepted = await api('POST', token, { result: { [TEMPLATE]: 'accept' }, time: '21:15' })
    expect(accepted).toEqual({ status: 200, json: { reminder: { enabled: true, time: '21:15' } } })
    const row = await get()
      .db.selectFrom('checkin_reminders')
      .select(['mp_openid', 'mp_template_id', 'mp_credits', 'minute_of_day'])
      .where('mp_openid', '=', openid)
      .executeTakeFirstOrThrow()
    expect(row).toEqual({
      mp_openid: openid,
      mp_template_id: TEMPLATE,
      mp_credits: 1,
      minute_of_day: 21 * 60 + 15,
    })
    expect((await api('DELETE', token)).json.reminder).toEqual({ enabled: false, time: '21:15' })
    await api('POST', token, { result: { [TEMPLATE]: 'reject' } })
    expect(
      await get()
        .db.selectFrom('checkin_reminders')
        .select('mp_credits')
        .where('mp_openid', '=', openid)
        .executeTakeFirstOrThrow(),
    ).toEqual({ mp_credits: 0 })
  })

  it('keeps the send the member accepted when the time is refused for quiet hours', async () => {
    const openid = `o_mp_quiet_${Math.random().toString(36).slice(2, 8)}`
    const token = await login(openid)
    const row = () =>
      get()
        .db.selectFrom('checkin_reminders')
        .select(['enabled', 'minute_of_day', 'mp_credits', 'mp_openid', 'mp_template_id'])
        .where('mp_openid', '=', openid)
        .executeTakeFirst()
    // accepted in wx.requestSubscribeMessage, with a time inside 22:00–08:00: the schedule is
    // refused and the client told why; the one send WeChat now allows is kept, the reminder off
    const quiet = await api('POST', token, { result: { [TEMPLATE]: 'accept' }, time: '23:30' })
    expect([quiet.status, quiet.json.code]).toEqual([400, 'QUIET_HOURS'])
    expect(await row()).toEqual({
      enabled: false,
      minute_of_day: 20 * 60,
      mp_credits: 1,
      mp_openid: openid,
      mp_template_id: TEMPLATE,
    })
    expect(quiet).toEqual({
      status: 400,
      json: {
        code: 'QUIET_HOURS',
        message:
          '22:00–08:00 are quiet hours: pick another time (the accepted subscription is kept)',
        quietHours: { from: '22:00', to: '08:00' },
        reminder: { enabled: false, time: '20:00' },
      },
    })
    // the member picks another time (and accepts again: another send)
    const set = await api('POST', token, { result: { [TEMPLATE]: 'accept' }, time: '21:00' })
    expect(set).toEqual({ status: 200, json: { reminder: { enabled: true, time: '21:00' } } })
    expect(await row()).toMatchObject({ enabled: true, minute_of_day: 21 * 60, mp_credits: 2 })
    // a reminder on stays as it was: only the accepted send is added
    const again = await api('POST', token, { result: { [TEMPLATE]: 'accept' }, time: '07:59' })
    expect(again.status).toBe(400)
    expect(again.json.reminder).toEqual({ enabled: true, time: '21:00' })
    expect(await row()).toMatchObject({ enabled: true, minute_of_day: 21 * 60, mp_credits: 3 })
    // a refusal with a refused time changes nothing
    const refused = await api('POST', token, { result: { [TEMPLATE]: 'reject' }, time: '23:00' })
    expect([refused.status, refused.json.code]).toEqual([400, 'QUIET_HOURS'])
    expect(refused.json.message).toBe('22:00–08:00 are quiet hours: pick another time')
    expect(await row()).toMatchObject({ enabled: true, minute_of_day: 21 * 60, mp_credits: 3 })
  })

  it('the sandbox answers the mini program’s subscribe/send in the documented format', async () => {
    const appid = app.shop.settings.mpAppid
    const token = (await (
      await fetch(`${wx.url}/cgi-bin/token?grant_type=client_credential&appid=${appid}&secret=s`)
    ).json()) as { access_token: string }
    const send = async (body: Record<string, unknown>) =>
      (await (
        await fetch(`${wx.url}/cgi-bin/message/subscribe/send?access_token=${token.access_token}`, {
          method: 'POST',
          body: JSON.stringify(body),
        })
      ).json()) as Record<string, unknown>
    const data = { thing1: { value: '今天还没签到' } }
    expect(
      await send({ touser: 'o_mp_sub', template_id: TEMPLATE, page: 'pages/index', data }),
    ).toEqual({ errcode: 0, errmsg: 'ok', msgid: expect.any(Number) })
    expect(wx.sent.at(-1)).toMatchObject({ method: 'mp.subscribe.send', appid, touser: 'o_mp_sub' })
    expect(await send({ touser: 'invalid_x', template_id: TEMPLATE, data })).toMatchObject({
      errcode: 40003,
    })
    expect(await send({ touser: 'o_mp_sub', template_id: TEMPLATE })).toMatchObject({
      errcode: 47003,
    })
    wx.setUser('o_mp_refused', { subscribe: true, refused: [TEMPLATE] })
    expect(await send({ touser: 'o_mp_refused', template_id: TEMPLATE, data })).toMatchObject({
      errcode: 43101,
    })
  })
})
