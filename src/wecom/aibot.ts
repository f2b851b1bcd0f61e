/**
 * The WeCom AI bot (智能机器人) callback protocol, API mode (../shared/protocol/wecom-groups.md §2):
 * the OA envelope with receive id `""`, JSON bodies `{"encrypt": …}`, `msg_signature` over the
 * sorted token, timestamp, nonce and ciphertext, an *encrypted* echostr on URL verification, and
 * passive replies `{encrypt, msgsignature, timestamp, nonce}` (no underscore). Web Crypto only.
 */

import * as v from 'valibot'
import { WechatFormatError } from '../wechat/codec.js'
import {
  type MessageCipher,
  messageCipher,
  signature,
  timingSafeEqual,
  webCrypto,
} from '../wechat/crypto.js'
import { type EnvelopeShape, type ReplayStamp, readEnvelope } from '../wechat/envelope.js'
import { WecomCallbackError } from './callback-error.js'
import {
  type CallbackCodecOptions,
  type CallbackQuery,
  checkCallbackQuery,
} from './callback-query.js'

/**
 * The most UTF-8 bytes of an AI bot answer: a stream reply's `content` and a `response_url`
 * markdown both stop at 20480 (../shared/protocol/wecom-groups.md §2.4).
 */
export const AIBOT_TEXT_MAX_BYTES = 20480

/** A bot's credentials: the Token and EncodingAESKey set in the WeCom admin console. */
export interface AibotCredentials {
  token: string
  aesKey: string
}

/** The AI bot's envelope: `{"encrypt": …}` alone, JSON only. */
const AIBOT_ENVELOPE: EnvelopeShape = { key: 'encrypt', others: [], format: 'json' }

/** Text a database column can hold: no NUL (U+0000), which PostgreSQL text refuses. */
const text = v.pipe(
  v.string(),
  v.check((s) => !s.includes('\u0000'), 'must not contain NUL characters'),
)
/** An id WeCom gives (msgid, aibotid, chatid, userid): claimed, stored and compared as a key. */
const id = v.pipe(text, v.minLength(1, 'is required'), v.maxLength(128, 'is longer than 128'))
const content = v.object({ content: text })

/**
 * The fields of a decrypted callback that are read (§2.3: messages, stream refresh, events), each
 * checked for its type: anything else is not a callback WeCom sends and is refused (400) before it
 * is claimed or stored. Other fields are not looked at (they stay in `raw`).
 */
const aibotMessage = v.pipe(
  v.object({
    msgid: id,
    aibotid: id,
    chatid: v.optional(id),
    from: v.object({ userid: id, corpid: v.optional(text) }),
    msgtype: v.pipe(text, v.maxLength(64, 'is longer than 64')),
    text: v.optional(content),
    mixed: v.optional(
      v.object({
        msg_item: v.array(v.object({ msgtype: text, text: v.optional(content) })),
      }),
    ),
    event: v.optional(v.object({ eventtype: text })),
    response_url: v.optional(text),
  }),
  v.check((m) => m.msgtype !== 'text' || m.text !== undefined, 'a text message needs text'),
  v.check((m) => m.msgtype !== 'mixed' || m.mixed !== undefined, 'a mixed message needs mixed'),
)

/** A decrypted callback: the fields we use, checked; the whole message in `raw`. */
export type AibotMessage = v.InferOutput<typeof aibotMessage> & { raw: Record<string, unknown> }

export interface AibotCodec {
  /** GET verification: the decrypted echostr to answer with, raw. */
  verifyUrl(q: CallbackQuery): Promise<string>
  /** POST: verify and decrypt the JSON body; the stamp is for the replay cache. */
  open(q: CallbackQuery, body: string): Promise<{ message: AibotMessage; stamp: ReplayStamp }>
  /** The passive reply body for a reply plaintext (JSON), with the callback's nonce. */
  seal(plaintext: string, nonce: string, timestamp: number): Promise<string>
}

/**
 * The AI bot's callback codec. Always encrypted: a request is refused unless its query is signed
 * and fresh and its body is exactly `{"encrypt":"…"}`, all checked before anything is decrypted
 * or parsed.
 * @example const codec = aibotCodec({ token, aesKey }, { maxSkewSeconds: 300 })
 */
export function aibotCodec(c: AibotCredentials, o: CallbackCodecOptions = {}): AibotCodec {
  const backend = o.crypto ?? webCrypto
  const cipher: MessageCipher = messageCipher(c.aesKey, backend)
  async function check(q: CallbackQuery, encrypt: string) {
    const { msg_signature, timestamp, nonce } = checkCallbackQuery(q, o)
    const expected = await signature([c.token, timestamp, nonce, encrypt], backend)
    if (!timingSafeEqual(expected, msg_signature.toLowerCase()))
      throw new WecomCallbackError(401, 'msg_signature does not match')
    return { timestamp, nonce }
  }
  async function decrypt(encrypt: string) {
    let opened: Awaited<ReturnType<MessageCipher['decrypt']>>
    try {
      opened = await cipher.decrypt(encrypt)
    } catch {
      throw new WecomCallbackError(400, 'encrypt does not decrypt with this EncodingAESKey')
    }
    // An internal AI bot's receive id is the empty string.
    if (opened.receiveId !== '')
      throw new WecomCallbackError(400, 'receive id is not the AI bot\'s ("")')
    return opened.message
  }
  return {
    async verifyUrl(q) {
      if (!q.echostr) throw new WecomCallbackError(400, 'echostr is required')
      await check(q, q.echostr)
      return decrypt(q.echostr)
    },
    async open(q, body) {
      checkCallbackQuery(q, o) // before the body is looked at
      let encrypt: string
      try {
        encrypt = readEnvelope(body, AIBOT_ENVELOPE).encrypt
      } catch (error) {
        if (!(error instanceof WechatFormatError)) throw error
        throw new WecomCallbackError(400, `body is not {"encrypt": …}: ${error.message}`)
      }
      const { timestamp, nonce } = await check(q, encrypt)
      let raw: Record<string, unknown>
      try {
        raw = JSON.parse(await decrypt(encrypt))
      } catch (error) {
        if (error instanceof WecomCallbackError) throw error
        throw new WecomCallbackError(400, 'decrypted message is not JSON')
      }
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
        throw new WecomCallbackError(400, 'decrypted message is not a JSON object')
      const checked = v.safeParse(aibotMessage, raw, { abortPipeEarly: true })
      if (!checked.success)
        throw new WecomCallbackError(
          400,
          `not a message WeCom sends: ${checked.issues
            .map((i) => `${v.getDotPath(i) ?? 'message'}: ${i.message}`)
            .join('; ')}`,
        )
      return {
        message: { ...checked.output, raw },
        stamp: { timestamp, nonce, digest: await backend.sha256Hex(body) },
      }
    },
    async seal(plaintext, nonce, timestamp) {
      const encrypt = await cipher.encrypt(plaintext, '')
      const msgsignature = await signature([c.token, String(timestamp), nonce, encrypt], backend)
      return JSON.stringify({ encrypt, msgsignature, timestamp, nonce })
    },
  }
}

/** The text a message carries, with the leading @mention of the bot removed. */
export function aibotText(m: AibotMessage): string {
  const text =
    m.msgtype === 'text'
      ? (m.text?.content ?? '')
      : m.msgtype === 'mixed'
        ? (m.mixed?.msg_item ?? [])
            .filter((i) => i.msgtype === 'text')
            .map((i) => i.text?.content ?? '')
            .join(' ')
        : ''
  return text.replace(/^\s*@\S+\s*/, '').trim()
}
