import { afterAll, beforeAll, expect, it } from 'vitest'
import { createRouter } from '../../handlers/index.js'
import { forEachDatabase } from '../../test/databases.js'
import { SAFE_ACCOUNT, startServer, type TestServer, testConfig } from '../../test/server.js'
import { loadVector } from '../../test/vectors.js'
import { seedModerators } from '../community/moderation.js'
import { createLogger } from '../logger.js'
import { signBridgeRequest } from '../routes/bridge.js'
import { createPusher } from '../sandbox/pusher.js'
import { type SandboxApi, startSandboxApi } from '../sandbox/wechat-api-server.js'
import { aibotPusher } from '../sandbox/wecom-pusher.js'
import { text } from '../wechat/reply.js'

const vector = loadVector('wechat-crypto.json', 'aibot-decrypt-generated')
const TOKEN = vector.inputs.token!
const AES_KEY = vector.inputs.encodingAESKey!
const SECRET = 'bridge-shared-secret-0123456789'
const bytes = (s: string) => new TextEncoder().encode(s).length
const marker = '…（内容太长，后面的没有显示）'
/** Lines of 「n. 第 n 项 🎁 奖品」: `count` of them. */
const lines = (count: number) =>
  Array.from({ length: count }, (_, i) => `${i + 1}. 第 ${i + 1} 项 🎁 奖品`).join('\n')
/** ~3 KB: over WeChat's 2048 bytes, well under the AI bot's 20480. */
const medium = lines(100)
/** ~27 KB: over the AI bot's 20480 bytes too. */
const huge = lines(900)

let wecom: SandboxApi
beforeAll(async () => {
  wecom = await startSandboxApi()
})
afterAll(() => wecom.close())

