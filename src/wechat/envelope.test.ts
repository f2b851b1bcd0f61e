import { describe, expect, it } from 'vitest'
import { loadVector } from '../../test/vectors.js'
import { WechatFormatError } from './codec.js'
import { COMPAT_ENVELOPE, type EnvelopeShape, readEnvelope, SAFE_ENVELOPE } from './envelope.js'

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
      expect(readEnvelope(body, SAFE_ENVELOPE), body).toEqual({ encrypt: 'AbC+/=', format: 'xml' })
    expect(readEnvelope(' {"ToUserName": "gh_1", "Encrypt": "AbC+/="} ', SAFE_ENVELOPE)).toEqual({
      encrypt: 'AbC+/=',
      format: 'json',
    })
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
