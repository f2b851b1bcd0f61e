/**
 * The console's request guards: security headers, the language, input the database cannot store
 * (refused before any route reads it), the session (sign-in required), the CSRF token on every
 * POST and the viewer's read-only rule. Cookies are HttpOnly, SameSite=Strict, Path=/console, and
 * Secure when the request came over HTTPS.
 */
import type { Context, MiddlewareHandler } from 'hono'
import { deleteCookie, getCookie, setCookie } from 'hono/cookie'
import { decodeUtf8 } from '../routes/validate.js'
import { timingSafeEqual } from '../wechat/crypto.js'
import { type ConsoleDeps, type ConsoleEnv, ConsoleRefusal } from './context.js'
import { consoleFormat } from './format.js'
import { consoleTranslator, parseLang } from './i18n.js'
import { readSession } from './sessions.js'

export const SESSION_COOKIE = 'qz_session'
export const LANG_COOKIE = 'qz_lang'
export const ACCOUNT_COOKIE = 'qz_account'

/** Whether the browser reached us over HTTPS (directly, or per X-Forwarded-Proto behind proxies). */
export function isHttps(c: Context, trustedProxyHops: number): boolean {
  if (new URL(c.req.url).protocol === 'https:') return true
  if (trustedProxyHops <= 0) return false
  const chain = (c.req.header('x-forwarded-proto') ?? '').split(',').map((s) => s.trim())
  return chain[Math.max(0, chain.length - trustedProxyHops)] === 'https'
}

/** Sets a console cookie with the house attributes. */
export function setConsoleCookie(
  c: Context,
  deps: ConsoleDeps,
  name: string,
  value: string,
  o: { path?: string; maxAge?: number } = {},
) {
  setCookie(c, name, value, {
    path: o.path ?? '/console',
    httpOnly: true,
    sameSite: 'Strict',
    secure: isHttps(c, deps.trustedProxyHops),
    ...(o.maxAge === undefined ? {} : { maxAge: o.maxAge }),
  })
}

/** Security headers on every console response. */
export const consoleHeaders: MiddlewareHandler = async function consoleHeaders(c, next) {
  await next()
  c.header(
    'content-security-policy',
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
  )
  c.header('x-content-type-options', 'nosniff')
  c.header('referrer-policy', 'same-origin')
}

/** Language (`?lang=` remembered in a cookie), translator and formatters. */
export function consoleLanguage(deps: ConsoleDeps): MiddlewareHandler<ConsoleEnv> {
  return async function consoleLanguage(c, next) {
    const asked = parseLang(c.req.query('lang'))
    if (asked) setConsoleCookie(c, deps, LANG_COOKIE, asked, { maxAge: 365 * 86_400 })
    const lang = asked ?? parseLang(getCookie(c, LANG_COOKIE)) ?? deps.locale
    c.set('lang', lang)
    c.set('t', consoleTranslator(lang))
    c.set('fmt', consoleFormat(lang, deps.timeZone))
    await next()
  }
}

const hex = (b: number | undefined) =>
  b !== undefined &&
  ((b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66))

/** `%XX` escapes as the bytes they stand for (a malformed `%` stays as it is, as URLSearchParams). */
function percentDecoded(raw: Uint8Array): Uint8Array {
  const out = new Uint8Array(raw.length)
  let n = 0
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === 0x25 && hex(raw[i + 1]) && hex(raw[i + 2])) {
      out[n++] = Number.parseInt(String.fromCharCode(raw[i + 1]!, raw[i + 2]!), 16)
      i += 2
    } else out[n++] = raw[i]!
  }
  return out.subarray(0, n)
}

/** Why text (its bytes, escapes decoded) cannot be stored: a NUL, or bytes that are not UTF-8. */
function bytesProblem(bytes: Uint8Array): 'error.nul' | 'error.encoding' | undefined {
  if (bytes.includes(0)) return 'error.nul'
  return decodeUtf8(bytes) === undefined ? 'error.encoding' : undefined
}

