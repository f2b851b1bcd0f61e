/**
 * The encrypted envelope of a push, read *before* anything is authenticated. Only the small shape
 * WeChat and WeCom send is accepted — `<xml><ToUserName>…</ToUserName><Encrypt>…</Encrypt></xml>`
 * (whitespace between elements, values in CDATA or bare), or `{"ToUserName":"…","Encrypt":"…"}` —
 * read by hand with `indexOf`, so a refused request costs microseconds and never reaches the XML
 * parser. Compatible mode also carries the plaintext fields beside `Encrypt`: they are skipped
 * (bounded in depth and count), never parsed into anything, and never used — the decrypted message
 * is what counts.
 */
import { MAX_DEPTH, MAX_ELEMENTS, type PushFormat, WechatFormatError } from './codec.js'

/** Which envelope a door accepts. */
export interface EnvelopeShape {
  /** The element or key holding the ciphertext: `Encrypt` (official accounts, WeCom), `encrypt` (AI bot). */
  key: string
  /**
   * The other top-level names allowed, each at most once, with flat values. Undefined: anything
   * well-formed beside the key (compatible mode's plaintext fields).
   */
  others?: readonly string[]
  /** Only this format (WeCom doors); either by default. */
  format?: PushFormat
}

/** What a door knows of a request to tell WeChat's retry from a replay: see inbound-replays. */
export interface ReplayStamp {
  timestamp: string
  nonce: string
  /** Hex SHA-256 of the raw body. */
  digest: string
}

/** The official-account safe-mode envelope. */
export const SAFE_ENVELOPE: EnvelopeShape = { key: 'Encrypt', others: ['ToUserName'] }
/** Compatible mode: plaintext fields beside `Encrypt`. */
export const COMPAT_ENVELOPE: EnvelopeShape = { key: 'Encrypt' }

const refuse = (why: string): never => {
  throw new WechatFormatError(`not an encrypted envelope: ${why}`)
}

/**
 * The ciphertext of an envelope, and its format. Throws {@link WechatFormatError} for anything
 * else.
 * @example readEnvelope('<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Encrypt><![CDATA[AbC=]]></Encrypt></xml>', SAFE_ENVELOPE)
 *   // → { encrypt: 'AbC=', format: 'xml' }
 */
export function readEnvelope(
  body: string,
  shape: EnvelopeShape,
): { encrypt: string; format: PushFormat } {
  const at = skipSpace(body, 0)
  const format: PushFormat = body.startsWith('<', at)
    ? 'xml'
    : body.startsWith('{', at)
      ? 'json'
      : refuse('neither XML nor JSON')
  if (shape.format && shape.format !== format) refuse(`${format} where ${shape.format} is expected`)
  const encrypt = format === 'xml' ? readXml(body, at, shape) : readJson(body, at, shape)
  if (encrypt === '') refuse(`empty ${shape.key}`)
  return { encrypt, format }
}

function skipSpace(s: string, i: number): number {
  for (;;) {
    const c = s.charCodeAt(i)
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++
    else return i
  }
}

const XML_NAME = /[A-Za-z_][A-Za-z0-9_.-]*\/?>/y

const allowedByShape = new WeakMap<EnvelopeShape, ReadonlySet<string>>()
/** The names a shape allows at the top (undefined: any), made once per shape, not per push. */
function allowedNames(shape: EnvelopeShape): ReadonlySet<string> | undefined {
  if (!shape.others) return undefined
  let names = allowedByShape.get(shape)
  if (!names) {
    names = new Set([shape.key, ...shape.others])
    allowedByShape.set(shape, names)
  }
  return names
}

