import { createCipheriv, createHash } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { loadVectors } from '../../test/vectors.js'
import { nodeCrypto } from '../node-crypto.js'
import {
  base64Decode,
  base64Encode,
  type CryptoBackend,
  decodeAesKey,
  type MessageCipher,
  messageCipher,
  signature,
  toHex,
  WechatCryptoError,
  webCrypto,
} from './crypto.js'
import { checkMiniProgramSignature, decryptMiniProgramData } from './mini-program-crypto.js'

const vectors = loadVectors('wechat-crypto.json')
const ascii = (s: string) => new TextEncoder().encode(s)
const latin = (b: Uint8Array) => String.fromCharCode(...b)
const of = (kind: string) => vectors.filter((v) => v.kind === kind)

/** An envelope as the reference sample builds it, with node:crypto's fresh AES context. */
function referenceEnvelope(aesKey: string, message: string, receiveId: string, random: Uint8Array) {
  const key = Buffer.from(`${aesKey}=`, 'base64')
  const text = Buffer.from(message)
  const length = Buffer.alloc(4)
  length.writeUInt32BE(text.length)
  const body = Buffer.concat([random, length, text, Buffer.from(receiveId)])
  const pad = 32 - (body.length % 32)
  const aes = createCipheriv('aes-256-cbc', key, key.subarray(0, 16)).setAutoPadding(false)
  const plain = Buffer.concat([body, Buffer.alloc(pad, pad)])
  return Buffer.concat([aes.update(plain), aes.final()]).toString('base64')
}

/**
 * Seals `count` messages started together, twice (on a new cipher, then on the used one), and
 * expects each sealed as its own reference envelope.
 */
async function expectSealedTogether(
  cipher: MessageCipher,
  aesKey: string,
  count: number,
  filler: string,
) {
  for (const round of [1, 2]) {
    const messages = Array.from({ length: count }, (_, i) => `${round}-${i}${filler.repeat(i * 9)}`)
    const randoms = messages.map((_, i) => new Uint8Array(16).fill(round * 16 + i))
    const sealed = await Promise.all(
      messages.map((m, i) => cipher.encrypt(m, `wx${i}`, randoms[i])),
    )
    for (const [i, m] of messages.entries())
      expect(sealed[i]).toBe(referenceEnvelope(aesKey, m, `wx${i}`, randoms[i]!))
  }
}

const backends: [string, CryptoBackend][] = [
  ['web crypto', webCrypto],
  ['node:crypto', nodeCrypto],
]

