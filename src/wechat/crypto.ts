/**
 * WeChat message crypto (official accounts, WeCom, the WeCom AI bot): SHA-1 signatures and the
 * AES-256-CBC envelope with 32-byte PKCS#7 padding. Web Crypto only, so it runs on Workers.
 *
 * Envelope: `Base64(AES-256-CBC(key, iv = key[0:16], random(16) || len(4, BE) || msg || receiveId || pad))`
 * where `pad` fills to a multiple of 32 bytes (1..32 bytes of value `pad`).
 */

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })
const BLOCK = 32
/** A cipher's kept plaintext buffer: room for a message of some 1,300 UTF-16 units… */
const SCRATCH_BYTES = 4096
/** …grown for longer ones up to this; a longer message gets a buffer of its own. */
const SCRATCH_MAX_BYTES = 64 * 1024

/** Why an envelope or key was refused; maps to the Tencent sample's error codes. */
export type WechatCryptoReason =
  | 'invalid_aes_key'
  | 'invalid_base64'
  | 'invalid_length'
  | 'invalid_padding'
  | 'invalid_utf8'
  | 'receive_id_mismatch'

/** A key, ciphertext or plaintext that the envelope rules refuse. Never carries key material. */
export class WechatCryptoError extends Error {
  override readonly name = 'WechatCryptoError'
  constructor(
    readonly reason: WechatCryptoReason,
    message: string,
  ) {
    super(message)
  }
}

/**
 * The primitives the envelope needs. The default is Web Crypto (Workers, browsers, Node); the Node
 * entry injects `node:crypto` (src/node-crypto.ts), whose synchronous calls avoid Web Crypto's
 * thread-pool hop and are several times faster there. Both pass the same known-answer vectors.
 */
export interface CryptoBackend {
  /** Lowercase hex SHA-1 of a UTF-8 string. */
  sha1Hex(input: string): Promise<string>
  /** Lowercase hex SHA-256 of a UTF-8 string (request digests for the replay cache). */
  sha256Hex(input: string): Promise<string>
  /**
   * Standard base64 with padding, when the runtime has it natively (the sealed reply); else
   * {@link base64Encode}.
   */
  base64Encode?(bytes: Uint8Array): string
  /**
   * {@link base64Decode} with the runtime's native decoder (an envelope's `Encrypt`, OA and WeCom):
   * the same strings accepted, the same bytes; throws {@link WechatCryptoError} (`invalid_base64`)
   * on the others.
   */
  base64Decode?(text: string): Uint8Array<ArrayBuffer>
  /**
   * AES-256-CBC with no padding of its own: data is whole 16-byte blocks. Both calls have read `iv`
   * and `data` when they return (the caller may reuse that memory at once: {@link messageCipher}),
   * and what they resolve to shares no memory with either.
   */
  aesCbc(key: Uint8Array<ArrayBuffer>): {
    encrypt(
      iv: Uint8Array<ArrayBuffer>,
      data: Uint8Array<ArrayBuffer>,
    ): Promise<Uint8Array<ArrayBuffer>>
    decrypt(
      iv: Uint8Array<ArrayBuffer>,
      data: Uint8Array<ArrayBuffer>,
    ): Promise<Uint8Array<ArrayBuffer>>
  }
}

/** The Web Crypto backend, available on every runtime. */
export const webCrypto: CryptoBackend = {
  async sha1Hex(input) {
    return toHex(new Uint8Array(await crypto.subtle.digest('SHA-1', encoder.encode(input))))
  },
  async sha256Hex(input) {
    return toHex(new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(input))))
  },
  aesCbc(raw) {
    // `subtle` copies its arguments when called. Once the key is imported, `encrypt` calls it before
    // its first await; until then it awaits the import with copies of the caller's arrays.
    let key: CryptoKey | undefined
    const imported = crypto.subtle
      .importKey('raw', raw, 'AES-CBC', false, ['encrypt', 'decrypt'])
      .then((k) => {
        key = k
        return k
      })
    const sixteen = new Uint8Array(16).fill(16)
    return {
      async encrypt(iv, data) {
        const length = data.length
        const out = key
          ? await crypto.subtle.encrypt({ name: 'AES-CBC', iv }, key, data)
          : await encryptWhenImported(imported, iv.slice(), data.slice())
        // Web Crypto always appends a 16-byte PKCS#7 block; the data is already padded: drop it.
        return new Uint8Array(out, 0, length)
      },
      async decrypt(iv, data) {
        // Web Crypto insists on 16-byte PKCS#7: append one block that decrypts to 16 × 0x10, so it
        // strips exactly that and leaves the caller's own padding in place. The caller's arrays
        // are copied before anything is awaited.
        const first = iv.slice()
        const input = new Uint8Array(data.length + 16)
        input.set(data)
        const k = key ?? (await imported)
        const last = input.slice(data.length - 16, data.length)
        const extra = await crypto.subtle.encrypt({ name: 'AES-CBC', iv: last }, k, sixteen)
        input.set(new Uint8Array(extra, 0, 16), data.length)
        return new Uint8Array(await crypto.subtle.decrypt({ name: 'AES-CBC', iv: first }, k, input))
      },
    }
  },
}

