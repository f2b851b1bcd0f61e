/**
 * The wire codec for pushes and replies: WeChat XML (CDATA strings, bare numbers) and the JSON push
 * format. Parsing refuses document type declarations, entity declarations and processing
 * instructions (a left-to-right scan first, then the parser's own entity hook), bounds nesting and
 * element count, and keeps every value a string, so a 64-bit MsgId never loses digits. Every
 * refusal is a {@link WechatFormatError} (400 at the webhook).
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser'

/** The two push formats. Official accounts push XML; mini-programs may choose JSON. */
export type PushFormat = 'xml' | 'json'

/** A parsed push: element names → string, nested record, or list of records. */
export interface PushFields {
  [name: string]: string | PushFields | PushFields[] | string[]
}

/** A body that is not a well-formed, safe push. */
export class WechatFormatError extends Error {
  override readonly name = 'WechatFormatError'
}

/** Deepest element nesting a push may have (`<xml>` is 1; WeChat's deepest is 5). */
export const MAX_DEPTH = 16
/** Most elements a push may have (WeChat's largest, a 9-picture event, has about 40). */
export const MAX_ELEMENTS = 1000

const XML_ENTITIES: Record<string, string> = {
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
}

/**
 * The parser's entity hook: the five predefined XML entities are decoded (character references
 * are left as they are, as before); any entity a document declares is refused outright, so even a
 * DOCTYPE the scan missed cannot define one.
 */
const entityDecoder = {
  setExternalEntities() {},
  addInputEntities(entities: Record<string, unknown>) {
    if (Object.keys(entities).length > 0)
      throw new WechatFormatError('entity declarations are not allowed')
  },
  reset() {},
  setXmlVersion() {},
  decode(text: string) {
    return text.indexOf('&') === -1
      ? text
      : text.replace(/&(amp|lt|gt|quot|apos);/g, (_, name: string) => XML_ENTITIES[name]!)
  },
}

const parser = new XMLParser({
  ignoreAttributes: true,
  parseTagValue: false,
  trimValues: false,
  processEntities: true,
  htmlEntities: false,
  entityDecoder,
  ignoreDeclaration: true,
  maxNestedTags: MAX_DEPTH,
  // Callbacks get the tag's matcher, not a path string built for every tag.
  jPath: false,
  isArray: (name) => name === 'List' || name === 'item',
})

/** Tells XML from JSON by the first non-blank character. */
export function detectFormat(body: string): PushFormat {
  const first = body.trimStart()[0]
  if (first === '<') return 'xml'
  if (first === '{') return 'json'
  throw new WechatFormatError('body is neither XML nor JSON')
}

/** Parses a push body of either format into string fields. */
export function parsePush(body: string, format: PushFormat = detectFormat(body)): PushFields {
  return format === 'xml' ? parseXml(body) : parseJson(body)
}

/**
 * Parses `<xml>…</xml>`; refuses DTDs, entity declarations, processing instructions, documents
 * nested deeper than {@link MAX_DEPTH} or with more than {@link MAX_ELEMENTS} elements, and
 * malformed documents.
 */
export function parseXml(body: string): PushFields {
  scanMarkup(body)
  let doc: Record<string, unknown>
  try {
    const valid = XMLValidator.validate(body)
    if (valid !== true) throw new WechatFormatError(`malformed XML: ${valid.err.msg}`)
    doc = parser.parse(body) as Record<string, unknown>
  } catch (error) {
    if (error instanceof WechatFormatError) throw error
    // Whatever the parser refuses (reserved names, limits) is the sender's fault: a 400.
    throw new WechatFormatError(`malformed XML: ${(error as Error).message}`)
  }
  const root = doc.xml
  if (root === undefined || typeof root !== 'object' || root === null) {
    throw new WechatFormatError('root element must be <xml>')
  }
  return clean(root) as PushFields
}

/**
 * One left-to-right pass over the markup, before the parser sees it: comments and CDATA sections
 * are skipped as the parser skips them (to their first `-->` / `]]>`), tags to their `>` outside
 * quotes. Refuses any `<!…>` that is not a comment or CDATA (DOCTYPE, ENTITY, ELEMENT…), any
 * processing instruction but a leading `<?xml …?>` declaration, unterminated constructs, and
 * documents deeper than {@link MAX_DEPTH} or with more than {@link MAX_ELEMENTS} elements.
 * @example scanMarkup('<!--<![CDATA[--><!DOCTYPE x [<!ENTITY c "签到">]><!--]]>--><xml/>') // throws
 */