forEachDatabase('the byte limit of every group reply and announcement', (get, dbName) => {
  let server: TestServer
  const logged: { level: string; code?: string; handler?: string; maxBytes?: number }[] = []
  const router = createRouter()
    .command({ names: ['中长'], description: 'command.help' }, () => text(medium))
    .command({ names: ['超长'], description: 'command.help' }, () => text(huge))
  const robotKey = `robotkey-budget-${dbName}`
  beforeAll(async () => {
    server = await startServer(get().db, {
      router,
      config: testConfig({
        WECOM_AIBOT_TOKEN: TOKEN,
        WECOM_AIBOT_AES_KEY: AES_KEY,
        WECOM_API_BASE: wecom.url,
        WECOM_GROUP_ROBOTS: JSON.stringify({ CHAT1: robotKey }),
        BRIDGES: JSON.stringify({ home: SECRET }),
      }),
      logger: createLogger({ level: 'warn', write: (line) => logged.push(JSON.parse(line)) }),
    })
    await seedModerators(get().db, [{ channel: 'wecom_aibot', id: `mod_${dbName}`, chat: 'CHAT1' }])
  })
  afterAll(() => server.close())

  const oa = () => createPusher({ url: `${server.url}/wechat`, account: SAFE_ACCOUNT })
  const bindingCode = async (openid: string) =>
    /绑定码：(\d{6})/.exec((await oa().text(openid, '绑定')).reply!.Content as string)![1]!
  const aibot = () =>
    aibotPusher({ url: `${server.url}/wecom/aibot`, token: TOKEN, aesKey: AES_KEY })
  const inGroup = async (userid: string, content: string) =>
    (await aibot().say(userid, content, { chatId: 'CHAT1' })).reply!.stream.content
  const bridgeSay = async (sender: string, said: string) => {
    const body = JSON.stringify({
      type: 'message',
      id: `m-${Math.random()}`,
      chat: { id: 'room1' },
      sender: { id: sender },
      text: `@圈子助手 ${said}`,
      mentioned: true,
    })
    const timestamp = String(Math.floor(Date.now() / 1000))
    const nonce = `n-${Math.random().toString(36).slice(2)}`
    const res = await fetch(`${server.url}/bridge/home`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-bridge-timestamp': timestamp,
        'x-bridge-nonce': nonce,
        'x-bridge-signature': await signBridgeRequest(SECRET, { timestamp, nonce, body }),
      },
      body,
    })
    expect(res.status).toBe(200)
    return ((await res.json()) as { reply: string }).reply
  }

  it('cuts an AI bot answer at its 20480 bytes, not at WeChat’s 2048', async () => {
    const userid = `budget_${dbName}`
    const code = await bindingCode(`o_budget_aibot_${dbName}`)
    expect(await inGroup(userid, `绑定 ${code}`)).toMatch(/^绑定成功/)

    expect(await inGroup(userid, '中长')).toBe(medium) // fits the stream: not cut
    expect(bytes(huge)).toBeGreaterThan(20480)
    const cut = await inGroup(userid, '超长')
    expect(bytes(cut)).toBeLessThanOrEqual(20480)
    expect(bytes(cut)).toBeGreaterThan(20000)
    const shown = cut.split('\n')
    expect(shown.at(-1)).toBe(marker)
    expect(shown.slice(0, -1)).toEqual(huge.split('\n').slice(0, shown.length - 1))
    expect(logged).toContainEqual(
      expect.objectContaining({ code: 'REPLY_TOO_LONG', handler: '超长', maxBytes: 20480 }),
    )
  })

  it('cuts a bridge reply at WeChat’s 2048-byte text limit', async () => {
    const contact = `wxid_budget_${dbName}`
    const code = await bindingCode(`o_budget_bridge_${dbName}`)
    expect(await bridgeSay(contact, `绑定 ${code}`)).toMatch(/^绑定成功/)

    const reply = await bridgeSay(contact, '中长')
    expect(bytes(medium)).toBeGreaterThan(2048)
    expect(bytes(reply)).toBeLessThanOrEqual(2047)
    const shown = reply.split('\n')
    expect(shown.at(-1)).toBe(marker)
    expect(shown.slice(0, -1)).toEqual(medium.split('\n').slice(0, shown.length - 1))
    expect(logged).toContainEqual(
      expect.objectContaining({ code: 'REPLY_TOO_LONG', handler: '中长', maxBytes: 2047 }),
    )
  })

  it('refuses a 公告 past 2048 bytes: nothing posted to the robot, nothing queued', async () => {
    const db = get().db
    const mod = `mod_${dbName}`
    const code = await bindingCode(`o_budget_mod_${dbName}`)
    expect(await inGroup(mod, `绑定 ${code}`)).toMatch(/^绑定成功/)
    const posts = () => wecom.sent.filter((s) => s.method === 'webhook.send').length
    const queued = async () =>
      (
        await db
          .selectFrom('push_outbox')
          .select('source')
          .where('source', 'like', 'announce:%')
          .execute()
      ).length
    const before = posts()

    const long = `${'公'.repeat(700)}`
    const refused = await inGroup(mod, `公告 ${long}`)
    expect(refused).toBe(
      '公告太长（2100 字节），没有发出：微信一条消息最多放 2033 字节（约 677 个汉字），请删减后再发。',
    )
    expect(posts()).toBe(before)
    expect(await queued()).toBe(0)
    expect(await db.selectFrom('robot_posts').selectAll().execute()).toEqual([])

    // exactly at the limit: sent whole («📢 公告：» + 2033 bytes = 2047)
    const fits = `${'公'.repeat(677)}ab`
    expect(await inGroup(mod, `公告 ${fits}`)).toMatch(/^公告已发出：1 个群/)
    const posted = wecom.sent.filter((s) => s.method === 'webhook.send').at(-1)!
    expect(posted.body.text).toEqual({ content: `📢 公告：${fits}` })
    expect(bytes(`📢 公告：${fits}`)).toBe(2047)
    expect(await queued()).toBeGreaterThan(0) // the group's linked followers
  })
})