function readXml(body: string, start: number, shape: EnvelopeShape): string {
  const allowed = allowedNames(shape)
  const seen = new Set<string>()
  let encrypt: string | undefined
  let elements = 0
  let i = start

  /** After `<`: the element's name, up to and past its `>` (`/>`: `empty` is set). */
  let empty = false
  const openTag = (): string => {
    XML_NAME.lastIndex = i
    const m = XML_NAME.exec(body) ?? refuse('an element without a plain name (no attributes)')
    i += m[0].length
    if (++elements > MAX_ELEMENTS) refuse(`more than ${MAX_ELEMENTS} elements`)
    empty = m[0].endsWith('/>')
    return m[0].slice(0, empty ? -2 : -1)
  }
  /** An element's content up to and past its end tag; its text, or undefined when it nests. */
  const content = (name: string, depth: number): string | undefined => {
    let text = ''
    let nested = false
    for (;;) {
      if (body.startsWith('<![CDATA[', i)) {
        const end = body.indexOf(']]>', i + 9)
        if (end === -1) refuse('unterminated CDATA')
        text += body.slice(i + 9, end)
        i = end + 3
      } else if (body.startsWith('</', i)) {
        if (!body.startsWith(`</${name}>`, i)) refuse(`<${name}> is not closed`)
        i += name.length + 3
        return nested ? undefined : text
      } else if (body.startsWith('<', i)) {
        if (allowed) refuse('nested elements')
        if (depth >= MAX_DEPTH) refuse(`elements nested deeper than ${MAX_DEPTH}`)
        i++
        nested = true
        const child = openTag()
        if (!empty) content(child, depth + 1)
      } else {
        const end = body.indexOf('<', i)
        if (end === -1) refuse(`<${name}> is not closed`)
        const chunk = body.slice(i, end)
        if (chunk.includes('&')) refuse('entity references')
        text += chunk
        i = end
      }
    }
  }

  if (!body.startsWith('<xml>', i)) refuse('the root must be <xml>')
  i += 5
  for (;;) {
    i = skipSpace(body, i)
    if (body.startsWith('</xml>', i)) break
    if (!body.startsWith('<', i)) refuse('text between elements')
    i++
    const name = openTag()
    if (allowed && !allowed.has(name)) refuse(`<${name}>`)
    if (seen.has(name) && (allowed || name === shape.key)) refuse(`<${name}> twice`)
    seen.add(name)
    const value = empty ? '' : content(name, 2)
    if (name === shape.key) encrypt = value ?? refuse(`<${name}> has elements inside`)
  }
  if (skipSpace(body, i + 6) !== body.length) refuse('content after </xml>')
  return encrypt ?? refuse(`no <${shape.key}>`)
}

const JSON_SCALAR = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null/y

function readJson(body: string, start: number, shape: EnvelopeShape): string {
  const allowed = allowedNames(shape)
  const seen = new Set<string>()
  let encrypt: string | undefined
  let containers = 0
  let i = start

  /** At `"`: the string's raw text (escapes refused when `plain`), past its closing quote. */
  const string = (plain: boolean): string => {
    let end = body.indexOf('"', i + 1)
    while (end !== -1 && !plain && escaped(body, end)) end = body.indexOf('"', end + 1)
    if (end === -1) refuse('unterminated string')
    const raw = body.slice(i + 1, end)
    if (plain && raw.includes('\\')) refuse('escapes in the envelope')
    i = end + 1
    return raw
  }
  /** Skips any JSON value (compatible mode's plaintext fields), bounded in depth and count. */
  const value = (depth: number): void => {
    const c = body[i]
    if (c === '"') {
      string(false)
      return
    }
    if (c === '{' || c === '[') {
      if (depth > MAX_DEPTH) refuse('nested too deep')
      if (++containers > MAX_ELEMENTS) refuse(`more than ${MAX_ELEMENTS} objects and arrays`)
      const close = c === '{' ? '}' : ']'
      i = skipSpace(body, i + 1)
      if (body[i] === close) {
        i++
        return
      }
      for (;;) {
        if (c === '{') {
          if (body[i] !== '"') refuse('a key must be a string')
          string(false)
          i = skipSpace(body, i)
          if (body[i] !== ':') refuse('missing :')
          i = skipSpace(body, i + 1)
        }
        value(depth + 1)
        i = skipSpace(body, i)
        if (body[i] === close) {
          i++
          return
        }
        if (body[i] !== ',') refuse('missing ,')
        i = skipSpace(body, i + 1)
      }
    }
    JSON_SCALAR.lastIndex = i
    const m = JSON_SCALAR.exec(body) ?? refuse('not a JSON value')
    i += m[0].length
  }

  i = skipSpace(body, i + 1) // past {
  if (body[i] !== '}') {
    for (;;) {
      if (body[i] !== '"') refuse('a key must be a string')
      const key = string(!!allowed)
      if (allowed && !allowed.has(key)) refuse(`key ${JSON.stringify(key)}`)
      if (seen.has(key) && (allowed || key === shape.key)) refuse(`key ${key} twice`)
      seen.add(key)
      i = skipSpace(body, i)
      if (body[i] !== ':') refuse('missing :')
      i = skipSpace(body, i + 1)
      if (allowed || key === shape.key) {
        if (body[i] !== '"') refuse(`${key} must be a string`)
        const text = string(true)
        if (key === shape.key) encrypt = text
      } else value(2)
      i = skipSpace(body, i)
      if (body[i] === '}') break
      if (body[i] !== ',') refuse('missing ,')
      i = skipSpace(body, i + 1)
    }
  }
  if (skipSpace(body, i + 1) !== body.length) refuse('content after the object')
  return encrypt ?? refuse(`no ${shape.key}`)
}

/** True when the quote at `at` is escaped (an odd number of backslashes before it). */
function escaped(s: string, at: number): boolean {
  let n = 0
  while (s.charCodeAt(at - 1 - n) === 0x5c) n++
  return n % 2 === 1
}
