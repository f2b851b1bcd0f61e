import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { nodeCrypto } from './node-crypto.js'
import { base64Decode, base64Encode, WechatCryptoError } from './wechat/crypto.js'

/** AES-256-CBC as a fresh OpenSSL context per message computes it: the reference. */
function fresh(
  direction: 'encrypt' | 'decrypt',
  key: Uint8Array,
  iv: Uint8Array,
  data: Uint8Array,
) {
  const c =
    direction === 'encrypt'
      ? createCipheriv('aes-256-cbc', key, iv)
      : createDecipheriv('aes-256-cbc', key, iv)
  c.setAutoPadding(false)
  return new Uint8Array(Buffer.concat([c.update(data), c.final()]))
}

const blocks = fc
  .integer({ min: 0, max: 12 })
  .chain((n) => fc.uint8Array({ minLength: n * 16, maxLength: n * 16 }))
const step = fc.record({
  direction: fc.constantFrom('encrypt' as const, 'decrypt' as const),
  iv: fc.uint8Array({ minLength: 16, maxLength: 16 }),
  data: fc.oneof({ weight: 6, arbitrary: blocks }, { weight: 1, arbitrary: fc.uint8Array() }),
})

describe('node:crypto backend', () => {
  it('a kept AES-CBC context answers every message as a fresh one, in any order of calls', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { maxLength: 25 }), async (steps) => {
        const key = new Uint8Array(randomBytes(32))
        const aes = nodeCrypto.aesCbc(key)
        for (const { direction, iv, data } of steps) {
          const given = data.slice()
          if (data.length % 16 !== 0) {
            // Not whole blocks: refused before the context is touched (the next steps still match).
            await expect(aes[direction](iv, data)).rejects.toThrow(RangeError)
            continue
          }
          expect(await aes[direction](iv, data)).toEqual(fresh(direction, key, iv, data))
          expect(data).toEqual(given) // the caller's bytes are left as given
        }
      }),
      { numRuns: 300 },
    )
  })

  it('keeps nothing of a Buffer it was given: the caller may reuse that memory', async () => {
    const key = new Uint8Array(randomBytes(32))
    const aes = nodeCrypto.aesCbc(key)
    const iv = new Uint8Array(randomBytes(16))
    const [one, two] = [randomBytes(48), randomBytes(32)].map((p) => fresh('encrypt', key, iv, p))
    const given = Buffer.from(Buffer.from(one!).toString('base64'), 'base64') // a view of the pool
    await aes.decrypt(iv, given)
    given.fill(0xaa)
    expect(await aes.decrypt(iv, two!)).toEqual(fresh('decrypt', key, iv, two!))
  })

  it('refuses an iv that is not 16 bytes, as a fresh context does', async () => {
    const aes = nodeCrypto.aesCbc(new Uint8Array(randomBytes(32)))
    const data = new Uint8Array(16)
    await expect(aes.encrypt(new Uint8Array(15), data)).rejects.toThrow(RangeError)
    await expect(aes.decrypt(new Uint8Array(17), data)).rejects.toThrow(RangeError)
  })

  it('decrypting what another key sealed (a key rotation) leaves the next message right', async () => {
    const key = new Uint8Array(randomBytes(32))
    const aes = nodeCrypto.aesCbc(key)
    const iv = new Uint8Array(randomBytes(16))
    const plain = new Uint8Array(randomBytes(64))
    await aes.decrypt(iv, new Uint8Array(randomBytes(48))) // garbage for this key
    expect(await aes.decrypt(iv, fresh('encrypt', key, iv, plain))).toEqual(plain)
  })

  it('base64 encodes as the portable encoder', () => {
    const { base64Encode: native } = nodeCrypto
    if (!native) throw new Error('the node backend has native base64')
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), fc.nat(8), (b, at) => {
        // also a view that starts inside its buffer, as the envelope's are
        const view = new Uint8Array(new Uint8Array([...new Uint8Array(at), ...b]).buffer, at)
        expect(native(view)).toBe(base64Encode(b))
      }),
    )
  })

  it('base64 decodes exactly the strings the portable decoder accepts, to the same bytes', () => {
    const { base64Decode: native } = nodeCrypto
    if (!native) throw new Error('the node backend has native base64')
    const outcome = (decode: (s: string) => Uint8Array, s: string) => {
      try {
        return [...decode(s)]
      } catch (error) {
        expect(error).toBeInstanceOf(WechatCryptoError)
        return 'refused'
      }
    }
    // Encodings of bytes, and the same with one character changed, dropped or added: what Node's
    // lenient decoder would read as something (whitespace, a URL-safe character, a padding bit).
    const edited = fc
      .tuple(
        fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString('base64')),
        fc.nat(60),
        fc.constantFrom('', 'A', 'B', 'R', 'Q', 'g', 'w', '/', '+', '=', '-', '_', ' ', '\n', '中'),
        fc.constantFrom('replace', 'insert', 'drop', 'none'),
      )
      .map(([text, at, c, edit]) => {
        const i = text.length === 0 ? 0 : at % text.length
        if (edit === 'replace') return text.slice(0, i) + c + text.slice(i + 1)
        if (edit === 'insert') return text.slice(0, i) + c + text.slice(i)
        if (edit === 'drop') return text.slice(0, i) + text.slice(i + 1)
        return text
      })
    fc.assert(
      fc.property(edited, (s) => {
        expect(outcome(native, s)).toEqual(outcome(base64Decode, s))
      }),
      { numRuns: 2000 },
    )
    for (const [s, bytes] of [
      ['YQ==', [0x61]],
      ['YWI=', [0x61, 0x62]],
      ['', []],
    ] as const)
      expect(outcome(native, s)).toEqual(bytes)
    // The unused bits of a padded end are not read (an EncodingAESKey has two of them set).
    expect(outcome(native, 'YR==')).toEqual([0x61])
    expect(outcome(native, 'YWJ=')).toEqual([0x61, 0x62])
    // No padding, whitespace, URL-safe alphabet, padding inside: refused by both.
    for (const s of ['YQ', 'YQ=', 'Y Q==', 'YQ==\n', '-_-_', 'YQ==YQ==', 'Y===', '===='])
      expect([outcome(native, s), outcome(base64Decode, s)]).toEqual(['refused', 'refused'])
  })

  it('digests as createHash does', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: 'grapheme', maxLength: 40 }), async (s) => {
        expect(await nodeCrypto.sha1Hex(s)).toBe(createHash('sha1').update(s).digest('hex'))
        expect(await nodeCrypto.sha256Hex(s)).toBe(createHash('sha256').update(s).digest('hex'))
      }),
    )
  })
})