/**
 * Refuses (400, a page) what the database cannot store, before any route — sign-in included —
 * reads it: a NUL (`%00`) or an escape that is not UTF-8 in the URL (path and query), and a form
 * body whose names or values hold a NUL or are not UTF-8. The form parser would pass the NUL on
 * (PostgreSQL then fails) and turn bad bytes into U+FFFD without a word. The console has no file
 * uploads, so a multipart body is text throughout and is checked as it is.
 */
export const consoleInput: MiddlewareHandler<ConsoleEnv> = async function consoleInput(c, next) {
  const url = new URL(c.req.url)
  const inUrl = bytesProblem(percentDecoded(new TextEncoder().encode(url.pathname + url.search)))
  if (inUrl) throw new ConsoleRefusal(400, inUrl)
  const type = c.req.header('content-type')?.split(';')[0]?.trim().toLowerCase()
  if (type === 'application/x-www-form-urlencoded' || type === 'multipart/form-data') {
    const raw = new Uint8Array(await c.req.arrayBuffer())
    const inForm = bytesProblem(type === 'multipart/form-data' ? raw : percentDecoded(raw))
    if (inForm) throw new ConsoleRefusal(400, inForm)
  }
  await next()
}

/**
 * The account a request is about: a POSTed form's `appid` (every form carries the account its page
 * showed, see `CsrfField`), else `?appid=`, else the one last chosen (remembered in a cookie, so
 * links need not repeat it), else the first configured account. An unknown appid is ignored.
 */
export function consoleAccount(deps: ConsoleDeps): MiddlewareHandler<ConsoleEnv> {
  const known = (x: unknown): x is string => typeof x === 'string' && deps.appids.includes(x)
  return async function consoleAccount(c, next) {
    const posted = c.req.method === 'POST' ? (await c.req.parseBody()).appid : undefined
    const asked = known(posted) ? posted : c.req.query('appid')
    const remembered = getCookie(c, ACCOUNT_COOKIE)
    const appid = known(asked) ? asked : known(remembered) ? remembered : deps.appids[0]
    if (!appid) throw new ConsoleRefusal(404, 'error.notFound')
    if (appid !== remembered && deps.appids.length > 1)
      setConsoleCookie(c, deps, ACCOUNT_COOKIE, appid, { maxAge: 365 * 86_400 })
    c.set('appid', appid)
    c.set('appids', deps.appids)
    await next()
  }
}

/** Requires a live session: without one, the browser is sent to the sign-in page. */
export function consoleSession(deps: ConsoleDeps): MiddlewareHandler<ConsoleEnv> {
  return async function consoleSession(c, next) {
    const token = getCookie(c, SESSION_COOKIE)
    const session =
      token &&
      (await readSession(deps.db, { token, now: deps.clock.now(), limits: deps.sessionLimits }))
    if (!session) {
      if (token) deleteCookie(c, SESSION_COOKIE, { path: '/console' })
      return c.redirect('/console/login', 303)
    }
    c.set('session', session)
    await next()
  }
}

/** The hidden `_csrf` field of a POST must be the session's token (403 otherwise). */
export function csrfField(expected: string, given: unknown): boolean {
  return typeof given === 'string' && given.length > 0 && timingSafeEqual(given, expected)
}

/** Every POST carries the session's CSRF token; viewers may not POST (except signing out). */
export const consoleActions: MiddlewareHandler<ConsoleEnv> = async function consoleActions(
  c,
  next,
) {
  if (c.req.method === 'POST') {
    const body = await c.req.parseBody()
    if (!csrfField(c.var.session.csrfToken, body._csrf)) throw new ConsoleRefusal(403, 'error.csrf')
    if (c.var.session.operator.role === 'viewer' && c.req.path !== '/console/logout')
      throw new ConsoleRefusal(403, 'error.viewer')
  }
  await next()
}
