/**
 * The official-account callback. `wechatPushOpener(options)` opens one request: GET answers URL
 * verification; POST enforces the account's encryption mode, checks freshness and the signature
 * (constant time) *before* reading anything but a strict envelope, decrypts compatible/safe mode,
 * checks the appid, parses XML or JSON and returns the typed message with the request's replay
 * stamp. `wechatWebhook(options)` is the same as Hono middleware, putting the push on
 * `c.get('wechat')`. `respondToWechat(c, push, body)` then answers, encrypting when the push was
 * encrypted.
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
import { COMPAT_ENVELOPE, type ReplayStamp, readEnvelope, SAFE_ENVELOPE } from './envelope.js'
import { type InboundMessage, toInboundMessage } from './message.js'
import { encryptReply } from './reply.js'

/**
 * 消息加解密方式, as set in the MP console. `safe`: only encrypted pushes (`encrypt_type=aes` with a
 * valid `msg_signature`); `compat`: plaintext or encrypted (the encrypted content wins); `plain`:
 * plaintext, and encrypted pushes only when an EncodingAESKey is configured to open them.
 */
export type EncryptionMode = 'plain' | 'compat' | 'safe'

/** The credentials the webhook needs for one account. */
export interface WebhookAccount {
  appid: string
  token: string
  aesKey?: string
  previousAesKey?: string
  /** Default: `safe` with an `aesKey`, else `plain`. */
  mode?: EncryptionMode
}

/** An account's encryption mode, defaulted as `loadConfig` does. */
export const encryptionMode = (account: WebhookAccount): EncryptionMode =>
  account.mode ?? (account.aesKey ? 'safe' : 'plain')

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
  /** The request's timestamp, nonce and body digest, for the replay cache. */
  stamp: ReplayStamp
}

declare module 'hono' {
  interface ContextVariableMap {
    wechat: WechatRequest
  }
}

const refuse = (status: 400 | 401 | 404, message: string) => new HTTPException(status, { message })

/** WeChat's nonces are short digits or letters; anything else is not a push. */
const NONCE = /^[\x21-\x7e]{1,64}$/
/** A SHA-1 in hex, as both signatures are. */
const SHA1_HEX = /^[0-9a-fA-F]{40}$/

/**
 * Verifies and opens official-account pushes, as a middleware: the opened push is put on the
 * context (`c.get('wechat')`) for the handler after it; a server's verification GET is answered
 * here.
 * @example app.on(['GET', 'POST'], '/wechat/:appid?', wechatWebhook({ account, maxSkewSeconds: 300 }), handler)
 */
export function wechatWebhook(options: WechatWebhookOptions): MiddlewareHandler {
  const open = wechatPushOpener(options)
  return async function wechatWebhookMiddleware(c, next) {
    const opened = await open(c)
    if (opened instanceof Response) return opened
    c.set('wechat', opened)
    await next()
  }
}

/**
 * The webhook's work as a function of the request, for a route that handles the push in the same
 * handler (src/routes/wechat.ts: no middleware level of its own to pass through): answers the
 * server's verification GET with its Response, or returns the verified, decrypted, typed push.
 * Refusals are thrown as HTTPExceptions (400, 401, 404).
 */
export function wechatPushOpener(
  options: WechatWebhookOptions,
): (c: Context) => Promise<WechatRequest | Response> {
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
    if (!given || !SHA1_HEX.test(given)) throw refuse(401, 'missing or malformed signature')
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
        const { message, receiveId } = await cipher.decrypt(encrypt)
        return { message, receiveId, cipher }
      } catch (error) {
        lastError = error
      }
    }
    throw lastError
  }

  return async function openPush(c) {
    const account = options.account(c.req.param('appid'))
    if (!account) throw refuse(404, 'unknown account')
    const q = c.req.query()
    const timestamp = q.timestamp ?? ''
    const nonce = q.nonce ?? ''
    if (!/^\d{1,12}$/.test(timestamp) || !NONCE.test(nonce))
      throw refuse(401, 'missing timestamp or nonce')
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

    const mode = encryptionMode(account)
    const encrypted = q.encrypt_type === 'aes'
    if (q.encrypt_type !== undefined && q.encrypt_type !== 'raw' && !encrypted) {
      throw refuse(400, 'unsupported encrypt_type')
    }
    // Nothing but the query string has been read yet: refusals here cost no body.
    if (!encrypted && mode === 'safe') {
      throw refuse(401, 'safe mode: only encrypted pushes (encrypt_type=aes, msg_signature)')
    }
    if (encrypted && !account.aesKey) {
      throw refuse(400, 'encrypted push but no EncodingAESKey configured (plain mode)')
    }
    if (encrypted && !SHA1_HEX.test(q.msg_signature ?? ''))
      throw refuse(401, 'missing or malformed msg_signature')
    if (!encrypted) await check([account.token, timestamp, nonce], q.signature)

    const body = await c.req.text()
    let fields: PushFields
    let format: PushFormat
    let seal: WechatRequest['seal']
    try {
      if (!encrypted) {
        ;({ fields, format } = parse(body))
      } else {
        // Before the signature is checked only the envelope's shape is read, by hand.
        const outer = readEnvelope(body, mode === 'safe' ? SAFE_ENVELOPE : COMPAT_ENVELOPE)
        await check([account.token, timestamp, nonce, outer.encrypt], q.msg_signature)
        const opened = await open(account, outer.encrypt)
        if (opened.receiveId !== account.appid) throw refuse(400, 'appid mismatch after decryption')
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
        ;({ fields, format } = parse(opened.message))
      }
      return {
        account,
        message: toInboundMessage(fields),
        format,
        encrypted,
        seal,
        stamp: { timestamp, nonce, digest: await backend.sha256Hex(body) },
      }
    } catch (error) {
      if (error instanceof WechatFormatError || error instanceof WechatCryptoError) {
        throw refuse(400, error.message)
      }
      throw error
    }
  }
}

function parse(body: string): { fields: PushFields; format: PushFormat } {
  const format = detectFormat(body)
  return { fields: parsePush(body, format), format }
}

/**
 * Answers the push `req`: `null` → `success`; otherwise the rendered plaintext reply, sealed when
 * the push was encrypted.
 */
export async function respondToWechat(
  c: Context,
  req: WechatRequest,
  body: string | null,
): Promise<Response> {
  if (body === null) return c.text('success')
  const type = req.format === 'json' ? 'application/json' : 'application/xml'
  return c.body(req.seal ? await req.seal(body) : body, 200, { 'content-type': type })
}