/** Encrypts (Web Crypto) with a key still being imported: the arrays are the caller's copies. */
async function encryptWhenImported(
  imported: Promise<CryptoKey>,
  iv: Uint8Array<ArrayBuffer>,
  data: Uint8Array<ArrayBuffer>,
): Promise<ArrayBuffer> {
  return crypto.subtle.encrypt({ name: 'AES-CBC', iv }, await imported, data)
}

/** Lowercase hex SHA-1 of a UTF-8 string. */
export function sha1Hex(input: string, backend: CryptoBackend = webCrypto): Promise<string> {
  return backend.sha1Hex(input)
}

/** Lowercase hex SHA-256 of a UTF-8 string. */
export function sha256Hex(input: string, backend: CryptoBackend = webCrypto): Promise<string> {
  return backend.sha256Hex(input)
}

/**
 * WeChat's signature: SHA-1 over the plain lexicographic sort of the values, joined without separator.
 * @example await signature([token, timestamp, nonce])            // `signature`
 * @example await signature([token, timestamp, nonce, encrypt])   // `msg_signature`
 */
export function signature(
  parts: readonly string[],
  backend: CryptoBackend = webCrypto,
): Promise<string> {
  // Sorted by UTF-16 code units, as `sort()` sorts strings, by insertion into a copy: V8's sort
  // makes work arrays of its own for these three or four values, twice a push.
  const sorted = parts.slice()
  for (let i = 1; i < sorted.length; i++) {
    const value = sorted[i]!
    let j = i
    for (; j > 0 && sorted[j - 1]! > value; j--) sorted[j] = sorted[j - 1]!
    sorted[j] = value
  }
  return backend.sha1Hex(sorted.join(''))
}

/** Compares two strings in time independent of where they differ (length is not secret). */
export function timingSafeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false
  let diff = 0
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i)
  return diff === 0
}

/** Decodes an EncodingAESKey (43 characters of base64 without the trailing `=`) to its 32 bytes. */
export function decodeAesKey(encodingAesKey: string): Uint8Array<ArrayBuffer> {
  if (!/^[A-Za-z0-9+/]{43}$/.test(encodingAesKey)) {
    throw new WechatCryptoError('invalid_aes_key', 'EncodingAESKey must be 43 base64 characters')
  }
  const key = base64Decode(`${encodingAesKey}=`)
  if (key.length !== 32) throw new WechatCryptoError('invalid_aes_key', 'AES key is not 32 bytes')
  return key
}

/** The plaintext of an envelope and what surrounded it. */
export interface OpenedEnvelope {
  message: string
  receiveId: string
  random: Uint8Array
  padLength: number
}

/** Seals and opens WeChat AES envelopes for one EncodingAESKey. */
export interface MessageCipher {
  /** Encrypts `message` for `receiveId`; `random` (16 bytes) defaults to fresh random bytes. */
  encrypt(message: string, receiveId: string, random?: Uint8Array<ArrayBuffer>): Promise<string>
  /** Decrypts and unpads; throws {@link WechatCryptoError} on bad base64, length or padding. */
  decrypt(encrypted: string): Promise<OpenedEnvelope>
}

/**
 * Builds a cipher for one EncodingAESKey (on `backend`, Web Crypto by default); the key is
 * prepared once and reused.
 * @example
 * const cipher = messageCipher(aesKey)
 * const { message, receiveId } = await cipher.decrypt(encrypt)
 */
