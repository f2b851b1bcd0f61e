/**
 * The wire codec for pushes and replies: WeChat XML (CDATA strings, bare numbers) and the JSON push
 * format. Parsing refuses document type declarations, entity declarations and processing
 * instructions (a left-to-right scan first, then the parser's own entity hook), bounds nesting and
 * element count, and keeps every value a string, so a 64-bit MsgId never loses digits. Every
 * refusal is a {@link WechatFormatError} (400 at the webhook).
 */
import { XMLParser } from 'fast-xml-parser'

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

/**
 * The parser's options. `preserveOrder` hands back the document as it was read (a list of
 * `{ name: children }` and `{ '#text': text }` nodes), which {@link fieldsOf} turns into fields in
 * one walk with the refusals of {@link clean}; the parser's own conversion to objects (`prettify`,
 * a path matcher kept per tag) cost a fifth of the parse. codec.test.ts checks the two agree.
 */
export const XML_PARSER_OPTIONS = {
  preserveOrder: true,
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
  isArray: (name: string) => LISTS.has(name),
} as const
/** The elements that are lists even with one child (`<List>` of a batch event, `<item>`). */
const LISTS = new Set(['List', 'item'])
const parser = new XMLParser(XML_PARSER_OPTIONS)

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
 * malformed documents. The well-formedness check is {@link scanMarkup}'s single pass, not a
 * second walk by fast-xml-parser's `XMLValidator` (a fifth of a push's parse): it refuses
 * everything that validator refuses (a differential fast-check property in codec.test.ts).
 */
export function parseXml(body: string): PushFields {
  scanMarkup(body)
  let doc: OrderedNode[]
  try {
    doc = parser.parse(body) as OrderedNode[]
  } catch (error) {
    if (error instanceof WechatFormatError) throw error
    // Whatever the parser refuses (reserved names, limits) is the sender's fault: a 400.
    throw new WechatFormatError(`malformed XML: ${(error as Error).message}`)
  }
  const root = doc.find((node) => 'xml' in node)?.xml
  // An <xml> of text alone (or nothing) is no push either.
  const fields = typeof root === 'object' ? fieldsOf(root) : undefined
  if (fields === undefined || typeof fields === 'string')
    throw new WechatFormatError('root element must be <xml>')
  return fields
}

/** A node of the parser's `preserveOrder` output. */
type OrderedNode = { [name: string]: OrderedNode[] | string }

/**
 * An element's children as fields, as fast-xml-parser's own conversion and {@link clean} made
 * them: an element with only text is its text (`''` when empty), repeated names and
 * {@link LISTS} are arrays, text beside elements is dropped; reserved names and U+0000 refused.
 */
function fieldsOf(children: OrderedNode[]): PushFields | string {
  let text: string | undefined
  let fields: PushFields | undefined
  for (const node of children) {
    for (const name in node) {
      const value = node[name]!
      if (typeof value === 'string') {
        // '#text' (the only string-valued node): an element's own text.
        text = text === undefined ? value : text + value
        break
      }
      if (RESERVED.has(name) || name === '')
        throw new WechatFormatError(`element name "${name}" is not allowed`)
      if (name.includes('\u0000')) throw new WechatFormatError('NUL character in a name')
      const child = fieldsOf(value)
      fields ??= {}
      // Own names only: `fields[name]` would find Object.prototype's `toLocaleString` and kin.
      const seen = Object.hasOwn(fields, name) ? fields[name] : undefined
      if (seen === undefined) fields[name] = LISTS.has(name) ? ([child] as PushFields[]) : child
      else if (Array.isArray(seen)) (seen as (PushFields | string)[]).push(child)
      else fields[name] = [seen, child] as PushFields[]
      break
    }
  }
  if (fields) return fields
  if (text?.includes('\u0000')) throw new WechatFormatError('NUL character in a value')
  return text ?? ''
}

/** An XML name, as fast-xml-parser's validator defines it (XML 1.0's, short of astral planes). */
const NAME_START =
  ':A-Za-z_\\u00C0-\\u00D6\\u00D8-\\u00F6\\u00F8-\\u02FF\\u0370-\\u037D\\u037F-\\u1FFF\\u200C-\\u200D\\u2070-\\u218F\\u2C00-\\u2FEF\\u3001-\\uD7FF\\uF900-\\uFDCF\\uFDF0-\\uFFFD'
