import fc from 'fast-check'
import { XMLParser, XMLValidator } from 'fast-xml-parser'
import { describe, expect, it } from 'vitest'
import {
  buildXml,
  detectFormat,
  parseJson,
  parseXml,
  scanMarkup,
  WechatFormatError,
  XML_PARSER_OPTIONS,
} from './codec.js'
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

  it('renders a text reply as buildXml writes its fields, whatever the strings', () => {
    const xmlish = fc.string({ unit: fc.constantFrom('a', '中', ']', '>', '<', '[', '&', '\n') })
    fc.assert(
      fc.property(xmlish, xmlish, xmlish, fc.nat(), (content, to, from, createTime) => {
        const fields = { ToUserName: to, FromUserName: from, CreateTime: createTime }
        expect(renderReply({ type: 'text', content }, { to, from, createTime })).toBe(
          buildXml({ ...fields, MsgType: 'text', Content: content }),
        )
      }),
    )
  })

  /** Pieces of markup, well-formed and not, that the strings below are made of. */
  const piece = fc.constantFrom(
    '<xml>',
    '</xml>',
    '<A>',
    '</A>',
    '<A/>',
    '<A />',
    '</A >',
    '<B x="1">',
    '</B>',
    '<a b=\'2\' c="3"/>',
    '<A x>',
    '<A x=1>',
    '<A x="1" x="2">',
    '<A x="1"y="2">',
    '< A>',
    '</ A>',
    '<1a>',
    '<A-b.c>',
    '<中>',
    '</中>',
    '<A/B>',
    '</A/>',
    '<A x="/"/>',
    '<A x="<">',
    ' ',
    '\n',
    '\t',
    'text',
    '签到',
    '&amp;',
    '&lt;',
    '&#12;',
    '&#x1F;',
    '&#;',
    '&#x;',
    '&;',
    '&',
    '&x',
    ';',
    '<',
    '>',
    '/',
    '=',
    '"',
    "'",
    '<!-- c -->',
    '<!--',
    '-->',
    '<![CDATA[ d ]]>',
    '<![CDATA[',
    ']]>',
    '<?xml version="1.0"?>',
    '<?pi x?>',
    '<!DOCTYPE x>',
    '\ufeff',
    '<\ufeff>',
    '</\ufeff>',
    '<A\u1680B>',
    '<?xml a="?>',
    '"?>',
    '\u3000',
    '\u0000',
  )
  const name = fc.constantFrom(
    'xml',
    'A',
    'b',
    'Msg_Id',
    'a.b-c',
    '中文',
    'x:y',
    // Object.prototype's own names: a field, never the inherited function
    'toLocaleString',
    'isPrototypeOf',
    'propertyIsEnumerable',
    'valueOf',
    'toString',
    'hasOwnProperty',
  )
  const text = fc.constantFrom('', 'hi', '签到 ', '&amp;&lt;', '&#10;', '\n', '>')
  const tree: fc.Arbitrary<string> = fc.letrec<{ node: string }>((tie) => ({
    node: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.tuple(name, text).map(([n, t]) => `<${n}>${t}</${n}>`),
      fc
        .tuple(name, fc.constantFrom('', ' a="1"', ' b=\'x\' c="y"'))
        .map(([n, a]) => `<${n}${a}/>`),
      fc
        .tuple(
          name,
          fc.array(
            fc.oneof(tie('node'), text, fc.constant('<![CDATA[<x>&]]>'), fc.constant('<!-- - -->')),
            { maxLength: 4 },
          ),
        )
        .map(([n, kids]) => `<${n}>${kids.join('')}</${n}>`),
    ),
  })).node
  const document = fc
    .tuple(
      fc.constantFrom('', '\ufeff', '<?xml version="1.0"?>\n'),
      tree,
      fc.constantFrom('', '\n', ' <!-- end -->'),
    )
    .map(([head, root, tail]) => `${head}<xml>${root}</xml>${tail}`)
  const pieces = fc.array(piece, { maxLength: 14 }).map((p) => p.join(''))
  /** Pieces alone, pieces inside a root, and a well-formed document with pieces spliced in. */
  const markup = fc.oneof(
    pieces,
    pieces.map((p) => `<xml>${p}</xml>`),
    fc
      .tuple(document, fc.array(fc.tuple(fc.nat(), piece), { minLength: 1, maxLength: 3 }))
      .map(([doc, cuts]) =>
        cuts.reduce(
          (d, [at, p]) => d.slice(0, at % (d.length + 1)) + p + d.slice(at % (d.length + 1)),
          doc,
        ),
      ),
  )
  const accepts = (s: string) => {
    try {
      parseXml(s)
      return true
    } catch (error) {
      expect(error).toBeInstanceOf(WechatFormatError)
      return false
    }
  }

  it("accepts nothing that fast-xml-parser's XMLValidator refuses (its pass is not run)", () => {
    fc.assert(
      fc.property(markup, (s) => {
        if (accepts(s)) expect(XMLValidator.validate(s), s).toBe(true)
      }),
      { numRuns: 20_000 },
    )
    // and the generator reaches both sides: documents accepted, and refused by each check
    const samples = fc.sample(markup, { numRuns: 5000, seed: 20 })
    expect(samples.filter(accepts).length).toBeGreaterThan(150)
    expect(samples.filter((x) => !accepts(x)).length).toBeGreaterThan(2500)
  })

  it('accepts every well-formed document of elements, text, references, CDATA and comments', () => {
    fc.assert(
      fc.property(document, (s) => {
        expect(XMLValidator.validate(s), s).toBe(true)
        expect(accepts(s), s).toBe(true)
      }),
      { numRuns: 3000 },
    )
  })

  it("gives the fields fast-xml-parser's own conversion gave (what parseXml returned before)", () => {
    const objects = new XMLParser({ ...XML_PARSER_OPTIONS, preserveOrder: false })
    /** The conversion before: the parser's objects, `#text` beside elements dropped, NUL refused. */
    const strip = (v: unknown): unknown => {
      if (Array.isArray(v)) return v.map(strip)
      if (typeof v === 'object' && v !== null)
        return Object.fromEntries(
          Object.entries(v)
            .filter(([k]) => k !== '#text')
            .map(([k, x]) => [k, strip(x)]),
        )
      const text = String(v ?? '')
      if (text.includes('\u0000')) throw new WechatFormatError('NUL')
      return text
    }
    const before = (s: string) => {
      const root = (objects.parse(s) as { xml?: unknown }).xml
      if (typeof root !== 'object' || root === null) throw new WechatFormatError('root')
      return strip(root)
    }
    // parseXml refuses with WechatFormatError only (`accepts` checks); the parser before it threw
    // its own errors, which parseXml wrapped.
    const outcome = (parse: (s: string) => unknown, s: string) => {
      try {
        return { fields: parse(s) }
      } catch {
        return { refused: true }
      }
    }
    const scanned = (s: string) => {
      try {
        scanMarkup(s)
        return true
      } catch {
        return false
      }
    }
    const lists = fc
      .array(fc.constantFrom('<item><A>1</A></item>', '<List><B>x</B></List>', '<A>2</A>', 't'), {
        maxLength: 4,
      })
      .map((k) => `<xml><Items>${k.join('')}</Items>${k.join('')}</xml>`)
    let compared = 0
    fc.assert(
      fc.property(fc.oneof(document, markup, lists), (s) => {
        if (!scanned(s)) return
        compared++
        accepts(s)
        expect(outcome(parseXml, s), s).toEqual(outcome(before, s))
      }),
      { numRuns: 20_000 },
    )
    expect(compared).toBeGreaterThan(5000)
  })

  it('refuses names with characters the parser splits at, and a declaration with a quoted ?>', () => {
    for (const bad of [
      '<xml><\ufeff>1</\ufeff><A>2</A></xml>',
      '<xml><\u1680>1</\u1680></xml>',
      '<xml><A\u1680B>1</A\u1680B></xml>',
      // a `?>` inside a quoted value does not end the declaration: what follows is no document
      '<?xml a="?><xml><A>x</A></xml><!-- "?><xml><A>y</A></xml> -->',
    ])
      expect(() => parseXml(bad), bad).toThrow(WechatFormatError)
    expect(() => parseXml('<?xml version="1.0" a="?>"?><xml><A>y</A></xml>')).toThrow(
      WechatFormatError,
    )
  })

  it("reads an element named like Object.prototype's members as a field", () => {
    const fields = parseXml(
      '<xml><MsgType>text</MsgType><toLocaleString>x</toLocaleString><isPrototypeOf>y</isPrototypeOf></xml>',
    )
    expect(fields).toEqual({ MsgType: 'text', toLocaleString: 'x', isPrototypeOf: 'y' })
  })

  it('scans a body once: many comments do not make it search the body again for each', () => {
    // The characters String.prototype.indexOf walks while scanMarkup runs, counted (not timed).
    const body = `<xml>${'<!---->'.repeat(5000)}<a>签到 &amp; 1</a></xml>`
    const indexOf = String.prototype.indexOf
    let walked = 0
    String.prototype.indexOf = function (this: string, search: string, from = 0) {
      const at = indexOf.call(this, search, from)
      walked += (at === -1 ? this.length : at) - from
      return at
    }
    try {
      scanMarkup(body)
    } finally {
      String.prototype.indexOf = indexOf
    }
    expect(walked).toBeLessThan(3 * body.length)
  })
})
