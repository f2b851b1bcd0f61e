/**
 * The `node:crypto` backend for the WeChat envelope, injected by the Node entry. Synchronous
 * OpenSSL calls; same results as Web Crypto (the vector tests run both).
 */
import * as crypto from 'node:crypto'
import { type CryptoBackend, sameBase64, WechatCryptoError } from './wechat/crypto.js'

/**
 * One-shot digests (`crypto.hash`, Node ≥ 20.12) skip building a `Hash` object per call; older
 * Node 20 releases fall back to `createHash`.
 */
const digestHex: (algorithm: 'sha1' | 'sha256', input: string) => string =
  typeof crypto.hash === 'function'
    ? (algorithm, input) => crypto.hash(algorithm, input, 'hex')
    : (algorithm, input) => crypto.createHash(algorithm).update(input, 'utf8').digest('hex')

const BLOCK = 16

/** A Buffer's bytes as a plain Uint8Array (no copy): Buffer's `slice` would not copy. */
const bytesOf = (b: Buffer) =>
  new Uint8Array(b.buffer, b.byteOffset, b.length) as Uint8Array<ArrayBuffer>

function wholeBlocks(iv: Uint8Array, data: Uint8Array) {
  if (iv.length !== BLOCK) throw new RangeError('AES-CBC iv must be 16 bytes')
  if (data.length % BLOCK !== 0) throw new RangeError('AES-CBC data must be whole 16-byte blocks')
}

/**
 * AES-256-CBC for one key with one OpenSSL context per direction, kept for the process: building
 * a context per message (`createCipheriv`, its key schedule, `final`) cost more than the message's
 * own blocks. A kept CBC context chains each message onto the previous one's last ciphertext block
 * (`chain`), so the first block alone is corrected by `chain ⊕ iv` — XORed into the plaintext
 * before encrypting, into the output after decrypting — and every message comes out exactly as
 * from a fresh context with `iv` (src/node-crypto.test.ts checks that against fresh contexts for
 * arbitrary sequences). Padding is off, so `update` returns every block at once and nothing is
 * left inside the context between calls; the calls are synchronous, so no two interleave.
 */
function keptAesCbc(key: Uint8Array) {
  const start = new Uint8Array(BLOCK)
  const encryptor = crypto.createCipheriv('aes-256-cbc', key, start).setAutoPadding(false)
  const decryptor = crypto.createDecipheriv('aes-256-cbc', key, start).setAutoPadding(false)
  // Each context's last ciphertext block, copied in: no array is made for it per message.
  const encryptChain = new Uint8Array(BLOCK)
  const decryptChain = new Uint8Array(BLOCK)
  const correction = new Uint8Array(BLOCK)
  const keepLastBlock = (chain: Uint8Array, from: Uint8Array) => {
    for (let i = 0, at = from.length - BLOCK; i < BLOCK; i++) chain[i] = from[at + i]!
  }
  return {
    encrypt(iv: Uint8Array, data: Uint8Array): Uint8Array<ArrayBuffer> {
      wholeBlocks(iv, data)
      if (data.length === 0) return new Uint8Array(0)
      // The caller's first block is corrected in place and put back after (synchronously): its
      // array is left as given, without the copy that cost more than the blocks' AES.
      for (let i = 0; i < BLOCK; i++) {
        correction[i] = encryptChain[i]! ^ iv[i]!
        data[i]! ^= correction[i]!
      }
      let out: Uint8Array<ArrayBuffer>
      try {
        out = bytesOf(encryptor.update(data))
      } finally {
        for (let i = 0; i < BLOCK; i++) data[i]! ^= correction[i]!
      }
      keepLastBlock(encryptChain, out)
      return out
    },
    decrypt(iv: Uint8Array, data: Uint8Array): Uint8Array<ArrayBuffer> {
      wholeBlocks(iv, data)
      if (data.length === 0) return new Uint8Array(0)
      const out = bytesOf(decryptor.update(data))
      for (let i = 0; i < BLOCK; i++) out[i]! ^= decryptChain[i]! ^ iv[i]!
      // Copied: the caller's array may be a Buffer, whose memory is reused.
      keepLastBlock(decryptChain, data)
      return out
    },
  }
}

/** OpenSSL through `node:crypto`. */
export const nodeCrypto: CryptoBackend = {
  async sha1Hex(input) {
    return digestHex('sha1', input)
  },
  async sha256Hex(input) {
    return digestHex('sha256', input)
  },
  base64Encode(bytes) {
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('base64')
  },
  // Node's decoder is lenient (it skips or reinterprets what is not base64): what it decoded is
  // encoded again and must be the input, but for the unused bits of a padded end (`sameBase64`) —
  // the strings the portable decoder accepts. The round trip costs less than a regular
  // expression's check; with it, a third of the portable decoder's time (bench/README.md, session 39).
  base64Decode(text) {
    const bytes = Buffer.from(text, 'base64')
    if (!sameBase64(text, bytes.toString('base64')))
      throw new WechatCryptoError('invalid_base64', 'not valid base64')
    return bytesOf(bytes)
  },
  aesCbc(key) {
    const aes = keptAesCbc(key)
    return {
      async encrypt(iv, data) {
        return aes.encrypt(iv, data)
      },
      async decrypt(iv, data) {
        return aes.decrypt(iv, data)
      },
    }
  },
}
