/**
 * The signed query every WeCom callback carries (`msg_signature`, `timestamp`, `nonce`, and
 * `echostr` on URL verification), checked before the body is read, and the options the callback
 * codecs share.
 */
import type { CryptoBackend } from '../wechat/crypto.js'
import { WecomCallbackError } from './callback-error.js'

/** The callback's signed query parameters. */
export interface CallbackQuery {
  msg_signature?: string
  timestamp?: string
  nonce?: string
  echostr?: string
}

/** Options shared by the WeCom callback codecs. */
export interface CallbackCodecOptions {
  /** SHA-1, SHA-256 and AES primitives; Web Crypto by default. */
  crypto?: CryptoBackend
  /** Refuse timestamps further than this from now (seconds), like WECHAT_MAX_SKEW_SECONDS; 0 disables. */
  maxSkewSeconds?: number
  /** Current time in milliseconds (injected in tests). */
  now?: () => number
}

/**
 * Checks a WeCom callback's query before anything else: all three parameters (401 without), a
 * timestamp within `maxSkewSeconds` of now (401), a sane nonce. Costs no body and no crypto.
 */
export function checkCallbackQuery(
  q: CallbackQuery,
  o: CallbackCodecOptions,
): { msg_signature: string; timestamp: string; nonce: string } {
  const { msg_signature, timestamp, nonce } = q
  if (!msg_signature || !timestamp || !nonce)
    throw new WecomCallbackError(401, 'msg_signature, timestamp and nonce are required')
  if (
    !/^\d{1,12}$/.test(timestamp) ||
    !/^[\x21-\x7e]{1,64}$/.test(nonce) ||
    !/^[0-9a-fA-F]{40}$/.test(msg_signature)
  )
    throw new WecomCallbackError(401, 'malformed msg_signature, timestamp or nonce')
  // These doors always check freshness (WECHAT_MAX_SKEW_SECONDS=0 switches it off for the OA
  // webhook only): replay claims are pruned, so a capture must not stay valid for ever.
  const skew = o.maxSkewSeconds || 300
  if (skew > 0 && Math.abs((o.now ?? Date.now)() / 1000 - Number(timestamp)) > skew)
    throw new WecomCallbackError(401, 'stale timestamp')
  return { msg_signature, timestamp, nonce }
}
