import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { loadVector } from '../../test/vectors.js'
import { nodeCrypto } from '../node-crypto.js'
import { WechatFormatError } from './codec.js'
import { signature } from './crypto.js'
import {
  COMPAT_ENVELOPE,
  type EnvelopeShape,
  envelopeDigest,
  readEnvelope,
  SAFE_ENVELOPE,
} from './envelope.js'

const AIBOT: EnvelopeShape = { key: 'encrypt', others: [], format: 'json' }
const CONTACT: EnvelopeShape = { key: 'Encrypt', others: ['ToUserName', 'AgentID'], format: 'xml' }

describe('readEnvelope', () => {
  it('reads the safe-mode envelopes WeChat and WeCom send', () => {
    for (const body of [
      '<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Encrypt><![CDATA[AbC+/=]]></Encrypt></xml>',
      '<xml>\n<ToUserName><![CDATA[gh_1]]></ToUserName>\n<Encrypt><![CDATA[AbC+/=]]></Encrypt>\n</xml>\n',
      '<xml><Encrypt><![CDATA[AbC+/=]]></Encrypt><ToUserName><![CDATA[gh_1]]></ToUserName></xml>',
      '<xml><Encrypt>AbC+/=</Encrypt></xml>',
    ])
      expect(readEnvelope(body, SAFE_ENVELOPE), body).toEqual({
        encrypt: 'AbC+/=',
        at: body.indexOf('AbC'),
        format: 'xml',
      })
    expect(readEnvelope(' {"ToUserName": "gh_1", "Encrypt": "AbC+/="} ', SAFE_ENVELOPE)).toEqual({
      encrypt: 'AbC+/=',
      at: 36,
      format: 'json',
    })
    // In pieces: no one place in the body.
    expect(
      readEnvelope('<xml><Encrypt><![CDATA[Ab]]><![CDATA[C=]]></Encrypt></xml>', SAFE_ENVELOPE),
    ).toEqual({ encrypt: 'AbC=', at: -1, format: 'xml' })
    expect(readEnvelope('<xml><Encrypt>Ab<![CDATA[C=]]></Encrypt></xml>', SAFE_ENVELOPE).at).toBe(
      -1,
    )
    expect(readEnvelope('{"encrypt":"AbC="}', AIBOT).encrypt).toBe('AbC=')
    expect(
      readEnvelope(
        '<xml><ToUserName><![CDATA[ww1]]></ToUserName><Encrypt><![CDATA[AbC=]]></Encrypt><AgentID><![CDATA[1000002]]></AgentID></xml>',
        CONTACT,
      ).encrypt,
    ).toBe('AbC=')
  })

  it('reads Encrypt beside compatible mode’s plaintext fields without parsing them', () => {
    const { inputs } = loadVector('wechat-crypto.json', 'oa-decrypt-tencent-sample-spamtest')
    expect(readEnvelope(inputs.body!, COMPAT_ENVELOPE)).toEqual({
      encrypt: inputs.encrypt,
      at: inputs.body!.indexOf(inputs.encrypt!),
      format: 'xml',
    })
    const nested =
      '<xml><A><B><C><![CDATA[<Encrypt>x</Encrypt>]]></C></B><Empty/></A><Encrypt><![CDATA[E=]]></Encrypt><D>1</D></xml>'
    expect(readEnvelope(nested, COMPAT_ENVELOPE).encrypt).toBe('E=')
    const json = `{"ToUserName":"gh_1","List":[{"a":"x\\"y"},[1,-2.5e3,true,null]],"Encrypt":"E=","n":{}}`
    expect(readEnvelope(json, COMPAT_ENVELOPE).encrypt).toBe('E=')
  })

  it('refuses everything else before a signature is looked at', () => {
    const safe = [
      '',
      'hello',
      '<xml><ToUserName>gh</ToUserName></xml>', // no Encrypt
      '<xml><Encrypt><![CDATA[]]></Encrypt></xml>', // empty
      '<xml><Encrypt><![CDATA[a]]></Encrypt><Encrypt><![CDATA[b]]></Encrypt></xml>',
      '<xml><Encrypt><![CDATA[a]]></Encrypt><FromUserName>o</FromUserName></xml>',
      '<xml><Encrypt><X>a</X></Encrypt></xml>',
      '<xml><Encrypt a="1">a</Encrypt></xml>',
      '<xml><!-- c --><Encrypt>a</Encrypt></xml>',
      '<!DOCTYPE x><xml><Encrypt>a</Encrypt></xml>',
      '<?xml version="1.0"?><xml><Encrypt>a</Encrypt></xml>',
      '<xml><Encrypt>a&amp;</Encrypt></xml>',
      '<xml><Encrypt><![CDATA[a</Encrypt></xml>',
      '<xml><Encrypt>a</Encrypt></xml><xml/>',
      '<xml>text<Encrypt>a</Encrypt></xml>',
      '<root><Encrypt>a</Encrypt></root>',
      '{"Encrypt":"a","Content":"x"}',
      '{"Encrypt":"a\\u0041"}',
      '{"Encrypt":{"a":1}}',
      '{"Encrypt":"a"',
      '{"Encrypt":"a"}x',
      '{"Encrypt":"a","Encrypt":"b"}',
    ]
    for (const body of safe)
      expect(() => readEnvelope(body, SAFE_ENVELOPE), body).toThrow(WechatFormatError)
    expect(() => readEnvelope('<xml><Encrypt>a</Encrypt></xml>', AIBOT)).toThrow(/json/)
    expect(() => readEnvelope('{"encrypt":"a","x":1}', AIBOT)).toThrow(WechatFormatError)
    expect(() => readEnvelope('{"Encrypt":"a"}', CONTACT)).toThrow(WechatFormatError)

    const compat = [
      `<xml>${'<a>'.repeat(20)}${'</a>'.repeat(20)}<Encrypt>E</Encrypt></xml>`,
      `<xml>${'<a>1</a>'.repeat(1001)}<Encrypt>E</Encrypt></xml>`,
      '<xml><A><Encrypt>E</Encrypt></A></xml>', // not at the top
      '<xml><A>1</B><Encrypt>E</Encrypt></xml>',
      `{"x":${'['.repeat(20)}${']'.repeat(20)},"Encrypt":"E"}`,
      '{"x":[1,],"Encrypt":"E"}',
      '{"x":"unterminated,"Encrypt":"E"}',
    ]
    for (const body of compat)
      expect(() => readEnvelope(body, COMPAT_ENVELOPE), body).toThrow(WechatFormatError)
  })
})

