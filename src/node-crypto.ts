/**
 * The `node:crypto` backend for the WeChat envelope, injected by the Node entry. Synchronous
 * OpenSSL calls; same results as Web Crypto (the vector tests run both).
 */
import { createCipheriv, createDecipheriv, createHash } from 'node:crypto'
import type { CryptoBackend } from './wechat/crypto.js'

function run(
  cipher: ReturnType<typeof createCipheriv> | ReturnType<typeof createDecipheriv>,
  data: Uint8Array,
): Uint8Array<ArrayBuffer> {
  cipher.setAutoPadding(false)
  const head = cipher.update(data)
  const tail = cipher.final()
  const out = new Uint8Array(head.length + tail.length)
  out.set(head)
  out.set(tail, head.length)
  return out
}

/** OpenSSL through `node:crypto`. */
export const nodeCrypto: CryptoBackend = {
  async sha1Hex(input) {
    return createHash('sha1').update(input, 'utf8').digest('hex')
  },
  async sha256Hex(input) {
    return createHash('sha256').update(input, 'utf8').digest('hex')
  },
  aesCbc(key) {
    return {
      async encrypt(iv, data) {
        return run(createCipheriv('aes-256-cbc', key, iv), data)
      },
      async decrypt(iv, data) {
        return run(createDecipheriv('aes-256-cbc', key, iv), data)
      },
    }
  },
}