for (const [backendName, backend] of backends) {
  const sig = (parts: string[]) => signature(parts, backend)
  const cipherOf = (key: string) => messageCipher(key, backend)

  describe(`wechat-crypto.json known answers [${backendName}]`, () => {
    it('covers every vector kind in the file', () => {
      const known = new Set([
        'oa-decrypt',
        'oa-encrypt',
        'wecom-verify-url',
        'wecom-decrypt',
        'wecom-encrypt',
        'aibot-decrypt',
        'oa-url-signature',
        'oa-msg-signature',
        'sha1-sort-signature',
        'wxa-decrypt',
        'wxa-signature',
      ])
      expect(vectors.filter((v) => !known.has(v.kind)).map((v) => v.id)).toEqual([])
    })

    for (const v of of('oa-url-signature')) {
      it(v.id, async () => {
        const { token, timestamp, nonce } = v.inputs
        expect(await sig([token!, timestamp!, nonce!])).toBe(v.expected.signature)
      })
    }

    for (const v of of('oa-msg-signature')) {
      it(v.id, async () => {
        const { token, timestamp, nonce, encrypt } = v.inputs
        expect(await sig([token!, timestamp!, nonce!, encrypt!])).toBe(v.expected.msg_signature)
      })
    }

    for (const v of of('sha1-sort-signature')) {
      it(v.id, async () => {
        expect(await sig(v.inputs.parts as unknown as string[])).toBe(v.expected.signature)
      })
    }

    for (const v of [...of('oa-decrypt'), ...of('wecom-decrypt'), ...of('aibot-decrypt')]) {
      it(v.id, async () => {
        const i = v.inputs
        const computed = await sig([i.token!, i.timestamp!, i.nonce!, i.encrypt!])
        expect(computed === i.msg_signature).toBe(v.expected.signatureValid)
        const opened = await cipherOf(i.encodingAESKey!).decrypt(i.encrypt!)
        expect(opened.message).toBe(v.expected.msg)
        expect(opened.receiveId).toBe(v.expected.appId ?? v.expected.receiveId)
        expect(latin(opened.random)).toBe(v.expected.random)
        if (v.expected.padLength !== undefined) expect(opened.padLength).toBe(v.expected.padLength)
        const fields = v.expected.fields as Record<string, string> | undefined
        for (const [k, val] of Object.entries(fields ?? {})) {
          expect(opened.message).toContain(
            `<${k}>${/^\d+$/.test(val) ? val : `<![CDATA[${val}]]>`}</${k}>`,
          )
        }
      })
    }

    for (const v of [...of('oa-encrypt'), ...of('wecom-encrypt')]) {
      it(v.id, async () => {
        const i = v.inputs
        const cipher = cipherOf(i.encodingAESKey!)
        const encrypt = await cipher.encrypt(i.msg!, i.appId ?? i.receiveId!, ascii(i.random!))
        expect(encrypt).toBe(v.expected.encrypt)
        expect(await sig([i.token!, i.timestamp!, i.nonce!, encrypt])).toBe(
          v.expected.msg_signature,
        )
        expect((await cipher.decrypt(encrypt)).message).toBe(i.msg)
      })
    }

    for (const v of of('wecom-verify-url')) {
      it(v.id, async () => {
        const i = v.inputs
        const valid =
          (await sig([i.token!, i.timestamp!, i.nonce!, i.echostr!])) === i.msg_signature
        expect(valid).toBe(v.expected.signatureValid)
        if (!valid) return
        const opened = await cipherOf(i.encodingAESKey!).decrypt(i.echostr!)
        expect(opened.message).toBe(v.expected.responseBody)
        expect(opened.receiveId).toBe(v.expected.receiveId)
        expect(latin(opened.random)).toBe(v.expected.random)
      })
    }

    for (const v of of('wxa-decrypt')) {
      it(v.id, async () => {
        const i = v.inputs
        const data = await decryptMiniProgramData(i.sessionKey!, i.iv!, i.encryptedData!, i.appId!)
        expect(data.openId).toBe(v.expected.openId)
        expect(data.unionId).toBe(v.expected.unionId)
        expect(data.watermark).toEqual(v.expected.watermark)
        await expect(
          decryptMiniProgramData(i.sessionKey!, i.iv!, i.encryptedData!, 'wx0000000000000000'),
        ).rejects.toThrow(WechatCryptoError)
      })
    }

    for (const v of of('wxa-signature')) {
      it(v.id, async () => {
        const i = v.inputs
        expect(
          await checkMiniProgramSignature(
            i.rawData!,
            i.sessionKey!,
            v.expected.signature as string,
          ),
        ).toBe(true)
        expect(
          await checkMiniProgramSignature(
            `${i.rawData} `,
            i.sessionKey!,
            v.expected.signature as string,
          ),
        ).toBe(false)
      })
    }
  })

  describe(`AES envelope [${backendName}]`, () => {
    const key = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG'

    it('derives the documented key and IV', () => {
      expect(toHex(decodeAesKey(key))).toBe(
        '69b71d79f8218a39259a7a29aabb2dbafc31cb3d35db7e39ebbf3d0010831051',
      )
    })

    it('round-trips every padding length 1..32 and multi-byte text', async () => {
      const cipher = cipherOf(key)
      for (let n = 0; n < 40; n++) {
        const msg = `中${'x'.repeat(n)}`
        const sealed = await cipher.encrypt(msg, 'wxappid')
        expect(base64Decode(sealed).length % 32).toBe(0)
        const opened = await cipher.decrypt(sealed)
        expect(opened.message).toBe(msg)
        expect(opened.receiveId).toBe('wxappid')
      }
    })

    it('seals exactly the envelope, whatever length came before (one plaintext buffer is reused)', async () => {
      const cipher = cipherOf(key)
      // Past the kept buffer (4 KiB) and past what it grows to (64 KiB), then short again: each
      // sealed as a fresh envelope of its own would be (stale bytes of a longer one never leak).
      const lengths = [5, 3000, 1, 30_000, 2, 700, 0]
      for (const [i, n] of lengths.entries()) {
        const message = `${i}${'圈'.repeat(n)}`
        const random = new Uint8Array(16).fill(i + 1)
        expect(await cipher.encrypt(message, `wx${i}`, random)).toBe(
          referenceEnvelope(key, message, `wx${i}`, random),
        )
      }
    })

    it('seals messages started together, on a new cipher and on a used one, each as its own', async () => {
      // Every call writes the same buffer: each is read before the next call writes it, even while
      // Web Crypto still imports a new cipher's key.
      await expectSealedTogether(cipherOf(key), key, 12, '签到')
    })

    it('refuses bad keys, base64, lengths and padding', async () => {
      expect(() => decodeAesKey('short')).toThrow(/43/)
      const cipher = cipherOf(key)
      await expect(cipher.decrypt('not base64!')).rejects.toMatchObject({
        reason: 'invalid_base64',
      })
      await expect(cipher.decrypt('AAAA')).rejects.toMatchObject({ reason: 'invalid_length' })
      // 32 random bytes almost never decrypt to valid padding
      const garbage = btoa(String.fromCharCode(...new Uint8Array(32).fill(7)))
      await expect(cipher.decrypt(garbage)).rejects.toBeInstanceOf(WechatCryptoError)
      const other = cipherOf('kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR')
      const sealed = await cipher.encrypt('hello', 'wxappid')
      await expect(other.decrypt(sealed)).rejects.toBeInstanceOf(WechatCryptoError)
    })
  })
}