const NAME_SOURCE = `[${NAME_START}][${NAME_START}\\-.0-9\\u00B7\\u0300-\\u036F\\u203F-\\u2040]*`
const NAME = new RegExp(`^${NAME_SOURCE}$`)
/** One attribute, `name="value"` after whitespace; no `<` in a value (XML forbids it). */
const ATTRIBUTE = new RegExp(
  `[ \\t\\r\\n]+(${NAME_SOURCE})[ \\t\\r\\n]*=[ \\t\\r\\n]*(?:"[^"<]*"|'[^'<]*')`,
  'y',
)
/** A reference: `&name;` (up to 20 word characters, as the validator allows), `&#10;`, `&#xA;`. */
const REFERENCE = /&(?:[A-Za-z0-9_]{1,20}|#[0-9]+|#x[0-9a-fA-F]+);/y

/** A name as a refusal quotes it: at most 40 characters of what was sent. */
const quoted = (name: string) => (name.length > 40 ? `${name.slice(0, 40)}…` : name)

/** Any character JavaScript's `\s` matches: what the parser splits a name at. */
const JS_SPACE = /\s/

const isSpace = (c: number) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d

/**
 * One left-to-right pass over the document before the parser sees it, which is what makes it
 * well-formed (fast-xml-parser's parser alone accepts `<xml><A>1</B></xml>`, unclosed tags, text
 * around the root, `<1a>`, attributes without values and a bare `&`): one root element and nothing
 * but whitespace and comments around it, every tag a valid name closed by its own name,
 * attributes `name="value"` and never twice, every `&` a reference. Comments and CDATA sections
 * are skipped as the parser skips them (to their first `-->` / `]]>`), tags to their `>` outside
 * quotes. Refuses any `<!…>` that is not a comment or CDATA (DOCTYPE, ENTITY, ELEMENT…), any
 * processing instruction but a `<?xml …?>` declaration at the very start (after a byte-order mark),
 * CDATA outside the root, unterminated constructs, and documents deeper than {@link MAX_DEPTH} or
 * with more than {@link MAX_ELEMENTS} elements.
 * @example scanMarkup('<!--<![CDATA[--><!DOCTYPE x [<!ENTITY c "签到">]><!--]]>--><xml/>') // throws
 */
export function scanMarkup(body: string): void {
  const refuse = (why: string): never => {
    throw new WechatFormatError(why)
  }
  const first = body.charCodeAt(0) === 0xfeff ? 1 : 0
  const open: string[] = []
  let elements = 0
  let rootClosed = false
  // The next `&` at or after `i`, found once and kept: searching from every run of text to the
  // body's end made a body of many comments quadratic.
  let amp = -2
  let i = first
  while (i < body.length) {
    const lt = body.indexOf('<', i)
    const textEnd = lt === -1 ? body.length : lt
    if (open.length === 0) {
      for (let j = i; j < textEnd; j++)
        if (!isSpace(body.charCodeAt(j))) refuse('text outside the root element')
    } else {
      if (amp !== -1 && amp < i) amp = body.indexOf('&', i)
      while (amp !== -1 && amp < textEnd) {
        REFERENCE.lastIndex = amp
        if (!REFERENCE.test(body)) refuse("'&' that starts no reference")
        amp = body.indexOf('&', REFERENCE.lastIndex)
      }
    }
    if (lt === -1) break
    const next = body.charCodeAt(lt + 1)
    if (next === 0x21 /* ! */) {
      if (body.startsWith('<!--', lt)) {
        const end = body.indexOf('-->', lt + 4)
        if (end === -1) refuse('unterminated comment')
        i = end + 3
      } else if (body.startsWith('<![CDATA[', lt)) {
        if (open.length === 0) refuse('CDATA outside the root element')
        const end = body.indexOf(']]>', lt + 9)
        if (end === -1) refuse('unterminated CDATA section')
        i = end + 3
      } else {
        refuse('DOCTYPE and other declarations are not allowed')
      }
    } else if (next === 0x3f /* ? */) {
      if (lt !== first || !/^<\?xml[ \t\r\n]/.test(body.slice(lt, lt + 6)))
        refuse('processing instructions are not allowed')
      // The parser ends it at the first `?>` outside quotes, the validator at the first `?>`:
      // a declaration where they differ (a `?>` inside a quoted value) is refused, so nothing is
      // read past what this scan checked (it could hide a second document).
      const end = body.indexOf('?>', lt + 5)
      if (end === -1) refuse('unterminated XML declaration')
      if (tagEnd(body, lt + 5, '?>') !== end) refuse('malformed XML declaration')
      i = end + 2
    } else if (next === 0x2f /* / */) {
      const end = body.indexOf('>', lt + 2)
      if (end === -1) refuse('unterminated tag')
      let nameEnd = end
      while (isSpace(body.charCodeAt(nameEnd - 1))) nameEnd--
      const name = body.slice(lt + 2, nameEnd)
      const expected = open.pop()
      if (expected === undefined) refuse(`closing tag </${quoted(name)}> that was never opened`)
      if (name !== expected) refuse(`expected </${quoted(expected!)}>, found </${quoted(name)}>`)
      if (open.length === 0) rootClosed = true
      i = end + 1
    } else {
      const end = tagEnd(body, lt + 1)
      if (end === -1) refuse('unterminated tag')
      const empty = body.charCodeAt(end - 1) === 0x2f
      const inner = empty ? end - 1 : end
      let nameEnd = lt + 1
      while (nameEnd < inner && !isSpace(body.charCodeAt(nameEnd))) nameEnd++
      const name = body.slice(lt + 1, nameEnd)
      // No JavaScript whitespace either (U+1680, U+FEFF are XML name characters): the parser
      // splits names there.
      if (!NAME.test(name) || JS_SPACE.test(name)) refuse(`invalid tag name <${quoted(name)}>`)
      if (nameEnd < inner) attributes(body, nameEnd, inner, refuse)
      if (rootClosed) refuse('more than one root element')
      if (++elements > MAX_ELEMENTS) refuse(`more than ${MAX_ELEMENTS} elements`)
      if (empty) {
        if (open.length === 0) rootClosed = true
      } else if (open.push(name) > MAX_DEPTH) refuse(`elements nested deeper than ${MAX_DEPTH}`)
      i = end + 1
    }
  }
  if (open.length > 0) refuse(`unclosed tag <${quoted(open[open.length - 1]!)}>`)
  if (!rootClosed) refuse('no root element')
}

/** Checks a tag's attributes, `body[from, to)`: `name="value"` pairs, each name once. */
function attributes(body: string, from: number, to: number, refuse: (why: string) => never) {
  const names = new Set<string>()
  let i = from
  while (i < to) {
    ATTRIBUTE.lastIndex = i
    const m = ATTRIBUTE.exec(body)
    if (!m || ATTRIBUTE.lastIndex > to) {
      for (let j = i; j < to; j++) if (!isSpace(body.charCodeAt(j))) refuse('malformed attribute')
      return
    }
    if (names.has(m[1]!)) refuse(`attribute ${quoted(m[1]!)} repeated`)
    names.add(m[1]!)
    i = ATTRIBUTE.lastIndex
  }
}

/**
 * The index of the `>` that ends the tag whose name starts at `from` (of the `?>` that ends a
 * declaration, with `end` `'?>'`), outside quoted values.
 */
function tagEnd(body: string, from: number, end: '>' | '?>' = '>'): number {
  let quote = 0
  for (let i = from; i < body.length; i++) {
    const c = body.charCodeAt(i)
    if (quote !== 0) {
      if (c === quote) quote = 0
    } else if (c === 0x22 || c === 0x27) quote = c
    else if (end === '>' ? c === 0x3e : c === 0x3f && body.charCodeAt(i + 1) === 0x3e) return i
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

/** A string as WeChat XML carries it: in CDATA, a `]]>` inside split across two sections. */
export const cdata = (value: string): string =>
  `<![CDATA[${value.replaceAll(']]>', ']]]]><![CDATA[>')}]]>`

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
      out += `<${name}>${cdata(value)}</${name}>`
    }
  }
  return out
}
