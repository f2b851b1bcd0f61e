/**
 * The sandbox WeChat API's customer-service windows (protocol §6.3): a member's message opens
 * 48 h with 5 messages; a follow, a parametric-QR scan or a menu click (click, scancode_push,
 * scancode_waitmsg) 1 minute with 3; WeChat counts them apart (45015 outside, 45047 over).
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { type SandboxApi, startSandboxApi } from './wechat-api-server.js'

const SECRET = 'sandbox-window-secret'
const APPID = 'wx00000000000000f7'
let now = Date.parse('2026-11-24T02:00:00Z')
let wx: SandboxApi
let token: string
beforeAll(async () => {
  wx = await startSandboxApi({ secret: SECRET, now: () => now })
  const res = await fetch(`${wx.url}/cgi-bin/stable_token`, {
    method: 'POST',
    body: JSON.stringify({ grant_type: 'client_credential', appid: APPID, secret: SECRET }),
  })
  token = ((await res.json()) as { access_token: string }).access_token
})
afterAll(() => wx.close())

/** Sends `count` customer-service texts to `openid`; the errcodes WeChat answered, in order. */
async function send(openid: string, count = 1): Promise<number[]> {
  const codes: number[] = []
  for (let i = 0; i < count; i++) {
    const res = await fetch(`${wx.url}/cgi-bin/message/custom/send?access_token=${token}`, {
      method: 'POST',
      body: JSON.stringify({ touser: openid, msgtype: 'text', text: { content: `m${i}` } }),
    })
    codes.push(((await res.json()) as { errcode: number }).errcode)
  }
  return codes
}

it("takes 3 customer-service messages in a follow's, scan's or click's minute, then none", async () => {
  for (const event of ['subscribe', 'SCAN', 'CLICK', 'scancode_push', 'scancode_waitmsg']) {
    const openid = `o_event_${event}`
    wx.userAction(openid, event)
    expect(await send(openid, 4), event).toEqual([0, 0, 0, 45047])
    now += 60_000 // the minute is over
    expect(await send(openid), event).toEqual([45015])
  }
})

it('opens no window for a menu link or a location report', async () => {
  for (const event of ['VIEW', 'LOCATION']) {
    wx.userAction(`o_none_${event}`, event)
    expect(await send(`o_none_${event}`), event).toEqual([45015])
  }
})

it("closes a message's window 48 hours after it", async () => {
  wx.setUser('o_wrote', { subscribe: true, windowOpen: true }) // the member writes now
  expect(await send('o_wrote')).toEqual([0])
  now += 48 * 3_600_000
  expect(await send('o_wrote')).toEqual([45015])
})

it("counts a message's 48 hours and an event's minute apart", async () => {
  wx.userAction('o_both', 'message')
  now += 3_600_000
  wx.userAction('o_both', 'CLICK')
  // the message's 5, then the click's 3
  expect(await send('o_both', 9)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 45047])
  now += 60_000
  expect(await send('o_both')).toEqual([45047]) // the message window is open, its 5 are used
  now += 47 * 3_600_000
  expect(await send('o_both')).toEqual([45015])
  // a new message: a new window with its own 5
  wx.setUser('o_both', { windowOpen: true })
  expect(await send('o_both', 6)).toEqual([0, 0, 0, 0, 0, 45047])
})
