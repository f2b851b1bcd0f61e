/**
 * `wechatWebhook(options)`: the official-account callback as Hono middleware. GET answers URL
 * verification; POST checks the signature (constant time) and freshness, decrypts compatible/safe
 * mode, checks the appid, parses XML or JSON, types the message and puts it on `c.var.wechat`.
 * `respondToWechat(c, body)` then answers, encrypting when the push was encrypted.
 */
import type { Context, MiddlewareHandler } from 'hono'
import { HTTPException } from 'hono/http-exception'
import {
  detectFormat,
  type PushFields,
  type PushFormat,
  parsePush,
  WechatFormatError,
} from './codec.js'
import {
  type CryptoBackend,
  type MessageCipher,
  messageCipher,
  randomToken,
  signature,
  timingSafeEqual,
  WechatCryptoError,
  webCrypto,
} from './crypto.js'
import { type InboundMessage, toInboundMessage } from './message.js'
import { encryptReply } from './reply.js'

/** The credentials the webhook needs for one account. */
export interface WebhookAccount {
  appid: string
  token: string
  aesKey?: string
  previousAesKey?: string
}

/** Options of {@link wechatWebhook}. */
export interface WechatWebhookOptions {
  /** The account for a request: the `:appid` path parameter, or undefined for the default. */
  account(appid: string | undefined): WebhookAccount | undefined
  /** Refuse timestamps further than this from now (seconds); 0 disables. */
  maxSkewSeconds: number
  /** Current time in milliseconds (injected in tests). */
  now?: () => number
  /** SHA-1 and AES primitives; Web Crypto by default, `node:crypto` from the Node entry. */
  crypto?: CryptoBackend
}

/** A verified, decrypted, typed push, as handlers see it. */
export interface WechatRequest {
  account: WebhookAccount
  message: InboundMessage
  format: PushFormat
  /** True when the push came encrypted (`encrypt_type=aes`); the reply is encrypted too. */
  encrypted: boolean
  /** Seals a plaintext reply with the key that opened the push (current or previous). */
  seal?: (body: string) => Promise<string>
}

declare module 'hono' {
  interface ContextVariableMap {
    wechat: WechatRequest
  }
}

const refuse = (status: 400 | 401 | 404, message: string) => new HTTPException(status, { message })

/**
 * Verifies and opens official-account pushes.
 * @example app.on(['GET', 'POST'], '/wechat/:appid?', wechatWebhook({ account, maxSkewSeconds: 300 }), handler)
 */
