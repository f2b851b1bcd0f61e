/**
 * The push simulator: sends what WeChat would send — signed, optionally encrypted (compatible or
 * safe mode), XML or JSON — to a running webhook over real HTTP, and opens the reply (checking its
 * signature). Used by `npm run chat`, the end-to-end tests and the bench.
 */
import {
  buildXml,
  type PushFields,
  type PushFormat,
  parsePush,
  type XmlObject,
} from '../wechat/codec.js'
import { type CryptoBackend, messageCipher, randomToken, signature } from '../wechat/crypto.js'

/** How the simulated account is configured in the MP console. */
export type PushMode = 'plain' | 'compat' | 'safe'

/** Options of {@link createPusher}. */
export interface PusherOptions {
  /** Webhook URL, e.g. `http://127.0.0.1:3000/wechat/wx…`. */
  url: string
  account: { appid: string; token: string; aesKey?: string }
  /** Default: `safe` when the account has an AES key, else `plain`. */
  mode?: PushMode
  format?: PushFormat
  /** The account's original id, sent as ToUserName. */
  ghId?: string
  /** Current time in ms (the timestamp query parameter). */
  now?: () => number
  /** SHA-1 and AES primitives (default Web Crypto; the bench prepares its pushes with node:crypto). */
  crypto?: CryptoBackend
}

/** A prepared request (the bench builds many ahead of time). */
export interface PreparedPush {
  url: string
  body: string
  contentType: string
}

/** What came back. */
export interface PushResult {
  status: number
  /** The raw response body. */
  body: string
  /** The reply's fields, decrypted when sealed; null for `success`, empty or an error. */
  reply: PushFields | null
}

let sequence = 0
/** A fresh 64-bit-looking MsgId. */
export function nextMsgId(): string {
  sequence = (sequence + 1) % 1000
  return `${Date.now()}${String(sequence).padStart(3, '0')}${Math.floor(Math.random() * 1000)
    .toString()
    .padStart(3, '0')}`
}

/**
 * A simulator bound to one account and mode.
 * @example
 * const wx = createPusher({ url, account })
 * const { reply } = await wx.text('o_alice', '帮助')
 */
export function createPusher(options: PusherOptions) {
  const mode: PushMode = options.mode ?? (options.account.aesKey ? 'safe' : 'plain')
  const format: PushFormat = options.format ?? 'xml'
  const ghId = options.ghId ?? 'gh_sandbox00000'
  const now = options.now ?? Date.now
  const cipher = options.account.aesKey
    ? messageCipher(options.account.aesKey, options.crypto)
    : undefined
  if (mode !== 'plain' && !cipher) throw new Error(`mode ${mode} needs the account's aesKey`)
  const serialize = (fields: XmlObject) =>
    format === 'xml'
      ? buildXml(fields)
      : JSON.stringify(fields, (_, v) => (typeof v === 'bigint' ? `#big${v}#` : v)).replace(
          /"#big(\d+)#"/g,
          '$1',
        )

  async function prepare(fields: XmlObject): Promise<PreparedPush> {
    const full: XmlObject = { ToUserName: ghId, ...fields }
    const timestamp = String(Math.floor(now() / 1000))
    const nonce = randomToken(10)
    const params = new URLSearchParams({
      signature: await signature([options.account.token, timestamp, nonce], options.crypto),
      timestamp,
      nonce,
      openid: String(full.FromUserName ?? ''),
    })
    let body = serialize(full)
    if (mode !== 'plain') {
      const encrypt = await cipher!.encrypt(body, options.account.appid)
      params.set('encrypt_type', 'aes')
      params.set(
        'msg_signature',
        await signature([options.account.token, timestamp, nonce, encrypt], options.crypto),
      )
      body = serialize(
        mode === 'safe' ? { ToUserName: ghId, Encrypt: encrypt } : { ...full, Encrypt: encrypt },
      )
    }
    const sep = options.url.includes('?') ? '&' : '?'
    return {
      url: `${options.url}${sep}${params}`,
      body,
      contentType: format === 'xml' ? 'text/xml' : 'application/json',
    }
  }

  async function send(prepared: PreparedPush): Promise<PushResult> {
    const res = await fetch(prepared.url, {
      method: 'POST',
      headers: { 'content-type': prepared.contentType },
      body: prepared.body,
    })
    const body = await res.text()
    return { status: res.status, body, reply: res.ok ? await openReply(body) : null }
  }

  /** Parses a reply; verifies and decrypts a sealed one. */
  async function openReply(body: string): Promise<PushFields | null> {
    if (body === '' || body === 'success') return null
    const fields = parsePush(body)
    if (typeof fields.Encrypt !== 'string') return fields
    const { MsgSignature, TimeStamp = '', Nonce = '' } = fields as Record<string, string>
    const expected = await signature(
      [options.account.token, TimeStamp, Nonce, fields.Encrypt],
      options.crypto,
    )
    if (expected !== MsgSignature) throw new Error('reply MsgSignature does not verify')
    const opened = await cipher!.decrypt(fields.Encrypt)
    if (opened.receiveId !== options.account.appid)
      throw new Error('reply sealed for another appid')
    return parsePush(opened.message)
  }

  const header = (openid: string, msgType: string) => ({
    FromUserName: openid,
    CreateTime: Math.floor(now() / 1000),
    MsgType: msgType,
  })

  return {
    mode,
    format,
    prepare,
    send,
    openReply,
    /** Pushes arbitrary fields (ToUserName is added). */
    push: async (fields: XmlObject) => send(await prepare(fields)),
    /** A text message from `openid`. */
    text: async (openid: string, content: string, msgId = nextMsgId()) =>
      send(await prepare({ ...header(openid, 'text'), Content: content, MsgId: BigInt(msgId) })),
    /** An event from `openid`, e.g. `event('o1', 'subscribe', { EventKey: 'qrscene_42' })`. */
    event: async (openid: string, event: string, extra: XmlObject = {}) =>
      send(await prepare({ ...header(openid, 'event'), Event: event, ...extra })),
  }
}

/** The simulator's type. */
export type Pusher = ReturnType<typeof createPusher>
