/**
 * The WeCom AI bot (智能机器人) callback protocol, API mode (../shared/protocol/wecom-groups.md §2):
 * the OA envelope with receive id `""`, JSON bodies `{"encrypt": …}`, `msg_signature` over the
 * sorted token, timestamp, nonce and ciphertext, an *encrypted* echostr on URL verification, and
 * passive replies `{encrypt, msgsignature, timestamp, nonce}` (no underscore). Web Crypto only.
 */

import {
  type CryptoBackend,
  type MessageCipher,
  messageCipher,
  signature,
  timingSafeEqual,
  webCrypto,
} from '../wechat/crypto.js'
import { WecomCallbackError } from './callback-error.js'

/** A bot's credentials: the Token and EncodingAESKey set in the WeCom admin console. */
export interface AibotCredentials {
  token: string
  aesKey: string
}

/** A decrypted callback (the fields we use; others are kept in `raw`). */
export interface AibotMessage {
  msgid: string
  aibotid: string
  chatid?: string
  chattype: 'single' | 'group'
  from: { userid: string; corpid?: string }
  msgtype: string
  text?: { content: string }
  mixed?: { msg_item: { msgtype: string; text?: { content: string } }[] }
  event?: { eventtype: string }
  response_url?: string
  raw: Record<string, unknown>
}

export interface AibotCodec {
  /** GET verification: the decrypted echostr to answer with, raw. */
  verifyUrl(q: {
    msg_signature?: string
    timestamp?: string
    nonce?: string
    echostr?: string
  }): Promise<string>
  /** POST: verify and decrypt the JSON body. */
  open(
    q: { msg_signature?: string; timestamp?: string; nonce?: string },
    body: string,
  ): Promise<AibotMessage>
  /** The passive reply body for a reply plaintext (JSON), with the callback's nonce. */
  seal(plaintext: string, nonce: string, timestamp: number): Promise<string>
}

export function aibotCodec(c: AibotCredentials, backend: CryptoBackend = webCrypto): AibotCodec {
  const cipher: MessageCipher = messageCipher(c.aesKey, backend)
  async function check(
    parts: { msg_signature?: string; timestamp?: string; nonce?: string },
    encrypt: string,
  ) {
    const { msg_signature, timestamp, nonce } = parts
    if (!msg_signature || !timestamp || !nonce)
      throw new WecomCallbackError(400, 'msg_signature, timestamp and nonce are required')
    const expected = await signature([c.token, timestamp, nonce, encrypt], backend)
    if (!timingSafeEqual(expected, msg_signature))
      throw new WecomCallbackError(401, 'msg_signature does not match')
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
      let envelope: { encrypt?: unknown }
      try {
        envelope = JSON.parse(body)
      } catch {
        throw new WecomCallbackError(400, 'body is not JSON')
      }
      if (typeof envelope.encrypt !== 'string')
        throw new WecomCallbackError(400, 'body has no encrypt')
      await check(q, envelope.encrypt)
      let raw: Record<string, unknown>
      try {
        raw = JSON.parse(await decrypt(envelope.encrypt))
      } catch (error) {
        if (error instanceof WecomCallbackError) throw error
        throw new WecomCallbackError(400, 'decrypted message is not JSON')
      }
      if (typeof raw.msgid !== 'string' || typeof raw.msgtype !== 'string')
        throw new WecomCallbackError(400, 'message without msgid or msgtype')
      const from = raw.from as { userid?: unknown } | undefined
      if (typeof from?.userid !== 'string')
        throw new WecomCallbackError(400, 'message without from.userid')
      return { ...(raw as unknown as Omit<AibotMessage, 'raw'>), raw }
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