export function wechatWebhook(options: WechatWebhookOptions): MiddlewareHandler {
  const now = options.now ?? Date.now
  const backend = options.crypto ?? webCrypto
  const ciphers = new Map<string, MessageCipher>()
  const cipherFor = (aesKey: string) => {
    let cipher = ciphers.get(aesKey)
    if (!cipher) {
      cipher = messageCipher(aesKey, backend)
      ciphers.set(aesKey, cipher)
    }
    return cipher
  }
  const check = async (parts: string[], given: string | undefined) => {
    if (!given) throw refuse(401, 'missing signature')
    const expected = await signature(parts, backend)
    if (!timingSafeEqual(expected, given.toLowerCase())) throw refuse(401, 'bad signature')
  }
  /** Decrypts with the current key, then the previous one (EncodingAESKey rotation). */
  const open = async (account: WebhookAccount, encrypt: string) => {
    const keys = [account.aesKey, account.previousAesKey].filter((k): k is string => !!k)
    let lastError: unknown
    for (const key of keys) {
      const cipher = cipherFor(key)
      try {
        return { ...(await cipher.decrypt(encrypt)), cipher }
      } catch (error) {
        lastError = error
      }
    }
    throw lastError
  }

  return async function wechatWebhookMiddleware(c, next) {
    const account = options.account(c.req.param('appid'))
    if (!account) throw refuse(404, 'unknown account')
    const q = c.req.query()
    const timestamp = q.timestamp ?? ''
    const nonce = q.nonce ?? ''
    if (!/^\d{1,12}$/.test(timestamp) || !nonce) throw refuse(401, 'missing timestamp or nonce')
    if (
      options.maxSkewSeconds > 0 &&
      Math.abs(now() / 1000 - Number(timestamp)) > options.maxSkewSeconds
    ) {
      throw refuse(401, 'stale timestamp')
    }

    if (c.req.method === 'GET') {
      await check([account.token, timestamp, nonce], q.signature)
      if (q.echostr === undefined) throw refuse(400, 'missing echostr')
      return c.text(q.echostr)
    }

    const body = await c.req.text()
    const encrypted = q.encrypt_type === 'aes'
    if (q.encrypt_type !== undefined && q.encrypt_type !== 'raw' && !encrypted) {
      throw refuse(400, 'unsupported encrypt_type')
    }
    let fields: PushFields
    let format: PushFormat
    let seal: WechatRequest['seal']
    try {
      if (!encrypted) {
        await check([account.token, timestamp, nonce], q.signature)
        ;({ fields, format } = parse(body))
      } else {
        if (!q.msg_signature) throw refuse(401, 'missing msg_signature')
        if (!account.aesKey) throw refuse(400, 'encrypted push but no EncodingAESKey configured')
        const outer = parseEnvelope(body)
        const encrypt = outer.fields.Encrypt
        if (typeof encrypt !== 'string' || encrypt === '') throw refuse(400, 'missing Encrypt')
        await check([account.token, timestamp, nonce, encrypt], q.msg_signature)
        const opened = await open(account, encrypt)
        seal = (reply) =>
          encryptReply(reply, {
            cipher: opened.cipher,
            token: account.token,
            receiveId: account.appid,
            timestamp: String(Math.floor(now() / 1000)),
            nonce: randomToken(16),
            format: outer.format,
            crypto: backend,
          })
        if (opened.receiveId !== account.appid) throw refuse(400, 'appid mismatch after decryption')
        ;({ fields, format } = parse(opened.message))
      }
      c.set('wechat', {
        account,
        message: toInboundMessage(fields),
        format,
        encrypted,
        seal,
      })
    } catch (error) {
      if (error instanceof WechatFormatError || error instanceof WechatCryptoError) {
        throw refuse(400, error.message)
      }
      throw error
    }
    await next()
  }
}

/**
 * The safe-mode XML envelope has one fixed shape; match it directly and fall back to the full
 * parser for anything else (compatible mode, JSON, unusual whitespace). The signature check that
 * follows authenticates `Encrypt` either way.
 */
const SAFE_ENVELOPE =
  /^\s*<xml>\s*(?:<ToUserName><!\[CDATA\[[^\]<]*\]\]><\/ToUserName>\s*)?<Encrypt><!\[CDATA\[([A-Za-z0-9+/=]+)\]\]><\/Encrypt>\s*(?:<ToUserName><!\[CDATA\[[^\]<]*\]\]><\/ToUserName>\s*)?<\/xml>\s*$/

function parseEnvelope(body: string): { fields: PushFields; format: PushFormat } {
  const match = SAFE_ENVELOPE.exec(body)
  return match ? { fields: { Encrypt: match[1]! }, format: 'xml' } : parse(body)
}

function parse(body: string): { fields: PushFields; format: PushFormat } {
  const format = detectFormat(body)
  return { fields: parsePush(body, format), format }
}

/**
 * Answers the push: `null` → `success`; otherwise the rendered plaintext reply, sealed when the
 * push was encrypted.
 */
export async function respondToWechat(c: Context, body: string | null): Promise<Response> {
  const req = c.var.wechat
  if (body === null) return c.text('success')
  const type = req.format === 'json' ? 'application/json' : 'application/xml'
  return c.body(req.seal ? await req.seal(body) : body, 200, { 'content-type': type })
}
