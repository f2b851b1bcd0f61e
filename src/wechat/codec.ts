/**
 * The wire codec for pushes and replies: WeChat XML (CDATA strings, bare numbers) and the JSON push
 * format. Parsing refuses DOCTYPE and entity declarations and keeps every value a string, so a
 * 64-bit MsgId never loses digits.
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

const parser = new XMLParser({
  ignoreAttributes: true,
  parseTagValue: false,
  trimValues: false,
  processEntities: true,
  htmlEntities: false,
  ignoreDeclaration: true,
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

/** Parses `<xml>…</xml>`; refuses DTDs, entity declarations and malformed documents. */
export function parseXml(body: string): PushFields {
  const outsideCdata = body.replace(/<!\[CDATA\[[\s\S]*?\]\]>/g, '')
  if (/<!DOCTYPE|<!ENTITY/i.test(outsideCdata)) {
    throw new WechatFormatError('DOCTYPE and entity declarations are not allowed')
  }
  const valid = XMLValidator.validate(body)
  if (valid !== true) throw new WechatFormatError(`malformed XML: ${valid.err.msg}`)
  const doc = parser.parse(body) as Record<string, unknown>
  const root = doc.xml
  if (root === undefined || typeof root !== 'object' || root === null) {
    throw new WechatFormatError('root element must be <xml>')
  }
  return clean(root) as PushFields
}

/** Parses a JSON push object; integers are kept as their exact digits. */
export function parseJson(body: string): PushFields {
  let value: unknown
  try {
    value = JSON.parse(quoteIntegers(body))
  } catch {
    throw new WechatFormatError('malformed JSON')
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new WechatFormatError('JSON push must be an object')
  }
  return clean(value) as PushFields
}

/** Drops parser bookkeeping (`#text`), stringifies scalars. */
function clean(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(clean)
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) {
      if (k.startsWith('#')) continue
      out[k] = clean(v)
    }
    return out
  }
  return value === null || value === undefined ? '' : String(value)
}

/** Wraps every bare JSON number in quotes, skipping string contents. */
function quoteIntegers(json: string): string {
  let out = ''
  let i = 0
  while (i < json.length) {
    const ch = json[i]!
    if (ch === '"') {
      let j = i + 1
      while (j < json.length && json[j] !== '"') j += json[j] === '\\' ? 2 : 1
      out += json.slice(i, j + 1)
      i = j + 1
    } else if (ch === '-' || (ch >= '0' && ch <= '9')) {
      const m = /^-?\d+(\.\d+)?([eE][+-]?\d+)?/.exec(json.slice(i))
      if (!m) throw new WechatFormatError('malformed JSON')
      out += `"${m[0]}"`
      i += m[0].length
    } else {
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
