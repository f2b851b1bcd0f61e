import { describe, expect, it } from 'vitest'
import { buildXml, detectFormat, parseJson, parseXml, WechatFormatError } from './codec.js'
import { renderReply } from './reply.js'

describe('codec', () => {
  it('parses the official sample with newlines between elements', () => {
    const f = parseXml(
      '<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>\n<CreateTime>1409735668</CreateTime>\n<MsgId>6054768590064713728</MsgId>\n</xml>',
    )
    expect(f).toEqual({
      ToUserName: 'gh_10f6c3c3ac5a',
      CreateTime: '1409735668',
      MsgId: '6054768590064713728',
    })
  })

  it('refuses DTDs, entity declarations, other roots and malformed documents', () => {
    for (const bad of [
      '<!DOCTYPE xml [<!ENTITY a "b">]><xml><A>&a;</A></xml>',
      '<xml><!ENTITY a "b"><A/></xml>',
      '<?xml version="1.0"?><!doctype xml SYSTEM "file:///etc/passwd"><xml/>',
      '<root><A>1</A></root>',
      '<xml><A>1</B></xml>',
      '<xml><A>1</A>',
    ]) {
      expect(() => parseXml(bad), bad).toThrow(WechatFormatError)
    }
    for (const bad of ['{', '[1,2]', '"x"', '{"a":1}x'])
      expect(() => parseJson(bad), bad).toThrow(WechatFormatError)
    expect(() => detectFormat('hello')).toThrow(WechatFormatError)
  })

  it('scans left to right: a DOCTYPE hidden by comments and CDATA, PIs and depth are refused', () => {
    const bypass = '<!--<![CDATA[--><!DOCTYPE xml [<!ENTITY c "签到">]><!--]]>-->'
    for (const bad of [
      `${bypass}<xml><Content>&c;</Content></xml>`,
      `<xml>${bypass}<Content>&c;</Content></xml>`,
      '<xml><A x="><!--"><!DOCTYPE x [<!ENTITY c "v">]><B y="-->">1</B></A></xml>',
      '<xml><!ELEMENT a ANY><A>1</A></xml>',
      '<?xml-stylesheet href="a"?><xml/>',
      '<xml><?php x ?></xml>',
      ' <xml/><?xml version="1.0"?>',
      '<xml><!-- open',
      '<xml><![CDATA[ open',
      `<xml>${'<a>'.repeat(16)}${'</a>'.repeat(16)}</xml>`,
      `<xml>${'<a/>'.repeat(1000)}</xml>`,
      '<xml><__proto__>1</__proto__></xml>',
      '<xml><constructor>1</constructor></xml>',
    ]) {
      expect(() => parseXml(bad), bad).toThrow(WechatFormatError)
    }
    expect(
      parseXml('<?xml version="1.0" encoding="UTF-8"?><xml><!-- hi --><A>&lt;&amp;</A></xml>'),
    ).toEqual({ A: '<&' })
    expect(parseXml(`<xml>${'<a>'.repeat(15)}1${'</a>'.repeat(15)}</xml>`)).toBeTruthy()
    for (const bad of [
      `{"a":${'['.repeat(17)}${']'.repeat(17)}}`,
      '{"__proto__":{"x":1}}',
      '{"constructor":"x"}',
    ])
      expect(() => parseJson(bad), bad).toThrow(WechatFormatError)
  })

  it('allows DOCTYPE-looking text inside CDATA', () => {
    expect(parseXml('<xml><Content><![CDATA[<!DOCTYPE html> hi]]></Content></xml>').Content).toBe(
      '<!DOCTYPE html> hi',
    )
  })

  it('writes CDATA safely and keeps numbers bare', () => {
    const out = buildXml({ A: 'x]]>y', B: 1, C: 2n, D: { E: 'e' }, Articles: [{ Title: 't' }] })
    expect(out).toBe(
      '<xml><A><![CDATA[x]]]]><![CDATA[>y]]></A><B>1</B><C>2</C><D><E><![CDATA[e]]></E></D><Articles><item><Title><![CDATA[t]]></Title></item></Articles></xml>',
    )
    expect(parseXml(out).A).toBe('x]]>y')
  })

  it('renders every reply type as the reference shows', () => {
    const a = { to: 'o1', from: 'gh_1', createTime: 12345 }
    const h =
      '<ToUserName><![CDATA[o1]]></ToUserName><FromUserName><![CDATA[gh_1]]></FromUserName><CreateTime>12345</CreateTime>'
    expect(renderReply({ type: 'text', content: '你好\n世界' }, a)).toBe(
      `<xml>${h}<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[你好\n世界]]></Content></xml>`,
    )
    expect(renderReply({ type: 'image', mediaId: 'M' }, a)).toBe(
      `<xml>${h}<MsgType><![CDATA[image]]></MsgType><Image><MediaId><![CDATA[M]]></MediaId></Image></xml>`,
    )
    expect(
      renderReply(
        { type: 'news', articles: [{ title: 'T', description: 'D', picUrl: 'P', url: 'U' }] },
        a,
      ),
    ).toBe(
      `<xml>${h}<MsgType><![CDATA[news]]></MsgType><ArticleCount>1</ArticleCount><Articles><item><Title><![CDATA[T]]></Title><Description><![CDATA[D]]></Description><PicUrl><![CDATA[P]]></PicUrl><Url><![CDATA[U]]></Url></item></Articles></xml>`,
    )
    expect(renderReply({ type: 'transfer_customer_service', kfAccount: 'test1@test' }, a)).toBe(
      `<xml>${h}<MsgType><![CDATA[transfer_customer_service]]></MsgType><TransInfo><KfAccount><![CDATA[test1@test]]></KfAccount></TransInfo></xml>`,
    )
    expect(JSON.parse(renderReply({ type: 'transfer_customer_service' }, a, 'json'))).toEqual({
      ToUserName: 'o1',
      FromUserName: 'gh_1',
      CreateTime: 12345,
      MsgType: 'transfer_customer_service',
    })
    expect(() => renderReply({ type: 'news', articles: [] }, a)).toThrow(RangeError)
  })
})
