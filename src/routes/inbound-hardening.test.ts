/**
 * Issue 13, Found 1–5, over real HTTP: no encryption downgrade, no replay, no parsing before
 * authentication, no DOCTYPE, no stale WeCom callbacks — at the official-account webhook, the WeCom
 * AI bot and the customer-contact callback. Every refused request must leave the database as it was
 * and run no handler.
 */
import { XMLParser } from 'fast-xml-parser'
import { sql } from 'kysely'
import { afterAll, afterEach, beforeAll, expect, it, vi } from 'vitest'
import { createRouter } from '../../handlers/index.js'
import { forEachDatabase } from '../../test/databases.js'
import {
  PLAIN_ACCOUNT,
  SAFE_ACCOUNT,
  startServer,
  type TestServer,
  testConfig,
} from '../../test/server.js'
import { createPusher, nextMsgId } from '../sandbox/pusher.js'
import { buildXml, type XmlObject } from '../wechat/codec.js'
import { messageCipher, signature } from '../wechat/crypto.js'
import { text } from '../wechat/reply.js'

const COMPAT = {
  appid: 'wx0000000000000003',
  token: 'testtoken3',
  aesKey: SAFE_ACCOUNT.aesKey,
  mode: 'compat',
} as const
const AIBOT = { token: 'aibottoken1', aesKey: SAFE_ACCOUNT.aesKey }
const CONTACT = { corpId: 'ww0123456789abcdef', token: 'cbtoken1', aesKey: SAFE_ACCOUNT.aesKey }
const cipher = messageCipher(SAFE_ACCOUNT.aesKey)
const nowSeconds = () => String(Math.floor(Date.now() / 1000))
const randomNonce = () => Math.random().toString(36).slice(2, 12)
/** The bypass from the attack review: a DOCTYPE hidden between a comment and a CDATA opener. */
const BYPASS = '<!--<![CDATA[--><!DOCTYPE xml [<!ENTITY c "签到">]><!--]]>-->'

