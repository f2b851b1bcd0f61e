import { afterAll, beforeAll, expect, it } from 'vitest'
import vectors from '../../../shared/vectors/wechat-crypto.json' with { type: 'json' }
import { forEachDatabase } from '../../test/databases.js'
import { SAFE_ACCOUNT, startServer, type TestServer, testConfig } from '../../test/server.js'
import { createPusher } from '../sandbox/pusher.js'
import { messageCipher, signature } from '../wechat/crypto.js'

const vector = (
  vectors as unknown as {
    id: string
    inputs: Record<string, string>
    expected: Record<string, string>
  }[]
).find((v) => v.id === 'aibot-decrypt-generated')!
const TOKEN = vector.inputs.token!
const AES_KEY = vector.inputs.encodingAESKey!
const cipher = messageCipher(AES_KEY)

forEachDatabase('the WeCom AI bot channel', (get, dbName) => {
  let server: TestServer
  beforeAll(async () => {
    server = await startServer(get().db, {
      config: testConfig({ WECOM_AIBOT_TOKEN: TOKEN, WECOM_AIBOT_AES_KEY: AES_KEY }),
    })
  })
  afterAll(() => server.close())

  /** A callback as WeCom sends it: encrypted JSON, signed. */
  async function callback(message: Record<string, unknown>, o: { badSignature?: boolean } = {}) {
    const encrypt = await cipher.encrypt(JSON.stringify(message), '')
    const timestamp = String(Math.floor(Date.now() / 1000))
    const nonce = Math.random().toString(36).slice(2, 10)
    const sig = await signature([TOKEN, timestamp, nonce, encrypt])
    return send(
      { msg_signature: o.badSignature ? '0'.repeat(40) : sig, timestamp, nonce },
      { encrypt },
    )
  }
  async function send(q: Record<string, string>, body: unknown) {
    const res = await fetch(`${server.url}/wecom/aibot?${new URLSearchParams(q)}`, {
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
  const group = (userid: string, content: string, msgid = `m-${Math.random()}`) =>
    callback({
      msgid,
      aibotid: 'AIBOT1',
      chatid: 'CHAT1',
      chattype: 'group',
      from: { userid },
      response_url: 'https://example.invalid/resp',
      msgtype: 'text',
      text: { content: `@圈子助手 ${content}` },
    })

  it('opens the known-answer callback and asks an unknown sender to bind first', async () => {
    const { inputs } = vector
    const r = await send(
      { msg_signature: inputs.msg_signature!, timestamp: inputs.timestamp!, nonce: inputs.nonce! },
      { encrypt: inputs.encrypt },
    )
    // The vector's timestamp is old: the AI bot protocol has no freshness rule, the msgid dedupes.
    expect(r.reply?.stream).toMatchObject({
      finish: true,
      content: expect.stringMatching(/^还不认识你哦/),
    })
  })

  it('verifies the URL with an encrypted echostr and refuses bad signatures and bodies', async () => {
    const echostr = await cipher.encrypt('echo-1234567890', '')
    const timestamp = '1700000000'
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
      (await send({ msg_signature: 'a', timestamp: '1', nonce: 'n' }, 'not json')).status,
    ).toBe(400)
  })

  it('links a WeCom user with a code from the OA chat, then checks in from the group once per msgid', async () => {
    const userid = `zhangsan_${dbName}`
    const oa = createPusher({ url: `${server.url}/wechat`, account: SAFE_ACCOUNT })
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
    const checkins = await get()
      .db.selectFrom('checkins')
      .innerJoin('members', 'members.id', 'checkins.member_id')
      .select('checkins.day')
      .where('members.openid', '=', `o_group_${dbName}`)
      .execute()
    expect(checkins).toHaveLength(1)
  })
})
