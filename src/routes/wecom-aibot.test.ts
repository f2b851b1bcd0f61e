import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { createRouter } from '../../handlers/index.js'
import { forEachDatabase } from '../../test/databases.js'
import { startServer, type TestServer, testConfig } from '../../test/server.js'
import { loadVector } from '../../test/vectors.js'
import { sleep } from '../clock.js'
import { seedModerators } from '../community/moderation.js'
import { type SandboxApi, startSandboxApi } from '../sandbox/wechat-api-server.js'
import { aibotPusher } from '../sandbox/wecom-pusher.js'
import { messageCipher, signature } from '../wechat/crypto.js'
import { text } from '../wechat/reply.js'

const vector = loadVector('wechat-crypto.json', 'aibot-decrypt-generated')
const TOKEN = vector.inputs.token!
const AES_KEY = vector.inputs.encodingAESKey!
const cipher = messageCipher(AES_KEY)

let wecom: SandboxApi
beforeAll(async () => {
  wecom = await startSandboxApi()
})
afterAll(() => wecom.close())

forEachDatabase('the WeCom AI bot channel', (get, dbName) => {
  let server: TestServer
  // One community day and week for the suite (a Wednesday, 12:00 Asia/Shanghai): the ranking is
  // the week's points, and on the real clock a Monday 00:00 between the OA 绑定 (daily_login +10)
  // and the group 签到 left the week with 5. Servers, OA pushes and AI bot callbacks (whose
  // timestamps are checked against the server's clock) all read it.
  const clock = { now: () => new Date('2026-11-18T04:00:00Z') }
  beforeAll(async () => {
    server = await startServer(get().db, {
      clock,
      config: testConfig({
        WECOM_AIBOT_TOKEN: TOKEN,
        WECOM_AIBOT_AES_KEY: AES_KEY,
        WECOM_API_BASE: wecom.url,
        WECOM_GROUP_ROBOTS: JSON.stringify({ CHAT1: `robotkey-${dbName}` }),
      }),
    })
    await seedModerators(get().db, [
      { channel: 'wecom_aibot', id: `mod_${dbName}`, chat: 'CHAT1' },
      { channel: 'oa', id: `o_mod_${dbName}` },
    ])
  })
  afterAll(() => server.close())

  const pusher = () =>
    aibotPusher({
      url: `${server.url}/wecom/aibot`,
      token: TOKEN,
      aesKey: AES_KEY,
      now: () => clock.now().getTime(),
    })
  const callback = (message: Record<string, unknown>, o: { badSignature?: boolean } = {}) =>
    pusher().post(message, o.badSignature)
  async function send(q: Record<string, string>, body: unknown, base = server.url) {
    const res = await fetch(`${base}/wecom/aibot?${new URLSearchParams(q)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })
    const text = await res.text()
    if (res.status !== 200 || !text) return { status: res.status, text, reply: null }
    const envelope = JSON.parse(text) as {
      encrypt: string
      msgsignature: string
      timestamp: number
      nonce: string
    }
    expect(envelope.nonce).toBe(q.nonce) // the callback's nonce, as WeCom wants
    expect(envelope.msgsignature).toBe(
      await signature([TOKEN, String(envelope.timestamp), envelope.nonce, envelope.encrypt]),
    )
    const opened = await cipher.decrypt(envelope.encrypt)
    expect(opened.receiveId).toBe('')
    return {
      status: 200,
      text,
      reply: JSON.parse(opened.message) as {
        msgtype: string
        stream: { finish: boolean; content: string }
      },
    }
  }
  const group = (userid: string, content: string, msgid?: string) =>
    pusher().say(userid, content, { chatId: 'CHAT1', msgid })

  it('opens the known-answer callback at its own time and asks an unknown sender to bind first', async () => {
    const { inputs } = vector
    const q = {
      msg_signature: inputs.msg_signature!,
      timestamp: inputs.timestamp!,
      nonce: inputs.nonce!,
    }
    // Now, the vector's timestamp is long past: refused like a stale OA push.
    expect((await send(q, { encrypt: inputs.encrypt })).status).toBe(401)
    const then = await startServer(get().db, {
      config: testConfig({ WECOM_AIBOT_TOKEN: TOKEN, WECOM_AIBOT_AES_KEY: AES_KEY }),
      clock: { now: () => new Date(Number(inputs.timestamp) * 1000 + 60_000) },
    })
    try {
      const r = await send(q, { encrypt: inputs.encrypt }, then.url)
      expect(r.reply?.stream).toMatchObject({
        finish: true,
        content: expect.stringMatching(/^还不认识你哦/),
      })
    } finally {
      await then.close()
    }
  })

  it('verifies the URL with an encrypted echostr and refuses bad signatures and bodies', async () => {
    const echostr = await cipher.encrypt('echo-1234567890', '')
    const timestamp = String(Math.floor(clock.now().getTime() / 1000))
    const nonce = 'n1'
    const sig = await signature([TOKEN, timestamp, nonce, echostr])
    const ok = await fetch(
      `${server.url}/wecom/aibot?${new URLSearchParams({ msg_signature: sig, timestamp, nonce, echostr })}`,
    )
    expect(ok.status).toBe(200)
    expect(await ok.text()).toBe('echo-1234567890')
    const bad = await fetch(
      `${server.url}/wecom/aibot?${new URLSearchParams({ msg_signature: sig, timestamp, nonce: 'n2', echostr })}`,
    )
    expect(bad.status).toBe(401)
    expect(
      (await group('u1', '签到').then(() => callback({ msgid: 'x' }, { badSignature: true })))
        .status,
    ).toBe(401)
    expect(
      (await send({ msg_signature: '0'.repeat(40), timestamp, nonce: 'n' }, 'not json')).status,
    ).toBe(400)
  })

  it('refuses a signed message whose fields are not the documented types, or hold NUL, with 400, claiming nothing', async () => {
    const count = async () => ({
      events: (
        await get()
          .db.selectFrom('inbound_events')
          .select((eb) => eb.fn.countAll<string>().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
      replays: (
        await get()
          .db.selectFrom('replay_claims')
          .select((eb) => eb.fn.countAll<string>().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    })
    const message = (msgid: string) => ({
      msgid,
      aibotid: 'AIBOT1',
      chatid: 'CHAT1',
      chattype: 'group',
      from: { userid: `typed_${dbName}` },
      msgtype: 'text',
      text: { content: '@圈子助手 签到' },
    })
    const cases: [string, (m: ReturnType<typeof message>) => Record<string, unknown>][] = [
      ['text.content', (m) => ({ ...m, text: { content: 123 } })],
      ['text.content', (m) => ({ ...m, text: { content: [] } })],
      ['text', (m) => ({ ...m, text: null })],
      ['msgid', (m) => ({ ...m, msgid: `${m.msgid}\u0000` })],
      ['aibotid', (m) => ({ ...m, aibotid: 'AIBOT\u00001' })],
      ['from.userid', (m) => ({ ...m, from: { userid: 'u\u0000' } })],
      ['chatid', (m) => ({ ...m, chatid: 'CHAT\u00001' })],
      ['text.content', (m) => ({ ...m, text: { content: '签到\u0000' } })],
      ['mixed.msg_item', (m) => ({ ...m, msgtype: 'mixed', mixed: { msg_item: 'x' } })],
      ['event.eventtype', (m) => ({ ...m, msgtype: 'event', event: { eventtype: 7 } })],
    ]
    const before = await count()
    for (const [i, [field, patch]] of cases.entries()) {
      const r = await callback(patch(message(`typed-${dbName}-${i}`)))
      expect({ field, status: r.status }).toEqual({ field, status: 400 })
      expect(JSON.parse(r.text)).toMatchObject({
        code: 'BAD_REQUEST',
        message: expect.stringContaining(field),
      })
    }
    expect(await count()).toEqual(before)
    // Nothing was claimed: the well-formed message under the same msgid is answered.
    const ok = await callback(message(`typed-${dbName}-0`))
    expect(ok.status).toBe(200)
    expect(ok.reply!.stream.content).toMatch(/^还不认识你哦/)
  })

  it('welcomes a user who opens the single chat (enter_chat) with a text reply, as WeCom takes a welcome', async () => {
    const r = await callback({
      msgid: `enter-${dbName}`,
      create_time: Math.floor(clock.now().getTime() / 1000),
      aibotid: 'AIBOT1',
      chattype: 'single',
      from: { userid: `enter_${dbName}` },
      msgtype: 'event',
      event: { eventtype: 'enter_chat' },
    })
    // wecom-groups.md §2.4: the welcome is `text` or `template_card`, not a stream
    expect(r.reply).toEqual({
      msgtype: 'text',
      text: { content: expect.stringMatching(/^你好！我是圈子小助手。/) },
    })
  })

  it('links a WeCom user with a code from the OA chat, then checks in from the group once per msgid', async () => {
    const userid = `zhangsan_${dbName}`
    const oa = server.pusher()
    const codeReply = (await oa.text(`o_group_${dbName}`, '绑定')).reply!.Content as string
    const code = /绑定码：(\d{6})/.exec(codeReply)![1]!
    expect((await group(userid, '签到')).reply!.stream.content).toMatch(/^还不认识你哦/)
    expect((await group(userid, '绑定 000000')).reply!.stream.content).toMatch(/^绑定码无效/)
    expect((await group(userid, `绑定 ${code}`)).reply!.stream.content).toBe(
      '绑定成功 ✅ 现在可以在这里签到、查积分了。',
    )
    // the code is used up
    expect((await group(`lisi_${dbName}`, `绑定 ${code}`)).reply!.stream.content).toMatch(
      /^绑定码无效/,
    )
    const first = await group(userid, '签到', `msg-checkin-${dbName}`)
    expect(first.reply!.stream).toEqual({
      id: expect.any(String),
      finish: true,
      content: '签到成功 ✅ +5 积分\n已连续签到 1 天\n当前积分 15，等级 铜牌',
    })
    const retry = await group(userid, '签到', `msg-checkin-${dbName}`)
    expect(retry.reply!.stream.content).toBe(first.reply!.stream.content)
    expect((await group(userid, '积分')).reply!.stream.content).toMatch(/^当前积分 15，等级 铜牌/)
    // the group's own ranking: only members seen in this group
    const board = (await group(userid, '排行榜')).reply!.stream.content
    expect(board.startsWith('本周积分排行榜（本群）\n1. 你 — 15')).toBe(true)
    expect(board).not.toContain('粉丝') // nobody else has spoken in CHAT1 yet
    const checkins = await get()
      .db.selectFrom('checkins')
      .innerJoin('members', 'members.id', 'checkins.member_id')
      .select('checkins.day')
      .where('members.openid', '=', `o_group_${dbName}`)
      .execute()
    expect(checkins).toHaveLength(1)
  })

  it("answers WeCom's retry of a message whose attempt died (its claim not renewed for the lease), once", async () => {
    const userid = `revived_${dbName}`
    const code = /绑定码：(\d{6})/.exec(
      (await server.pusher().text(`o_revived_${dbName}`, '绑定')).reply!.Content as string,
    )![1]!
    expect((await group(userid, `绑定 ${code}`)).reply!.stream.content).toMatch(/^绑定成功/)
    const msgid = `msg-dead-${dbName}`
    // claimed 30 s ago, last renewed 20 s ago (the lease is 12 s): its process died
    await get()
      .db.insertInto('inbound_events')
      .values({
        appid: 'aibot:AIBOT1',
        dedupe_key: msgid,
        openid: userid,
        msg_type: 'text',
        status: 'processing',
        received_at: new Date(clock.now().getTime() - 30_000),
        claimed_at: new Date(clock.now().getTime() - 20_000),
      })
      .execute()
    const retry = await group(userid, '签到', msgid)
    expect(retry.reply?.stream.content).toMatch(/^签到成功 ✅/)
    const claim = await get()
      .db.selectFrom('inbound_events')
      .select(['status', 'reply'])
      .where('appid', '=', 'aibot:AIBOT1')
      .where('dedupe_key', '=', msgid)
      .executeTakeFirstOrThrow()
    expect(claim).toEqual({ status: 'replied', reply: expect.stringContaining('签到成功') })
    // the next retry gets the stored answer: checked in once
    expect((await group(userid, '签到', msgid)).reply!.stream.content).toBe(
      retry.reply!.stream.content,
    )
    const checkins = await get()
      .db.selectFrom('checkins')
      .innerJoin('members', 'members.id', 'checkins.member_id')
      .select('checkins.day')
      .where('members.openid', '=', `o_revived_${dbName}`)
      .execute()
    expect(checkins).toHaveLength(1)
  })

  it('lets moderators grant points, announce (20 a minute per robot) and open activities; refuses and audits others', async () => {
    const oa = server.pusher()
    // a member who speaks in the group (linked), a moderator (linked), a bystander (linked)
    const link = async (openid: string, userid: string) => {
      const code = /绑定码：(\d{6})/.exec(
        (await oa.text(openid, '绑定')).reply!.Content as string,
      )![1]!
      await group(userid, `绑定 ${code}`)
    }
    await link(`o_member_${dbName}`, `member_${dbName}`)
    await link(`o_modm_${dbName}`, `mod_${dbName}`)
    await link(`o_by_${dbName}`, `by_${dbName}`)
    await group(`member_${dbName}`, '积分') // seen in CHAT1
    const say = async (userid: string, content: string) =>
      (await group(userid, content)).reply!.stream.content

    expect(await say(`by_${dbName}`, `加分 member_${dbName} 50 活跃`)).toBe(
      '这是管理员指令，你没有权限。',
    )
    expect(await say(`mod_${dbName}`, `加分 member_${dbName} 50 活跃`)).toBe(
      `已为 member_${dbName} 调整积分 +50，当前 60。`,
    )
    expect(await say(`mod_${dbName}`, `扣分 member_${dbName} 500 违规`)).toBe('积分不足，当前 60。')
    expect(await say(`mod_${dbName}`, '加分 nobody 5 x')).toBe('没有找到成员「nobody」。')
    // the moderator of CHAT1 is not one in another group
    const elsewhere = await callback({
      msgid: `m-${Math.random()}`,
      aibotid: 'AIBOT1',
      chatid: 'CHAT2',
      chattype: 'group',
      from: { userid: `mod_${dbName}` },
      msgtype: 'text',
      text: { content: `@圈子助手 加分 member_${dbName} 5 x` },
    })
    expect(elsewhere.reply!.stream.content).toBe('这是管理员指令，你没有权限。')

    // announcements: the group robot and the group's linked followers; 20 a minute per robot
    const first = await say(`mod_${dbName}`, '公告 周六晚 8 点直播')
    expect(first).toMatch(/^公告已发出：1 个群，\d+ 位关注者。$/)
    const robotSends = () => wecom.sent.filter((s) => s.appid === `robotkey-${dbName}`)
    expect(robotSends()[0]!.body).toMatchObject({
      msgtype: 'text',
      text: { content: '📢 公告：周六晚 8 点直播' },
    })
    const followers = await get()
      .db.selectFrom('push_outbox')
      .select('openid')
      .where('source', 'like', 'announce:%')
      .execute()
    expect(followers.map((f) => f.openid)).toContain(`o_member_${dbName}`)
    for (let i = 2; i <= 20; i++) await say(`mod_${dbName}`, `公告 第 ${i} 条`)
    expect(await say(`mod_${dbName}`, '公告 第 21 条')).toBe(
      '公告太频繁（每个群每分钟最多 20 条），请稍后再试。',
    )
    expect(robotSends()).toHaveLength(20) // never over the robot's limit

    // activities, and the same commands from a moderator's own OA chat
    expect(await say(`mod_${dbName}`, '关闭 topic')).toBe('已关闭「每周话题讨论」。')
    expect((await oa.text(`o_mod_${dbName}`, '开启 topic')).reply!.Content).toBe(
      '已开启「每周话题讨论」。',
    )
    expect((await oa.text(`o_by_${dbName}`, '开启 topic')).reply!.Content).toBe(
      '这是管理员指令，你没有权限。',
    )

    const log = await get()
      .db.selectFrom('audit_log')
      .select(['actor', 'action'])
      .where('actor', 'in', [
        `wecom_aibot:mod_${dbName}`,
        `wecom_aibot:by_${dbName}`,
        `oa:o_mod_${dbName}`,
        `oa:o_by_${dbName}`,
      ])
      .execute()
    const actions = log.map((l) => `${l.actor} ${l.action}`)
    expect(actions).toContain(`wecom_aibot:by_${dbName} points.grant.refused`)
    expect(actions).toContain(`wecom_aibot:mod_${dbName} points.grant`)
    expect(actions).toContain(`wecom_aibot:mod_${dbName} announce`)
    expect(actions).toContain(`oa:o_mod_${dbName} activity.open`)
    expect(actions).toContain(`oa:o_by_${dbName} activity.open.refused`)
  })

  /** A loopback response_url: the late answers posted to it. */
  async function responseCatcher() {
    const posted: unknown[] = []
    const catcher = createServer((req, res) => {
      let body = ''
      req.on('data', (chunk) => {
        body += chunk
      })
      req.on('end', () => {
        posted.push(JSON.parse(body))
        res.end('{"errcode":0}')
      })
    })
    await new Promise<void>((resolve) => catcher.listen(0, '127.0.0.1', resolve))
    const url = `http://127.0.0.1:${(catcher.address() as AddressInfo).port}/resp`
    return { posted, url, close: () => catcher.close() }
  }

  /** A server whose 慢 answers after `slowMs`, and a bound sender's callbacks to it. */
  async function slowBot(o: { deadlineMs: number; slowMs: number; responseUrl: string }) {
    const slow = await startServer(get().db, {
      clock,
      config: testConfig({
        WECOM_AIBOT_TOKEN: TOKEN,
        WECOM_AIBOT_AES_KEY: AES_KEY,
        WECHAT_REPLY_DEADLINE_MS: String(o.deadlineMs),
      }),
      router: createRouter().command({ names: ['慢'], description: 'command.help' }, async () => {
        await sleep(o.slowMs)
        return text('慢工出细活')
      }),
    })
    const userid = `slow_${dbName}_${Math.random().toString(36).slice(2, 8)}`
    const message = (content: string, msgid = `m-${Math.random()}`) => ({
      msgid,
      aibotid: 'AIBOT1',
      chattype: 'single',
      from: { userid },
      response_url: o.responseUrl,
      msgtype: 'text',
      text: { content },
    })
    const post = async (m: Record<string, unknown>) => {
      const e = await cipher.encrypt(JSON.stringify(m), '')
      const ts = String(Math.floor(clock.now().getTime() / 1000))
      const nonce = `n${Math.random().toString(36).slice(2)}`
      const sig = await signature([TOKEN, ts, nonce, e])
      return fetch(
        `${slow.url}/wecom/aibot?${new URLSearchParams({ msg_signature: sig, timestamp: ts, nonce })}`,
        { method: 'POST', body: JSON.stringify({ encrypt: e }) },
      )
    }
    const code = /绑定码：(\d{6})/.exec(
      (await slow.pusher().text(`o_${userid}`, '绑定')).reply!.Content as string,
    )![1]!
    expect((await post(message(`绑定 ${code}`))).status).toBe(200)
    return { message, post, close: () => slow.close() }
  }

  it('posts an answer that missed the reply deadline to response_url', async () => {
    const catcher = await responseCatcher()
    const bot = await slowBot({ deadlineMs: 300, slowMs: 800, responseUrl: catcher.url })
    try {
      const res = await bot.post(bot.message('慢'))
      expect(res.status).toBe(200)
      expect(await res.text()).toBe('') // nothing in time
      for (let i = 0; i < 50 && catcher.posted.length === 0; i++) await sleep(50)
      expect(catcher.posted).toEqual([{ msgtype: 'markdown', markdown: { content: '慢工出细活' } }])
    } finally {
      await bot.close()
      catcher.close()
    }
  })

  it('leaves a message taken over by a retry meanwhile to the new holder: no deferral, no response_url post of its own', async () => {
    const catcher = await responseCatcher()
    const bot = await slowBot({ deadlineMs: 600, slowMs: 1500, responseUrl: catcher.url })
    const msgid = `msg-taken-${dbName}`
    const row = () =>
      get()
        .db.selectFrom('inbound_events')
        .select(['status', 'claimed_at'])
        .where('appid', '=', 'aibot:AIBOT1')
        .where('dedupe_key', '=', msgid)
        .executeTakeFirst()
    const other = new Date(clock.now().getTime() + 60_000)
    try {
      // what reclaimEvent does for WeCom's retry once this attempt's renewals stop reaching the
      // database for a whole lease: the claim is the retry's now
      const takeOver = (async () => {
        for (let i = 0; i < 40 && !(await row()); i++) await sleep(25)
        await get()
          .db.updateTable('inbound_events')
          .set({ claimed_at: other })
          .where('appid', '=', 'aibot:AIBOT1')
          .where('dedupe_key', '=', msgid)
          .execute()
      })()
      const res = await bot.post(bot.message('慢', msgid))
      await takeOver
      expect(res.status).toBe(200)
      expect(await res.text()).toBe('')
      await sleep(1500) // past 慢's answer: a deferral of this attempt's would post it now
      // still the new holder's to answer (it posts its own answer): not deferred under it, and
      // this attempt posted nothing
      expect(await row()).toEqual({ status: 'processing', claimed_at: other })
      expect(catcher.posted).toEqual([])
    } finally {
      await bot.close()
      catcher.close()
    }
  })

  it("counts a retry's wait for the message's claim in the reply deadline: an answer after it goes to response_url", async () => {
    const catcher = await responseCatcher()
    // 慢 takes 1.5 s: in time for a fresh 2 s deadline, not for what is left of it after waiting
    const bot = await slowBot({ deadlineMs: 2000, slowMs: 1500, responseUrl: catcher.url })
    const msgid = `msg-wait-${dbName}`
    try {
      // another attempt holds the message (claimed now), then fails 1.2 s into WeCom's retry
      await get()
        .db.insertInto('inbound_events')
        .values({
          appid: 'aibot:AIBOT1',
          dedupe_key: msgid,
          openid: 'x',
          msg_type: 'text',
          status: 'processing',
          received_at: clock.now(),
          claimed_at: clock.now(),
        })
        .execute()
      const fails = sleep(1200).then(() =>
        get()
          .db.updateTable('inbound_events')
          .set({ status: 'failed', error: 'lost its connection' })
          .where('appid', '=', 'aibot:AIBOT1')
          .where('dedupe_key', '=', msgid)
          .execute(),
      )
      const started = Date.now()
      const res = await bot.post(bot.message('慢', msgid))
      const took = Date.now() - started
      await fails
      expect(res.status).toBe(200)
      expect({ body: await res.text(), inTime: took < 2500 }).toEqual({ body: '', inTime: true })
      for (let i = 0; i < 60 && catcher.posted.length === 0; i++) await sleep(50)
      expect(catcher.posted).toEqual([{ msgtype: 'markdown', markdown: { content: '慢工出细活' } }])
    } finally {
      await bot.close()
      catcher.close()
    }
  })
})