forEachDatabase('inbound doors, hardened', (get, dbName) => {
  let server: TestServer
  let calls = 0
  const router = createRouter().command(
    { names: ['计数', 'count'], description: 'command.help' },
    () => {
      calls++
      return text(`count ${calls}`)
    },
  )
  beforeAll(async () => {
    server = await startServer(get().db, {
      router,
      config: testConfig({
        WECHAT_MAX_BODY_BYTES: '', // the default: 64 KB
        WECOM_AIBOT_TOKEN: AIBOT.token,
        WECOM_AIBOT_AES_KEY: AIBOT.aesKey,
        WECOM_CORP_ID: CONTACT.corpId,
        WECOM_CALLBACK_TOKEN: CONTACT.token,
        WECOM_CALLBACK_AES_KEY: CONTACT.aesKey,
        WECOM_CONTACT_SECRET: 'contact-secret',
        WECOM_API_BASE: 'http://127.0.0.1:9', // never called by these events
      }),
    })
  })
  afterAll(() => server.close())
  afterEach(() => {
    vi.restoreAllMocks()
  })

  /** Rows every accepted request writes: a refused one must change none of them. */
  const counts = async () => {
    const db = get().db
    const n = async (table: 'members' | 'inbound_events' | 'checkins') =>
      (
        await db
          .selectFrom(table)
          .select(sql<number>`count(*)::int`.as('n'))
          .executeTakeFirstOrThrow()
      ).n
    return {
      members: await n('members'),
      events: await n('inbound_events'),
      checkins: await n('checkins'),
    }
  }
  const post = async (url: string, body: string, type = 'text/xml') => {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': type }, body })
    return { status: res.status, body: await res.text() }
  }
  const textFields = (openid: string, content: string): XmlObject => ({
    FromUserName: openid,
    CreateTime: Math.floor(Date.now() / 1000),
    MsgType: 'text',
    Content: content,
    MsgId: BigInt(nextMsgId()),
  })
  /** A plaintext push to the plain account, signed as WeChat signs it (query only). */
  const signedPlain = async (account: { appid: string; token: string }, extra = '') => {
    const ts = nowSeconds()
    const nonce = randomNonce()
    const sig = await signature([account.token, ts, nonce])
    return `${server.url}/wechat/${account.appid}?signature=${sig}&timestamp=${ts}&nonce=${nonce}${extra}`
  }

  // Found 1 — encryption downgrade
  it('refuses plaintext pushes to a safe-mode account, however well signed, and runs nothing', async () => {
    const before = await counts()
    const calledBefore = calls
    const ts = nowSeconds()
    const nonce = randomNonce()
    // WeChat sends this `signature` on safe-mode URLs too: one seen in a log must not be enough.
    const sig = await signature([SAFE_ACCOUNT.token, ts, nonce])
    const body = buildXml({ ToUserName: 'gh_x', ...textFields(`o_victim_${dbName}`, 'count') })
    const base = `${server.url}/wechat?signature=${sig}&timestamp=${ts}&nonce=${nonce}`
    for (const url of [base, `${base}&encrypt_type=raw`, `${base}&encrypt_type=aes`]) {
      const r = await post(url, body)
      expect(r.status, url).toBe(401)
    }
    expect(calls).toBe(calledBefore)
    expect(await counts()).toEqual(before)
    // the same account still takes encrypted pushes
    const wx = createPusher({ url: `${server.url}/wechat`, account: SAFE_ACCOUNT })
    expect((await wx.text(`o_safe_${dbName}`, 'count')).reply!.Content).toBe(`count ${calls}`)
  })

  it('compatible mode takes both (the encrypted content wins); plain mode refuses what it cannot open', async () => {
    const compat = await startServer(get().db, {
      router,
      config: testConfig({ WECHAT_ACCOUNTS: JSON.stringify([PLAIN_ACCOUNT, COMPAT]) }),
    })
    try {
      const url = `${compat.url}/wechat/${COMPAT.appid}`
      const plain = createPusher({ url, account: COMPAT, mode: 'plain' })
      expect((await plain.text(`o_cp_${dbName}`, 'help')).reply!.Content).toContain('help')
      // plaintext fields say one thing, Encrypt another: Encrypt is what was signed
      const real = textFields(`o_real_${dbName}`, 'help')
      const encrypt = await cipher.encrypt(buildXml({ ToUserName: 'gh_c', ...real }), COMPAT.appid)
      const ts = nowSeconds()
      const nonce = randomNonce()
      const q = new URLSearchParams({
        signature: await signature([COMPAT.token, ts, nonce]),
        msg_signature: await signature([COMPAT.token, ts, nonce, encrypt]),
        timestamp: ts,
        nonce,
        encrypt_type: 'aes',
      })
      const forged = buildXml({
        ToUserName: 'gh_c',
        ...textFields(`o_fake_${dbName}`, 'count'),
        Encrypt: encrypt,
      })
      const calledBefore = calls
      const r = await post(`${url}?${q}`, forged)
      expect(r.status).toBe(200)
      const reply = await messageCipher(COMPAT.aesKey).decrypt(
        /<Encrypt><!\[CDATA\[([^\]]+)\]\]>/.exec(r.body)![1]!,
      )
      expect(reply.message).toContain(`<ToUserName><![CDATA[o_real_${dbName}]]>`)
      expect(calls).toBe(calledBefore)

      // the plain account has no key: an encrypted push is refused, not guessed at
      const p = createPusher({
        url: `${compat.url}/wechat/${PLAIN_ACCOUNT.appid}`,
        account: { ...PLAIN_ACCOUNT, aesKey: SAFE_ACCOUNT.aesKey },
        mode: 'safe',
      })
      expect((await p.text(`o_p_${dbName}`, 'count')).status).toBe(400)
      expect(calls).toBe(calledBefore)
    } finally {
      await compat.close()
    }
  })

  // Found 2 — replay
  it('refuses a captured plaintext push replayed with another body; the unchanged retry gets the stored reply', async () => {
    const wx = createPusher({
      url: `${server.url}/wechat/${PLAIN_ACCOUNT.appid}`,
      account: PLAIN_ACCOUNT,
    })
    const captured = await wx.prepare(textFields(`o_r1_${dbName}`, 'count'))
    const first = await wx.send(captured)
    expect(first.reply!.Content).toBe(`count ${calls}`)
    const calledBefore = calls
    const retry = await wx.send(captured)
    expect(retry.body).toBe(first.body) // WeChat resending unchanged
    const before = await counts()
    const forged = buildXml({ ToUserName: 'gh_x', ...textFields(`o_victim2_${dbName}`, '签到') })
    const replay = await post(captured.url, forged)
    expect(replay.status).toBe(401)
    expect(calls).toBe(calledBefore)
    expect(await counts()).toEqual(before)
  })

  it('refuses a safe-mode push replayed with its envelope changed around the same Encrypt', async () => {
    const wx = createPusher({ url: `${server.url}/wechat`, account: SAFE_ACCOUNT })
    const captured = await wx.prepare(textFields(`o_r2_${dbName}`, 'count'))
    const first = await wx.send(captured)
    expect(first.status).toBe(200)
    expect((await wx.send(captured)).reply).toEqual(first.reply) // a retry
    const before = await counts()
    const changed = captured.body.replace('gh_sandbox00000', 'gh_other000000')
    expect(changed).not.toBe(captured.body)
    expect((await post(captured.url, changed)).status).toBe(401)
    expect(await counts()).toEqual(before)
  })

  it.runIf(dbName === 'postgres')('shares the replay cache between instances', async () => {
    const second = await startServer(get().open(), { router })
    try {
      const a = createPusher({
        url: `${server.url}/wechat/${PLAIN_ACCOUNT.appid}`,
        account: PLAIN_ACCOUNT,
      })
      const captured = await a.prepare(textFields(`o_r3_${dbName}`, 'count'))
      expect((await a.send(captured)).status).toBe(200)
      const onSecond = captured.url.replace(server.url, second.url)
      expect((await post(onSecond, captured.body)).status).toBe(200) // retry, stored reply
      const forged = buildXml({ ToUserName: 'gh_x', ...textFields(`o_r3b_${dbName}`, 'count') })
      expect((await post(onSecond, forged)).status).toBe(401)
    } finally {
      await second.close()
    }
  })

  it('refuses AI bot and customer-contact callbacks replayed with another body', async () => {
    const before = await counts()
    // AI bot: the same encrypt and signature, the JSON spaced differently
    const message = {
      msgid: `m-replay-${dbName}`,
      aibotid: 'AIBOT1',
      chattype: 'single',
      from: { userid: `u_replay_${dbName}` },
      msgtype: 'text',
      text: { content: '积分' },
    }
    const encrypt = await cipher.encrypt(JSON.stringify(message), '')
    const ts = nowSeconds()
    const nonce = randomNonce()
    const q = new URLSearchParams({
      msg_signature: await signature([AIBOT.token, ts, nonce, encrypt]),
      timestamp: ts,
      nonce,
    })
    const aibot = `${server.url}/wecom/aibot?${q}`
    const first = await post(aibot, JSON.stringify({ encrypt }), 'application/json')
    expect(first.status).toBe(200)
    expect((await post(aibot, JSON.stringify({ encrypt }), 'application/json')).status).toBe(200)
    expect((await post(aibot, `{ "encrypt": "${encrypt}" }`, 'application/json')).status).toBe(401)

    // customer contact: the same envelope with another AgentID
    const event = await cipher.encrypt(
      `<xml><ToUserName><![CDATA[${CONTACT.corpId}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName><CreateTime>${ts}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[del_external_contact]]></ChangeType><ExternalUserID><![CDATA[wm_replay_${dbName}]]></ExternalUserID></xml>`,
      CONTACT.corpId,
    )
    const cq = new URLSearchParams({
      msg_signature: await signature([CONTACT.token, ts, nonce, event]),
      timestamp: ts,
      nonce,
    })
    const envelope = (agent: string) =>
      `<xml><ToUserName><![CDATA[${CONTACT.corpId}]]></ToUserName><Encrypt><![CDATA[${event}]]></Encrypt><AgentID><![CDATA[${agent}]]></AgentID></xml>`
    const contact = `${server.url}/wecom/callback?${cq}`
    expect(await post(contact, envelope('1000002'))).toEqual({ status: 200, body: 'success' })
    expect(await post(contact, envelope('1000002'))).toEqual({ status: 200, body: 'success' })
    expect((await post(contact, envelope('1000003'))).status).toBe(401)
    const after = await counts()
    expect(after.events).toBe(before.events + 2) // the two first deliveries, nothing else
  })

  // Found 3 — work before authentication
  it('never hands an unauthenticated body to the XML parser, and caps bodies at 64 KB by default', async () => {
    const parse = vi.spyOn(XMLParser.prototype, 'parse')
    const ts = nowSeconds()
    const nonce = randomNonce()
    const q = `timestamp=${ts}&nonce=${nonce}&encrypt_type=aes&msg_signature=${'0'.repeat(40)}`
    const big = (n: number) => 'QUFB'.repeat(n)
    const envelope = `<xml><ToUserName><![CDATA[gh_x]]></ToUserName><Encrypt><![CDATA[${big(15_000)}]]></Encrypt></xml>`
    const lots = `<xml><ToUserName><![CDATA[gh_x]]></ToUserName>${'<a><b>1</b></a>'.repeat(4000)}<Encrypt><![CDATA[${big(10)}]]></Encrypt></xml>`
    expect(envelope.length).toBeGreaterThan(60_000)
    expect(lots.length).toBeGreaterThan(60_000)
    // a well-shaped envelope with a wrong signature: refused on the signature
    expect((await post(`${server.url}/wechat?${q}`, envelope)).status).toBe(401)
    const json = JSON.stringify({ ToUserName: 'gh_x', Encrypt: big(15_000) })
    expect((await post(`${server.url}/wechat?${q}`, json, 'application/json')).status).toBe(401)
    // anything else is refused on its shape, unread
    expect((await post(`${server.url}/wechat?${q}`, lots)).status).toBe(400)
    expect((await post(`${server.url}/wecom/callback?${q}`, lots)).status).toBe(400)
    expect(
      (
        await post(
          `${server.url}/wecom/aibot?${q}`,
          JSON.stringify({ encrypt: big(10), more: [1, 2, 3] }),
          'application/json',
        )
      ).status,
    ).toBe(400)
    // (the well-formedness scan runs inside parseXml, right before the parser: never reached either)
    expect(parse).not.toHaveBeenCalled()

    // the default limit is what WeChat sends at most: 64 KB
    const tooBig = envelope.replace('QUFB', big(2_000))
    expect(tooBig.length).toBeGreaterThan(65_536)
    expect((await post(`${server.url}/wechat?${q}`, tooBig)).status).toBe(413)
    // …and an authenticated push is parsed as before
    const wx = createPusher({ url: `${server.url}/wechat`, account: SAFE_ACCOUNT })
    expect((await wx.text(`o_auth_${dbName}`, 'help')).status).toBe(200)
    expect(parse).toHaveBeenCalled()
  })

  // Found 4 — DOCTYPE and every other parser complaint
  it('refuses the hidden DOCTYPE, processing instructions, deep nesting and reserved names with 400', async () => {
    const before = await counts()
    const push = (fields: XmlObject) => buildXml({ ToUserName: 'gh_x', ...fields })
    const checkin = push(textFields(`o_dtd_${dbName}`, '&c;'))
      .replace('<![CDATA[&c;]]>', '&c;')
      .replace('<xml>', `<xml>${BYPASS}`)
    const bodies = [
      `${BYPASS}${checkin.replace(BYPASS, '')}`,
      checkin,
      `<?xml version="1.0"?><?xml-stylesheet href="x.xsl"?>${push(textFields('o_pi', 'count'))}`,
      push(textFields('o_pi2', 'count')).replace('</xml>', '<?php echo 1 ?></xml>'),
      `<xml>${'<a>'.repeat(9_000)}${'</a>'.repeat(9_000)}</xml>`,
      push({ ...textFields('o_proto', 'count'), __proto__x: '1' }).replace(
        /__proto__x/g,
        '__proto__',
      ),
      push({ ...textFields('o_ctor', 'count'), constructor: '1' }),
      `{"ToUserName":"gh_x","FromUserName":"o_j","MsgType":"text","Content":"count","MsgId":1,"x":${'['.repeat(10_000)}${']'.repeat(10_000)}}`,
      `{"ToUserName":"gh_x","FromUserName":"o_j","CreateTime":1,"MsgType":"text","Content":"count","MsgId":1,"__proto__":{"x":1}}`,
    ]
    for (const body of bodies) {
      const r = await post(await signedPlain(PLAIN_ACCOUNT), body)
      expect(r.status, body.slice(0, 120)).toBe(400)
    }
    // inside an encrypted push too
    const sealed = await cipher.encrypt(checkin, SAFE_ACCOUNT.appid)
    const ts = nowSeconds()
    const nonce = randomNonce()
    const q = new URLSearchParams({
      timestamp: ts,
      nonce,
      encrypt_type: 'aes',
      msg_signature: await signature([SAFE_ACCOUNT.token, ts, nonce, sealed]),
    })
    const r = await post(
      `${server.url}/wechat?${q}`,
      `<xml><ToUserName><![CDATA[gh_x]]></ToUserName><Encrypt><![CDATA[${sealed}]]></Encrypt></xml>`,
    )
    expect(r.status).toBe(400)
    expect(await counts()).toEqual(before) // 签到 never ran
  })

  // Found 5 — WeCom callbacks expire
  it('refuses WeCom callbacks whose timestamp is outside the freshness window', async () => {
    const before = await counts()
    const old = '978307200' // 2001-01-01
    const nonce = randomNonce()
    const message = {
      msgid: `m-old-${dbName}`,
      aibotid: 'AIBOT1',
      chattype: 'single',
      from: { userid: `u_old_${dbName}` },
      msgtype: 'text',
      text: { content: '签到' },
    }
    const encrypt = await cipher.encrypt(JSON.stringify(message), '')
    const aq = new URLSearchParams({
      msg_signature: await signature([AIBOT.token, old, nonce, encrypt]),
      timestamp: old,
      nonce,
    })
    expect(
      (
        await post(
          `${server.url}/wecom/aibot?${aq}`,
          JSON.stringify({ encrypt }),
          'application/json',
        )
      ).status,
    ).toBe(401)
    const echostr = await cipher.encrypt('echo', '')
    const vq = new URLSearchParams({
      msg_signature: await signature([AIBOT.token, old, nonce, echostr]),
      timestamp: old,
      nonce,
      echostr,
    })
    expect((await fetch(`${server.url}/wecom/aibot?${vq}`)).status).toBe(401)

    const event = await cipher.encrypt(
      `<xml><ToUserName><![CDATA[${CONTACT.corpId}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName><CreateTime>${old}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[del_external_contact]]></ChangeType><ExternalUserID><![CDATA[wm_old_${dbName}]]></ExternalUserID></xml>`,
      CONTACT.corpId,
    )
    const cq = new URLSearchParams({
      msg_signature: await signature([CONTACT.token, old, nonce, event]),
      timestamp: old,
      nonce,
    })
    const r = await post(
      `${server.url}/wecom/callback?${cq}`,
      `<xml><ToUserName><![CDATA[${CONTACT.corpId}]]></ToUserName><Encrypt><![CDATA[${event}]]></Encrypt><AgentID><![CDATA[1000002]]></AgentID></xml>`,
    )
    expect(r.status).toBe(401)
    expect(await counts()).toEqual(before)
  })

  it('takes only the WeCom envelopes: nothing beside encrypt, no plaintext fields beside Encrypt', async () => {
    const ts = nowSeconds()
    const nonce = randomNonce()
    const event = await cipher.encrypt(
      `<xml><ToUserName><![CDATA[${CONTACT.corpId}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName><CreateTime>${ts}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[del_external_contact]]></ChangeType><ExternalUserID><![CDATA[wm_shape_${dbName}]]></ExternalUserID></xml>`,
      CONTACT.corpId,
    )
    const cq = new URLSearchParams({
      msg_signature: await signature([CONTACT.token, ts, nonce, event]),
      timestamp: ts,
      nonce,
    })
    const before = await counts()
    const r = await post(
      `${server.url}/wecom/callback?${cq}`,
      `<xml><ToUserName><![CDATA[${CONTACT.corpId}]]></ToUserName><Event><![CDATA[change_external_chat]]></Event><Encrypt><![CDATA[${event}]]></Encrypt></xml>`,
    )
    expect(r.status).toBe(400)
    expect(await counts()).toEqual(before)
  })
})