describe('the kept plaintext buffer', () => {
  it('seals each message as its own even through a backend that reads its data late', async () => {
    // A backend breaking the interface's rule (it reads iv and data a tick after the call): the
    // cipher's buffer must not be written by the next call while this one is in flight.
    const late: CryptoBackend = {
      ...nodeCrypto,
      aesCbc(key) {
        const aes = nodeCrypto.aesCbc(key)
        return {
          async encrypt(iv, data) {
            await new Promise((resolve) => setTimeout(resolve, 1))
            return aes.encrypt(iv, data)
          },
          decrypt: (iv, data) => aes.decrypt(iv, data),
        }
      },
    }
    const key = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG'
    await expectSealedTogether(messageCipher(key, late), key, 8, '圈')
  })
})

describe('signature', () => {
  it("sorts its values by UTF-16 code units, as the reference's sort() does", async () => {
    // Prefixes of one another, equal values, astral characters and lone surrogates included.
    const value = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 6 }),
      fc.constantFrom('', 'a', 'ab', 'abc', 'B', '\uffff', '\ud83d', '\ud83d\ude00', '签到'),
    )
    await fc.assert(
      fc.asyncProperty(fc.array(value, { maxLength: 6 }), async (parts) => {
        const given = parts.slice()
        expect(await signature(parts, nodeCrypto)).toBe(
          createHash('sha1')
            .update([...parts].sort().join(''))
            .digest('hex'),
        )
        expect(parts).toEqual(given) // the caller's array is left as given
      }),
      { numRuns: 500 },
    )
  })
})

describe('base64', () => {
  it('encodes every length and byte as Node does, and decodes back', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const encoded = base64Encode(bytes)
        expect(encoded).toBe(Buffer.from(bytes).toString('base64'))
        expect([...base64Decode(encoded)]).toEqual([...bytes])
      }),
      { numRuns: 500 },
    )
  })
})
