import { sql } from 'kysely'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { createRouter } from '../../handlers/index.js'
import { forEachDatabase } from '../../test/databases.js'
import {
  COMPAT_ACCOUNT,
  PLAIN_ACCOUNT,
  SAFE_ACCOUNT,
  startServer,
  type TestServer,
  testConfig,
} from '../../test/server.js'
import { countStatements } from '../../test/statement-counter.js'
import { sleep } from '../clock.js'
import { nodeCrypto } from '../node-crypto.js'
import { createPusher, nextMsgId } from '../sandbox/pusher.js'
import { type CryptoBackend, messageCipher, signature } from '../wechat/crypto.js'
import { text } from '../wechat/reply.js'

/** A text push's fields with a fresh MsgId. */
const textFrom = (openid: string, content: string) => ({
  FromUserName: openid,
  CreateTime: Math.floor(Date.now() / 1000),
  MsgType: 'text',
  Content: content,
  MsgId: BigInt(nextMsgId()),
})

const threeAccounts = (env: Record<string, string> = {}) =>
  testConfig({ WECHAT_ACCOUNTS: JSON.stringify([PLAIN_ACCOUNT, COMPAT_ACCOUNT]), ...env })

forEachDatabase('webhook over HTTP', (get, dbName) => {
  let server: TestServer
  let calls = 0
  const router = createRouter()
    .command({ names: ['计数', 'count'], description: 'command.help' }, () => {
      calls++
      return text(`count ${calls}`)
    })
    .command({ names: ['慢', 'slow'], description: 'command.help' }, async () => {
      await sleep(1500)
      return text('late answer')
    })
    .command({ names: ['稍慢', 'lag'], description: 'command.help' }, async () => {
      await sleep(300)
      return text('after a moment')
    })
    .command({ names: ['坏', 'boom'], description: 'command.help' }, () => {
      throw new Error('handler exploded')
    })
    .command({ names: ['空', 'blank'], description: 'command.help' }, () => {
      throw new Error() // no message
    })

  beforeAll(async () => {
    server = await startServer(get().db, {
      router,
      config: threeAccounts({ WECHAT_REPLY_DEADLINE_MS: '1000' }),
    })
  })
  afterAll(() => server.close())

  const safe = () => createPusher({ url: `${server.url}/wechat`, account: SAFE_ACCOUNT })
  const counts = async () => {
    const db = get().db
    const m = await db
      .selectFrom('members')
      .select(sql<number>`count(*)::int`.as('n'))
      .executeTakeFirstOrThrow()
    const e = await db
      .selectFrom('inbound_events')
      .select(sql<number>`count(*)::int`.as('n'))
      .executeTakeFirstOrThrow()
    return { members: m.n, events: e.n }
  }

  it('answers URL verification with the raw echostr', async () => {
    const timestamp = String(Math.floor(Date.now() / 1000))
    const sig = await signature([SAFE_ACCOUNT.token, timestamp, 'n1'])
    const ok = await fetch(
      `${server.url}/wechat?signature=${sig}&timestamp=${timestamp}&nonce=n1&echostr=abc%2B123`,
    )
    expect(ok.status).toBe(200)
    expect(await ok.text()).toBe('abc+123')
    const bad = await fetch(
      `${server.url}/wechat?signature=${'0'.repeat(40)}&timestamp=${timestamp}&nonce=n1&echostr=x`,
    )
    expect(bad.status).toBe(401)
  })

  it('replies in safe mode with a sealed, signed envelope', async () => {
    const res = await safe().text('o_safe', '帮助')
    expect(res.status).toBe(200)
    expect(res.body).toMatch(/^<xml>\n<Encrypt><!\[CDATA\[/)
    expect(res.reply).toMatchObject({
      ToUserName: 'o_safe',
      FromUserName: 'gh_sandbox00000',
      MsgType: 'text',
    })
    expect(res.reply!.Content).toContain('帮助 / help')
  })

  it('replies in compatible mode, plaintext mode and for JSON pushes', async () => {
    const compat = createPusher({
      url: `${server.url}/wechat/${COMPAT_ACCOUNT.appid}`,
      account: COMPAT_ACCOUNT,
      mode: 'compat',
    })
    expect((await compat.text('o_c', 'help')).reply!.Content).toContain('help')

    const plain = createPusher({
      url: `${server.url}/wechat/${PLAIN_ACCOUNT.appid}`,
      account: PLAIN_ACCOUNT,
    })
    const p = await plain.text('o_p', 'HELP')
    expect(p.body).toMatch(/^<xml><ToUserName><!\[CDATA\[o_p\]\]><\/ToUserName>/)
    expect(p.reply!.Content).toContain('帮助')

    for (const mode of ['plain', 'safe'] as const) {
      const json = createPusher({
        url: `${server.url}/wechat/${COMPAT_ACCOUNT.appid}`,
        account: COMPAT_ACCOUNT,
        mode,
        format: 'json',
      })
      const r = await json.text('o_json', '?')
      expect(JSON.parse(r.body)).toHaveProperty(mode === 'safe' ? 'Encrypt' : 'Content')
      expect(r.reply!.Content).toContain('帮助')
    }
  })

  it('welcomes followers, records scenes and follow state', async () => {
    const wx = safe()
    const r = await wx.event('o_follow', 'subscribe', { EventKey: 'qrscene_spring', Ticket: 'T1' })
    expect(r.reply!.Content).toContain('spring')
    let m = await get()
      .db.selectFrom('members')
      .selectAll()
      .where('openid', '=', 'o_follow')
      .executeTakeFirstOrThrow()
    expect(m).toMatchObject({
      appid: SAFE_ACCOUNT.appid,
      subscribed: true,
      subscribe_scene: 'spring',
      subscribe_event_key: 'qrscene_spring',
    })
    expect(m.last_inbound_at).toBeNull()

    expect((await wx.event('o_follow', 'unsubscribe')).body).toBe('success')
    m = await get()
      .db.selectFrom('members')
      .selectAll()
      .where('openid', '=', 'o_follow')
      .executeTakeFirstOrThrow()
    expect(m.subscribed).toBe(false)
    expect(m.unsubscribed_at).toBeInstanceOf(Date)

    await wx.text('o_follow', 'hello')
    m = await get()
      .db.selectFrom('members')
      .selectAll()
      .where('openid', '=', 'o_follow')
      .executeTakeFirstOrThrow()
    expect(m.last_inbound_at).toBeInstanceOf(Date)
  })

  it('answers unknown text kindly and ignores unknown types and unhandled events', async () => {
    const wx = safe()
    expect((await wx.text('o_u', '天气怎么样')).reply!.Content).toContain('天气怎么样')
    expect(
      (await wx.push({ FromUserName: 'o_u', CreateTime: 1, MsgType: 'hologram', MsgId: 99n })).body,
    ).toBe('success')
    expect(
      (await wx.event('o_u', 'MASSSENDJOBFINISH', { MsgID: '1', Status: 'send success' })).body,
    ).toBe('success')
    const img = await wx.push({
      FromUserName: 'o_u',
      CreateTime: 2,
      MsgType: 'image',
      PicUrl: 'http://x',
      MediaId: 'm',
      MsgId: BigInt(nextMsgId()),
    })
    expect(img.reply!.Content).toContain('帮助')
  })

  it('runs the same MsgId pushed 3× concurrently once and gives three identical replies', async () => {
    const plain = createPusher({
      url: `${server.url}/wechat/${PLAIN_ACCOUNT.appid}`,
      account: PLAIN_ACCOUNT,
    })
    const before = calls
    const msgId = BigInt(nextMsgId())
    const fields = {
      FromUserName: 'o_dup',
      CreateTime: Math.floor(Date.now() / 1000),
      MsgType: 'text',
      Content: 'count',
      MsgId: msgId,
    }
    const results = await Promise.all([1, 2, 3].map(async () => plain.push(fields)))
    expect(calls - before).toBe(1)
    expect(new Set(results.map((r) => r.body)).size).toBe(1)
    expect(results[0]!.reply!.Content).toBe(`count ${calls}`)
    // and encrypted retries carry the same plaintext reply
    const wx = safe()
    const sealed = await Promise.all(
      [1, 2, 3].map(() => wx.push({ ...fields, FromUserName: 'o_dup2' })),
    )
    expect(calls - before).toBe(2)
    expect(new Set(sealed.map((r) => JSON.stringify(r.reply))).size).toBe(1)
  })

  it('answers the retry of an answered push from the stored reply: in one statement, then from memory', async () => {
    const counted = countStatements(get().db)
    // Nothing this instance answers counts as late (a loaded machine may take a second).
    const own = await startServer(counted.db, {
      router,
      config: threeAccounts(),
      resendLikelyAfterMs: 60_000,
    })
    // Another instance on the same database, which has not answered this push itself.
    const other = await startServer(counted.db, { router, config: threeAccounts() })
    try {
      const wx = createPusher({ url: `${own.url}/wechat`, account: SAFE_ACCOUNT })
      const push = await wx.prepare(textFrom('o_retry_done', 'count'))
      const before = calls
      const first = await wx.send(push)
      expect(first.reply!.Content).toBe(`count ${calls}`)
      counted.reset()
      // WeChat resends the request unchanged. Answered at once, the push was not remembered (a
      // resend of such an answer is rare): the claim statement reads the stored reply...
      const retry = await wx.send(push)
      expect(counted.count()).toBe(1)
      expect(retry.reply).toEqual(first.reply)
      counted.reset()
      // ...and what it read is remembered for the next delivery
      expect((await wx.send(push)).reply).toEqual(first.reply)
      expect(counted.count()).toBe(0)
      const onOther = { ...push, url: push.url.replace(own.url, other.url) }
      const elsewhere = await wx.send(onOther)
      expect(counted.count()).toBe(1) // the claim statement, which read the stored reply
      expect(elsewhere.reply).toEqual(first.reply)
      counted.reset()
      expect((await wx.send(onOther)).reply).toEqual(first.reply)
      expect(counted.count()).toBe(0) // and remembers what it read
      expect(calls - before).toBe(1)
    } finally {
      await own.close()
      await other.close()
    }
  })

  it('remembers an answer given late enough to be resent, a reply or an apology', async () => {
    const counted = countStatements(get().db)
    // Late from 100 ms: 稍慢 answers after 300 ms, 坏 fails at once.
    const server = await startServer(counted.db, {
      router,
      config: threeAccounts(),
      resendLikelyAfterMs: 100,
    })
    try {
      const wx = createPusher({ url: `${server.url}/wechat`, account: SAFE_ACCOUNT })
      const late = await wx.prepare(textFrom('o_retry_late', 'lag'))
      const first = await wx.send(late)
      expect(first.reply!.Content).toBe('after a moment')
      counted.reset()
      expect((await wx.send(late)).reply).toEqual(first.reply)
      expect(counted.count()).toBe(0) // from memory
      const failing = await wx.prepare(textFrom('o_retry_late', 'boom'))
      const apology = await wx.send(failing)
      counted.reset()
      expect((await wx.send(failing)).reply).toEqual(apology.reply)
      expect(counted.count()).toBe(1) // given at once: the claim statement reads it
    } finally {
      await server.close()
    }
  })

  it('answers a retry that arrives while the first delivery is still working', async () => {
    const wx = safe()
    const push = await wx.prepare(textFrom('o_retry_busy', 'lag'))
    const first = wx.send(push)
    await sleep(100) // the first delivery holds the claim, its handler still running
    const retry = await wx.send(push)
    expect(retry.reply!.Content).toBe('after a moment')
    expect((await first).reply).toEqual(retry.reply)
  })

  it('answers success past the deadline and keeps the late reply for a follow-up', async () => {
    const wx = safe()
    const msgId = BigInt(nextMsgId())
    const fields = {
      FromUserName: 'o_slow',
      CreateTime: Math.floor(Date.now() / 1000),
      MsgType: 'text',
      Content: 'slow',
      MsgId: msgId,
    }
    // WeChat resends the same request (and another one with the same MsgId is a retry too).
    const push = await wx.prepare(fields)
    const first = await wx.send(push)
    expect(first.body).toBe('success')
    expect((await wx.send(push)).body).toBe('success')
    const retry = await wx.push(fields)
    expect(retry.body).toBe('success')
    await sleep(1700)
    const row = await get()
      .db.selectFrom('inbound_events')
      .selectAll()
      .where('dedupe_key', '=', `m:${msgId}`)
      .executeTakeFirstOrThrow()
    expect(row.status).toBe('follow_up')
    expect(JSON.parse(row.follow_up!)).toEqual({ type: 'text', content: 'late answer' })
    expect((await wx.push(fields)).body).toBe('success')
    expect((await wx.send(push)).body).toBe('success')
    // the late answer waits in the outbox as a customer-service message
    const queued = await get()
      .db.selectFrom('push_outbox')
      .selectAll()
      .where('source', '=', `reply:m:${msgId}`)
      .executeTakeFirstOrThrow()
    expect(queued).toMatchObject({ openid: 'o_slow', kind: 'custom', status: 'pending' })
    expect(JSON.parse(queued.payload)).toEqual({
      msgtype: 'text',
      text: { content: 'late answer' },
    })
  })

  it('records template delivery receipts and subscribe-message decisions', async () => {
    const db = get().db
    const appid = SAFE_ACCOUNT.appid
    await db
      .insertInto('push_outbox')
      .values({
        appid,
        source: 'receipt-test',
        openid: 'o_rcpt',
        kind: 'template',
        payload: '{}',
        status: 'sent',
        wechat_msgid: '200163836',
        next_attempt_at: new Date(),
        created_at: new Date(),
      })
      .execute()
    const wx = safe()
    expect(
      (await wx.event('o_rcpt', 'TEMPLATESENDJOBFINISH', { MsgID: 200163836n, Status: 'success' }))
        .body,
    ).toBe('success')
    const row = await db
      .selectFrom('push_outbox')
      .select(['delivery', 'delivered_at'])
      .where('source', '=', 'receipt-test')
      .executeTakeFirstOrThrow()
    expect(row.delivery).toBe('success')
    expect(row.delivered_at).toBeInstanceOf(Date)

    const decide = (status: string) =>
      wx.event('o_rcpt', 'subscribe_msg_popup_event', {
        SubscribeMsgPopupEvent: {
          List: { TemplateId: 'TPL_SUB', SubscribeStatusString: status, PopupScene: '2' },
        },
      })
    const blocks = () =>
      db.selectFrom('member_reachability').selectAll().where('openid', '=', 'o_rcpt').execute()
    await decide('reject')
    expect(await blocks()).toMatchObject([
      { channel: 'subscribe', scope: 'TPL_SUB', errcode: 43101 },
    ])
    await sleep(1100) // events are de-duplicated per second (CreateTime)
    await decide('accept')
    expect(await blocks()).toMatchObject([
      { channel: 'subscribe', scope: 'TPL_SUB', accepted_at: expect.any(Date) },
    ])
  })

  it('apologises when a handler throws, the same way on every retry', async () => {
    const wx = safe()
    const fields = textFrom('o_boom', 'boom')
    const push = await wx.prepare(fields)
    const a = await wx.send(push)
    const b = await wx.push(fields)
    expect(a.reply!.Content).toBe('系统开小差了，请稍后再试。')
    expect(b.reply).toEqual(a.reply)
    expect((await wx.send(push)).reply).toEqual(a.reply) // the same request again
    const stored = (openid: string) =>
      get()
        .db.selectFrom('inbound_events')
        .select(['status', 'error'])
        .where('openid', '=', openid)
        .executeTakeFirstOrThrow()
    expect(await stored('o_boom')).toEqual({ status: 'failed', error: 'handler exploded' })
    // An error without a message is a failure too (it was stored as `replied`).
    await wx.push(textFrom('o_blank', 'blank'))
    expect(await stored('o_blank')).toEqual({ status: 'failed', error: 'handler failed' })
  })

  it('sends the apology it stores, even when a second passes between storing and sending', async () => {
    // The clock moves a second at every reading once the handler has thrown: an apology rendered
    // twice (stored, then sent) would differ in CreateTime from what a retry gets.
    let offset = 0
    let ticking = false
    const clock = {
      now: () => {
        if (ticking) offset += 1000
        return new Date(Date.now() + offset)
      },
    }
    const ticks = createRouter().command({ names: ['tick'], description: 'command.help' }, () => {
      ticking = true
      throw new Error('handler exploded')
    })
    const own = await startServer(get().db, { router: ticks, clock })
    try {
      const wx = createPusher({ url: `${own.url}/wechat`, account: SAFE_ACCOUNT })
      const fields = textFrom('o_tick', 'tick')
      const a = await wx.push(fields)
      ticking = false
      const b = await wx.push(fields)
      expect(a.reply!.Content).toBe('系统开小差了，请稍后再试。')
      expect(b.reply).toEqual(a.reply)
    } finally {
      await own.close()
    }
  })

  it('apologises and claims nothing when receiving the push fails (database down)', async () => {
    const broken = await startServer(get().db, {
      router,
      members: {
        receive: () => Promise.reject(new Error('connection refused')),
      },
    })
    try {
      const wx = createPusher({ url: `${broken.url}/wechat`, account: SAFE_ACCOUNT })
      const r = await wx.text('o_dbdown', '计数')
      expect(r.status).toBe(200)
      expect(r.reply!.Content).toBe('系统开小差了，请稍后再试。')
      const rows = await get()
        .db.selectFrom('inbound_events')
        .select('status')
        .where('openid', '=', 'o_dbdown')
        .execute()
      expect(rows).toEqual([]) // a retry from WeChat may try again
    } finally {
      await broken.close()
    }
  })

  it('refuses bad input with the right status and writes nothing', async () => {
    const before = await counts()
    const now = Math.floor(Date.now() / 1000)
    const post = (query: string, body: string) =>
      fetch(`${server.url}/wechat${query}`, {
        method: 'POST',
        body,
        headers: { 'content-type': 'text/xml' },
      })
    const signed = async (token: string, ts = String(now), extra = '') =>
      `?signature=${await signature([token, ts, 'n'])}&timestamp=${ts}&nonce=n${extra}`
    const xml =
      '<xml><ToUserName><![CDATA[gh]]></ToUserName><FromUserName><![CDATA[o_bad]]></FromUserName><CreateTime>1</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content><MsgId>1</MsgId></xml>'
    const plainUrl = `/${PLAIN_ACCOUNT.appid}`

    // signatures and freshness
    expect((await post(`/${PLAIN_ACCOUNT.appid}?timestamp=${now}&nonce=n`, xml)).status).toBe(401)
    expect((await post(`${plainUrl}${await signed('wrongtoken')}`, xml)).status).toBe(401)
    expect(
      (await post(`${plainUrl}${await signed(PLAIN_ACCOUNT.token, String(now - 3600))}`, xml))
        .status,
    ).toBe(401)
    expect(
      (await post(`/wx9999999999999999${await signed(PLAIN_ACCOUNT.token)}`, xml)).status,
    ).toBe(404)
    // malformed bodies
    const sig = await signed(PLAIN_ACCOUNT.token)
    expect((await post(`${plainUrl}${sig}`, '<xml><ToUserName>')).status).toBe(400)
    expect((await post(`${plainUrl}${sig}`, '{"ToUserName": ')).status).toBe(400)
    expect((await post(`${plainUrl}${sig}`, 'hello')).status).toBe(400)
    expect((await post(`${plainUrl}${sig}`, '<xml><MsgType>text</MsgType></xml>')).status).toBe(400)
    const bomb = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><xml><Content>&lol2;</Content></xml>`
    expect((await post(`${plainUrl}${sig}`, bomb)).status).toBe(400)
    expect(
      (await post(`${plainUrl}${sig}`, `<xml><Content>${'a'.repeat(5000)}</Content></xml>`)).status,
    ).toBe(413)
    // a chunked body (no Content-Length) is cut off at the limit too
    const chunks = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 10; i++) controller.enqueue(new TextEncoder().encode('a'.repeat(1000)))
        controller.close()
      },
    })
    const chunked = await fetch(`${server.url}/wechat${plainUrl}${sig}`, {
      method: 'POST',
      body: chunks,
      duplex: 'half',
    } as RequestInit)
    expect(chunked.status).toBe(413)

    // encrypted: bad base64, wrong appid inside, missing msg_signature
    const enc = async (encrypt: string) => {
      const ms = await signature([SAFE_ACCOUNT.token, String(now), 'n', encrypt])
      return post(
        `${await signed(SAFE_ACCOUNT.token, String(now), `&encrypt_type=aes&msg_signature=${ms}`)}`,
        `<xml><ToUserName><![CDATA[gh]]></ToUserName><Encrypt><![CDATA[${encrypt}]]></Encrypt></xml>`,
      )
    }
    expect((await enc('@@notbase64@@')).status).toBe(400)
    expect((await enc('AAAA')).status).toBe(400)
    const foreign = await messageCipher(SAFE_ACCOUNT.aesKey).encrypt(xml, 'wx1111111111111111')
    expect((await enc(foreign)).status).toBe(400)
    const valid = await messageCipher(SAFE_ACCOUNT.aesKey).encrypt(xml, SAFE_ACCOUNT.appid)
    expect(
      (
        await post(
          `${await signed(SAFE_ACCOUNT.token, String(now), '&encrypt_type=aes')}`,
          `<xml><Encrypt><![CDATA[${valid}]]></Encrypt></xml>`,
        )
      ).status,
    ).toBe(401)
    const tampered = await signature([SAFE_ACCOUNT.token, String(now), 'n', valid])
    expect(
      (
        await post(
          `${await signed(SAFE_ACCOUNT.token, String(now), `&encrypt_type=aes&msg_signature=${tampered}`)}`,
          `<xml><Encrypt><![CDATA[${valid.slice(0, -4)}AAA=]]></Encrypt></xml>`,
        )
      ).status,
    ).toBe(401)

    expect(await counts()).toEqual(before)
    // and the server still serves
    expect((await safe().text('o_after', 'help')).status).toBe(200)
  })

  it('serves the same protocol with the node:crypto backend the Node entry uses', async () => {
    const native = await startServer(get().db, {
      router,
      crypto: nodeCrypto,
      config: threeAccounts(),
    })
    try {
      // The pusher on either backend too (the bench prepares its pushes with node:crypto): the
      // given one signs, seals and opens the reply.
      let calls = 0
      const counted: CryptoBackend = {
        sha1Hex(input) {
          calls++
          return nodeCrypto.sha1Hex(input)
        },
        sha256Hex(input) {
          calls++
          return nodeCrypto.sha256Hex(input)
        },
        aesCbc(key) {
          calls++
          return nodeCrypto.aesCbc(key)
        },
      }
      for (const mode of ['safe', 'compat'] as const)
        for (const crypto of [undefined, counted]) {
          const before = calls
          const wx = createPusher({
            url: `${native.url}/wechat/${COMPAT_ACCOUNT.appid}`,
            account: COMPAT_ACCOUNT,
            mode,
            crypto,
          })
          expect((await wx.text('o_native', 'help')).reply!.Content).toContain('help')
          // The cipher's key, the two signatures of the push and the reply's: 4 calls.
          expect(calls - before).toBe(crypto ? 4 : 0)
        }
    } finally {
      await native.close()
    }
  })

  it('accepts the previous EncodingAESKey during rotation and replies with it', async () => {
    const previous = 'kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR'
    const rotated = await startServer(get().db, {
      router,
      config: testConfig({ WECHAT_AES_KEY_PREVIOUS: previous }),
    })
    try {
      const old = createPusher({
        url: `${rotated.url}/wechat`,
        account: { ...SAFE_ACCOUNT, aesKey: previous },
      })
      const r = await old.text('o_rot', 'help')
      expect(r.reply!.Content).toContain('help')
    } finally {
      await rotated.close()
    }
  })

  // PGlite is one process by design; PostgreSQL is where several instances share a database.
  it.runIf(dbName === 'postgres')(
    'dedupes across two app instances sharing one database',
    async () => {
      const second = await startServer(get().open(), { router })
      try {
        const a = createPusher({ url: `${server.url}/wechat`, account: SAFE_ACCOUNT })
        const b = createPusher({ url: `${second.url}/wechat`, account: SAFE_ACCOUNT })
        const before = calls
        const fields = {
          FromUserName: 'o_multi',
          CreateTime: Math.floor(Date.now() / 1000),
          MsgType: 'text',
          Content: 'count',
          MsgId: BigInt(nextMsgId()),
        }
        const replies = await Promise.all([
          a.push(fields),
          b.push(fields),
          a.push(fields),
          b.push(fields),
        ])
        expect(calls - before).toBe(1)
        expect(new Set(replies.map((r) => r.reply!.Content)).size).toBe(1)
      } finally {
        await second.close()
      }
    },
  )
})