describe('envelopeDigest', () => {
  // Small alphabets, so that equal bodies, a ciphertext also found in ToUserName and CDATA in
  // pieces all come up often.
  const part = (chars: string[], max: number) =>
    fc.array(fc.constantFrom(...chars), { maxLength: max }).map((a) => a.join(''))
  const envelope = fc
    .record({
      to: part(['A', 'B', 'g', '\u0000'], 4),
      encrypt: part(['A', 'B', '='], 4).filter((e) => e !== ''),
      split: fc.nat(4),
      space: part([' ', '\n'], 2),
      json: fc.boolean(),
    })
    .map(({ to, encrypt, split, space, json }) => {
      if (json) return `{"ToUserName":"${to}",${space}"Encrypt":"${encrypt}"}`
      // The ciphertext in one CDATA section, or in two (then it is nowhere in the body as one run).
      const cut = Math.min(split, encrypt.length)
      const cdata =
        cut === 0
          ? `<![CDATA[${encrypt}]]>`
          : `<![CDATA[${encrypt.slice(0, cut)}]]><![CDATA[${encrypt.slice(cut)}]]>`
      return `<xml><ToUserName><![CDATA[${to}]]></ToUserName>${space}<Encrypt>${cdata}</Encrypt></xml>`
    })
  /** The digest as the webhook takes it: the envelope read, its signature made (verified there). */
  const digestOf = async (body: string) => {
    const envelope = readEnvelope(body, COMPAT_ENVELOPE)
    const signed = await signature(['token', '1700000000', 'n1', envelope.encrypt], nodeCrypto)
    return envelopeDigest(body, envelope, signed, nodeCrypto)
  }

  it('is equal for two requests exactly when their bodies are', async () => {
    await fc.assert(
      fc.asyncProperty(envelope, envelope, async (a, b) => {
        expect((await digestOf(a)) === (await digestOf(b))).toBe(a === b)
      }),
      { numRuns: 2000 },
    )
  })

  it('gives two bodies one digest only when they are equal, NUL characters around included', async () => {
    const around = part(['a', '\u0000'], 3)
    const request = fc.record({ before: around, encrypt: part(['E', 'F'], 3), after: around })
    const digestOf = async (r: { before: string; encrypt: string; after: string }) =>
      envelopeDigest(
        r.before + r.encrypt + r.after,
        { encrypt: r.encrypt, at: r.before.length },
        await signature([r.encrypt], nodeCrypto),
        nodeCrypto,
      )
    await fc.assert(
      fc.asyncProperty(request, request, async (a, b) => {
        if ((await digestOf(a)) === (await digestOf(b)))
          expect(a.before + a.encrypt + a.after).toBe(b.before + b.encrypt + b.after)
      }),
      { numRuns: 3000 },
    )
  })

  it('hashes the body around the ciphertext, not the ciphertext', async () => {
    const hashed: string[] = []
    const spy = {
      sha256Hex: async (input: string) => {
        hashed.push(input)
        return nodeCrypto.sha256Hex(input)
      },
    }
    const encrypt = 'E'.repeat(1000)
    const body = `<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Encrypt><![CDATA[${encrypt}]]></Encrypt></xml>`
    await envelopeDigest(body, readEnvelope(body, SAFE_ENVELOPE), 'a'.repeat(40), spy)
    expect(hashed).toHaveLength(1)
    expect(hashed[0]!.length).toBeLessThan(200)
    expect(hashed[0]).not.toContain('EEEE')
  })
})