export function scanMarkup(body: string): void {
  const refuse = (why: string): never => {
    throw new WechatFormatError(why)
  }
  const start = body.length - body.trimStart().length
  let depth = 0
  let elements = 0
  let i = body.indexOf('<')
  while (i !== -1) {
    const next = body.charCodeAt(i + 1)
    if (next === 0x21 /* ! */) {
      if (body.startsWith('<!--', i)) {
        const end = body.indexOf('-->', i + 4)
        if (end === -1) refuse('unterminated comment')
        i = end + 3
      } else if (body.startsWith('<![CDATA[', i)) {
        const end = body.indexOf(']]>', i + 9)
        if (end === -1) refuse('unterminated CDATA section')
        i = end + 3
      } else {
        refuse('DOCTYPE and other declarations are not allowed')
      }
    } else if (next === 0x3f /* ? */) {
      if (i !== start || !/^<\?xml[ \t\r\n]/.test(body.slice(i, i + 6)))
        refuse('processing instructions are not allowed')
      const end = body.indexOf('?>', i + 5)
      if (end === -1) refuse('unterminated XML declaration')
      i = end + 2
    } else {
      const end = tagEnd(body, i + 1)
      if (end === -1) refuse('unterminated tag')
      if (next === 0x2f /* / */) depth--
      else if (body.charCodeAt(end - 1) !== 0x2f) {
        if (++depth > MAX_DEPTH) refuse(`elements nested deeper than ${MAX_DEPTH}`)
        if (++elements > MAX_ELEMENTS) refuse(`more than ${MAX_ELEMENTS} elements`)
      } else if (++elements > MAX_ELEMENTS) refuse(`more than ${MAX_ELEMENTS} elements`)
      i = end + 1
    }
    i = body.indexOf('<', i)
  }
}

/** The index of the `>` that ends the tag whose name starts at `from`, outside quoted values. */
function tagEnd(body: string, from: number): number {
  let quote = 0
  for (let i = from; i < body.length; i++) {
    const c = body.charCodeAt(i)
    if (quote !== 0) {
      if (c === quote) quote = 0
    } else if (c === 0x22 || c === 0x27) quote = c
    else if (c === 0x3e) return i
  }
  return -1
}

/** Parses a JSON push object; integers are kept as their exact digits. */
export function parseJson(body: string): PushFields {
  const quoted = quoteIntegers(body)
  let value: unknown
  try {
    value = JSON.parse(quoted)
  } catch {
    throw new WechatFormatError('malformed JSON')
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new WechatFormatError('JSON push must be an object')
  }
  return clean(value) as PushFields
}

/** Names that would reach an object's prototype if used as keys; a push never needs them. */
const RESERVED = new Set(['__proto__', 'constructor', 'prototype'])

/**
 * Drops parser bookkeeping (`#text`), stringifies scalars; reserved names are refused, and so is
 * U+0000 in a name or value (not a character XML allows; a database text column refuses it).
 */
function clean(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(clean)
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) {
      if (k.startsWith('#')) continue
      if (RESERVED.has(k)) throw new WechatFormatError(`element name ${k} is not allowed`)
      if (k.includes('\u0000')) throw new WechatFormatError('NUL character in a name')
      out[k] = clean(v)
    }
    return out
  }
  const text = value === null || value === undefined ? '' : String(value)
  if (text.includes('\u0000')) throw new WechatFormatError('NUL character in a value')
  return text
}

/**
 * Wraps every bare JSON number in quotes, skipping string contents; refuses documents nested deeper
 * than {@link MAX_DEPTH} or with more than {@link MAX_ELEMENTS} objects and arrays.
 */
const NUMBER = /-?\d+(\.\d+)?([eE][+-]?\d+)?/y

function quoteIntegers(json: string): string {
  let out = ''
  let i = 0
  let depth = 0
  let containers = 0
  while (i < json.length) {
    const ch = json[i]!
    if (ch === '"') {
      let j = i + 1
      while (j < json.length && json[j] !== '"') j += json[j] === '\\' ? 2 : 1
      out += json.slice(i, j + 1)
      i = j + 1
    } else if (ch === '-' || (ch >= '0' && ch <= '9')) {
      NUMBER.lastIndex = i
      const m = NUMBER.exec(json)
      if (!m) throw new WechatFormatError('malformed JSON')
      out += `"${m[0]}"`
      i += m[0].length
    } else {
      if (ch === '{' || ch === '[') {
        if (++depth > MAX_DEPTH) throw new WechatFormatError(`JSON nested deeper than ${MAX_DEPTH}`)
        if (++containers > MAX_ELEMENTS)
          throw new WechatFormatError(`more than ${MAX_ELEMENTS} JSON objects and arrays`)
      } else if (ch === '}' || ch === ']') depth--
      out += ch
      i++
    }
  }
  return out
}

/** A value `buildXml` can write: strings go in CDATA, numbers (and 64-bit ids as bigint) stay bare. */
export type XmlValue = string | number | bigint | XmlObject | XmlObject[]
/** An element's children. */
export interface XmlObject {
  [name: string]: XmlValue | undefined
}

/**
 * Writes WeChat-style XML: `<xml>` root, strings in CDATA (a `]]>` inside is split safely),
 * numbers bare, arrays as repeated `<item>` children of their key.
 * @example buildXml({ ToUserName: 'o1', CreateTime: 1, MsgType: 'text', Content: 'hi' })
 */
export function buildXml(fields: XmlObject, root = 'xml'): string {
  return `<${root}>${children(fields)}</${root}>`
}

function children(fields: XmlObject): string {
  let out = ''
  for (const [name, value] of Object.entries(fields)) {
    if (value === undefined) continue
    if (Array.isArray(value)) {
      out += `<${name}>${value.map((item) => `<item>${children(item)}</item>`).join('')}</${name}>`
    } else if (typeof value === 'object') {
      out += `<${name}>${children(value)}</${name}>`
    } else if (typeof value === 'number' || typeof value === 'bigint') {
      out += `<${name}>${value}</${name}>`
    } else {
      out += `<${name}><![CDATA[${value.replaceAll(']]>', ']]]]><![CDATA[>')}]]></${name}>`
    }
  }
  return out
}