export function messageCipher(
  encodingAesKey: string,
  backend: CryptoBackend = webCrypto,
): MessageCipher {
  const raw = decodeAesKey(encodingAesKey)
  const iv = raw.slice(0, 16)
  const aes = backend.aesCbc(raw)
  const encode = backend.base64Encode ?? base64Encode
  const decode = backend.base64Decode ?? base64Decode

  // The plaintext envelope is written into one buffer kept for the cipher: the message and the
  // receiveId encoded straight into it (`encodeInto`), not each into an array of its own and then
  // copied — a typed array outside V8's heap costs more to make than the reply's AES (bench/README.md,
  // session 44). It serves one call at a time, until its backend's promise settles, and is wiped
  // then: a call started meanwhile gets an array of its own, so no backend can seal another
  // message's bytes, whenever it reads its data.
  let scratch: Uint8Array<ArrayBuffer> | undefined
  let sealing = false
  return {
    async encrypt(message, receiveId, random = randomBytes(16)) {
      if (random.length !== 16)
        throw new WechatCryptoError('invalid_length', 'random must be 16 bytes')
      // UTF-8 takes at most 3 bytes per UTF-16 unit; room for the longest padding too.
      const most = 20 + 3 * (message.length + receiveId.length) + BLOCK
      // A buffer for one huge message is not kept (it would be held for the process).
      const kept = !sealing && most <= SCRATCH_MAX_BYTES
      if (kept && (!scratch || scratch.length < most))
        scratch = new Uint8Array(Math.max(SCRATCH_BYTES, most))
      const plain = kept ? scratch! : new Uint8Array(most)
      const msgLength = encoder.encodeInto(message, plain.subarray(20)).written
      const bodyLength =
        20 + msgLength + encoder.encodeInto(receiveId, plain.subarray(20 + msgLength)).written
      const pad = BLOCK - (bodyLength % BLOCK)
      plain.set(random, 0)
      // The message's length, 4 bytes big-endian.
      plain[16] = msgLength >>> 24
      plain[17] = (msgLength >>> 16) & 255
      plain[18] = (msgLength >>> 8) & 255
      plain[19] = msgLength & 255
      plain.fill(pad, bodyLength, bodyLength + pad)
      if (kept) sealing = true
      try {
        return encode(await aes.encrypt(iv, plain.subarray(0, bodyLength + pad)))
      } finally {
        if (kept) {
          plain.fill(0, 0, bodyLength + pad)
          sealing = false
        }
      }
    },

    async decrypt(encrypted) {
      const data = decode(encrypted)
      if (data.length === 0 || data.length % BLOCK !== 0) {
        throw new WechatCryptoError(
          'invalid_length',
          'ciphertext is not a whole number of 32-byte blocks',
        )
      }
      const plain = await aes.decrypt(iv, data)
      const pad = plain[plain.length - 1]!
      if (pad < 1 || pad > BLOCK)
        throw new WechatCryptoError('invalid_padding', 'bad padding value')
      for (let i = plain.length - pad; i < plain.length; i++) {
        if (plain[i] !== pad) throw new WechatCryptoError('invalid_padding', 'inconsistent padding')
      }
      const body = plain.subarray(0, plain.length - pad)
      if (body.length < 20) throw new WechatCryptoError('invalid_length', 'envelope too short')
      const msgLength = ((body[16]! << 24) | (body[17]! << 16) | (body[18]! << 8) | body[19]!) >>> 0
      if (20 + msgLength > body.length) {
        throw new WechatCryptoError('invalid_length', 'message length exceeds envelope')
      }
      try {
        return {
          message: decoder.decode(body.subarray(20, 20 + msgLength)),
          receiveId: decoder.decode(body.subarray(20 + msgLength)),
          random: body.slice(0, 16),
          padLength: pad,
        }
      } catch {
        throw new WechatCryptoError('invalid_utf8', 'envelope is not valid UTF-8')
      }
    },
  }
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
const B64_INDEX = new Int16Array(128).fill(-1)
for (let i = 0; i < 64; i++) B64_INDEX[B64.charCodeAt(i)] = i

/**
 * Strict standard base64 (with padding) → bytes: no whitespace, no other alphabet, no missing
 * padding. The bits a padded end leaves unused are not read (an EncodingAESKey, 43 characters and
 * `=`, has two of them set).
 */
export function base64Decode(input: string): Uint8Array<ArrayBuffer> {
  const n = input.length
  if (n % 4 !== 0) throw new WechatCryptoError('invalid_base64', 'not valid base64')
  const pad = n === 0 ? 0 : input.endsWith('==') ? 2 : input.endsWith('=') ? 1 : 0
  const out = new Uint8Array((n / 4) * 3 - pad)
  let o = 0
  for (let i = 0; i < n; i += 4) {
    const last = i + 4 === n
    const a = sextet(input, i)
    const b = sextet(input, i + 1)
    const c = last && pad === 2 ? 0 : sextet(input, i + 2)
    const d = last && pad >= 1 ? 0 : sextet(input, i + 3)
    const v = (a << 18) | (b << 12) | (c << 6) | d
    out[o++] = v >> 16
    if (o < out.length) out[o++] = (v >> 8) & 255
    if (o < out.length) out[o++] = v & 255
  }
  return out
}

/**
 * Whether `encoded`, what an encoder wrote for the bytes a lenient decoder read from `text`, says
 * that `text` was strict base64: the same string, or one that differs only in the unused bits of its
 * padded end (which {@link base64Decode} does not read either).
 */
export function sameBase64(text: string, encoded: string): boolean {
  if (text === encoded) return true
  const n = text.length
  const pad = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0
  if (encoded.length !== n || pad === 0) return false
  const k = n - 1 - pad
  const given = b64Value(text.charCodeAt(k))
  return (
    given >= 0 &&
    (given & (pad === 2 ? ~15 : ~3)) === b64Value(encoded.charCodeAt(k)) &&
    text.startsWith(encoded.slice(0, k)) &&
    text.endsWith(encoded.slice(k + 1))
  )
}

/** A character code's value in the base64 alphabet; -1 for anything else. */
const b64Value = (code: number): number => (code < 128 ? B64_INDEX[code]! : -1)

function sextet(s: string, i: number): number {
  const v = b64Value(s.charCodeAt(i))
  if (v < 0) throw new WechatCryptoError('invalid_base64', 'not valid base64')
  return v
}

/** The alphabet's character codes, and a decoder to turn them into a string in one step. */
const B64_CODES = Uint8Array.from(B64, (c) => c.charCodeAt(0))
const ascii = new TextDecoder()

/**
 * Bytes → standard base64 with padding. The characters are written into a byte array and decoded
 * once: appending to a string four characters at a time allocated ~25 KB per 1 KB reply.
 */
export function base64Encode(bytes: Uint8Array): string {
  const n = bytes.length
  const out = new Uint8Array(Math.ceil(n / 3) * 4)
  let o = 0
  let i = 0
  for (; i + 2 < n; i += 3) {
    const v = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!
    out[o++] = B64_CODES[v >> 18]!
    out[o++] = B64_CODES[(v >> 12) & 63]!
    out[o++] = B64_CODES[(v >> 6) & 63]!
    out[o++] = B64_CODES[v & 63]!
  }
  if (i < n) {
    const v = (bytes[i]! << 16) | ((i + 1 < n ? bytes[i + 1]! : 0) << 8)
    out[o++] = B64_CODES[v >> 18]!
    out[o++] = B64_CODES[(v >> 12) & 63]!
    out[o++] = i + 1 < n ? B64_CODES[(v >> 6) & 63]! : 0x3d
    out[o++] = 0x3d // '='
  }
  return ascii.decode(out)
}

/** Bytes → lowercase hex. */
export function toHex(bytes: Uint8Array): string {
  let out = ''
  for (const b of bytes) out += b.toString(16).padStart(2, '0')
  return out
}

let pool = new Uint8Array(0)
let poolOffset = 0

/** `n` bytes from the CSPRNG, drawn in 4 KiB batches (one `getRandomValues` call per batch). */
export function randomBytes(n: number): Uint8Array<ArrayBuffer> {
  if (n > 1024) return crypto.getRandomValues(new Uint8Array(n))
  if (poolOffset + n > pool.length) {
    pool = crypto.getRandomValues(new Uint8Array(4096))
    poolOffset = 0
  }
  // Copied out and wiped byte by byte: a slice and a fill cost more than 16 bytes' loop.
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i++) {
    out[i] = pool[poolOffset + i]!
    pool[poolOffset + i] = 0
  }
  poolOffset += n
  return out
}

/** A random alphanumeric string (nonces). Rejection sampling keeps it unbiased. */
export function randomToken(length: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
  let out = ''
  while (out.length < length) {
    for (const b of randomBytes(length)) {
      if (b < 248 && out.length < length) out += alphabet[b % 62]
    }
  }
  return out
}
