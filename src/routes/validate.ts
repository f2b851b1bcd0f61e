/**
 * Input at the edges: JSON bodies, query strings and path parameters are checked with valibot
 * schemas, and every problem is answered as one 400 that names each field:
 * `{"code":"BAD_REQUEST","message":"delta: must be a whole number; reason: is required",
 *   "issues":[{"path":"delta","message":"must be a whole number"},…]}` — valibot's issues,
 * flattened and in plain words (`is required`, `is not a known field`, `must be a string`).
 * The shared schemas below keep what reaches the database inside its columns.
 */
import type { Context, MiddlewareHandler } from 'hono'
import { HTTPException } from 'hono/http-exception'
import * as v from 'valibot'
import { isHttpUrl } from '../http-url.js'
import { plainIssues } from '../plain-issues.js'

/** The API's wording of valibot's issues (plain-issues.ts). */
export const plainIssue = plainIssues()

/** One problem with the input: where (a dot path, `body` for the whole) and what. */
export interface InputIssue {
  path: string
  message: string
}

/** A 400 that lists every problem with the input; the app's error handler adds `issues`. */
export class InputError extends HTTPException {
  readonly issues: InputIssue[]
  constructor(issues: InputIssue[]) {
    super(400, { message: issues.map((i) => `${i.path}: ${i.message}`).join('; ') })
    this.issues = issues
  }
}

/**
 * valibot's issues, flattened to one entry per field and message (worded by {@link plainIssue}
 * where the schema gave no message: parse with `{ message: plainIssue }`).
 */
export function inputIssues(issues: [v.BaseIssue<unknown>, ...v.BaseIssue<unknown>[]]) {
  const flat = v.flatten(issues)
  const out: InputIssue[] = []
  for (const message of flat.root ?? []) out.push({ path: 'body', message })
  for (const [path, messages] of Object.entries(flat.nested ?? {}))
    for (const message of (messages as string[] | undefined) ?? []) out.push({ path, message })
  for (const message of flat.other ?? []) out.push({ path: 'body', message })
  return out
}

function check<T extends v.GenericSchema>(schema: T, input: unknown, root: string) {
  const result = v.safeParse(schema, input, { abortPipeEarly: true, message: plainIssue })
  if (result.success) return result.output as v.InferOutput<T>
  throw new InputError(
    inputIssues(result.issues).map((i) => (i.path === 'body' ? { ...i, path: root } : i)),
  )
}

const UTF8 = new TextDecoder('utf-8', { fatal: true })

/** `bytes` as UTF-8 text, or undefined when they are not well-formed UTF-8. */
export function decodeUtf8(bytes: ArrayBuffer | Uint8Array): string | undefined {
  try {
    return UTF8.decode(bytes)
  } catch {
    return undefined
  }
}

/**
 * What makes a string unfit to store, or undefined: a NUL character (PostgreSQL text cannot hold
 * one) or a lone surrogate (`"\ud800"` in JSON: not text, and stored it would become U+FFFD).
 */
export function textProblem(s: string): string | undefined {
  if (s.includes('\u0000')) return 'must not contain NUL characters'
  if (/\p{Cs}/u.test(s)) return 'must be well-formed Unicode (no lone surrogates)'
  return undefined
}

class TextRefused extends Error {}

// Every key and string value of a parsed JSON body, as JSON.parse hands them over.
const checkText = (key: string, value: unknown) => {
  const problem = textProblem(key) ?? (typeof value === 'string' ? textProblem(value) : undefined)
  if (problem) throw new TextRefused(problem)
  return value
}

/**
 * The JSON body, checked against `schema`. The body must be UTF-8 (decoded strictly: invalid bytes
 * are refused, not replaced with U+FFFD), and no key or string may hold a NUL character or a lone
 * surrogate (see {@link textProblem}).
 */
export async function parseBody<T extends v.GenericSchema>(
  c: Context,
  schema: T,
): Promise<v.InferOutput<T>> {
  const text = decodeUtf8(await c.req.arrayBuffer())
  if (text === undefined) throw new InputError([{ path: 'body', message: 'must be UTF-8' }])
  let json: unknown
  try {
    json = JSON.parse(text, checkText)
  } catch (error) {
    if (error instanceof TextRefused)
      throw new InputError([{ path: 'body', message: error.message }])
    throw new HTTPException(400, { message: 'body must be JSON' })
  }
  return check(schema, json, 'body')
}

/** The query string (first value of each name), checked against an object schema. */
export function parseQuery<T extends v.GenericSchema>(c: Context, schema: T): v.InferOutput<T> {
  return check(schema, c.req.query(), 'query')
}

/** One path parameter, checked against `schema` (errors name the parameter). */
export function parseParam<T extends v.GenericSchema>(
  c: Context,
  name: string,
  schema: T,
): v.InferOutput<T> {
  return check(v.object({ [name]: schema }), { [name]: c.req.param(name) }, name)[name]
}

/** The largest value of a PostgreSQL `integer` column. */
export const INT_MAX = 2_147_483_647

/** A whole number in [min, max] (max at most {@link INT_MAX}, an `integer` column). */
export const int = (min: number, max = INT_MAX, message = 'must be a whole number') =>
  v.pipe(
    v.number(),
    v.integer(message),
    v.minValue(min, `must be at least ${min}`),
    v.maxValue(max, `must be at most ${max}`),
  )

/** A row id (`bigint` identity column) as a JSON number. */
export const rowId = v.pipe(
  v.number(),
  v.integer('must be an id'),
  v.minValue(1, 'must be an id'),
  v.maxValue(Number.MAX_SAFE_INTEGER, 'must be an id'),
)

/** Digits from a path or query string as a whole number in [min, max]. */
export const digits = (min: number, max: number, message: string) =>
  v.pipe(
    v.string(),
    v.regex(/^\d{1,16}$/, message),
    v.transform(Number),
    v.minValue(min, message),
    v.maxValue(max, message),
  )

/** A row id from a path or query string. */
export const rowIdParam = digits(1, Number.MAX_SAFE_INTEGER, 'must be an id')

/**
 * A list's `?limit=` (its page size), shared by every list of the operator API: a whole number
 * ≥ 1, `fallback` when absent; a page larger than `max` is served as `max`. Anything else (`1.5`,
 * `0`, `-1`, `1e3`) is a 400 naming the parameter — never a number the database cannot take.
 * @example v.object({ limit: pageLimit(200) })
 */
export const pageLimit = (max: number, fallback = 50) =>
  v.optional(
    v.pipe(
      digits(1, Number.MAX_SAFE_INTEGER, 'must be a whole number ≥ 1'),
      v.transform((n) => Math.min(n, max)),
    ),
    String(fallback),
  )

const realDay = (s: string) => {
  const [y, m, d] = s.slice(0, 10).split('-').map(Number) as [number, number, number]
  const date = new Date(Date.UTC(y, m - 1, d))
  return (
    y >= 1970 &&
    y <= 9999 &&
    date.getUTCFullYear() === y &&
    date.getUTCMonth() === m - 1 &&
    date.getUTCDate() === d
  )
}

/** Whether `s` is a calendar date `YYYY-MM-DD` that exists (no 2026-02-31), 1970–9999. */
export const isDay = (s: string) => /^\d{4}-\d{2}-\d{2}$/.test(s) && realDay(s)

/** A calendar date `YYYY-MM-DD`. */
export const day = (message = 'must be a date YYYY-MM-DD') =>
  v.pipe(v.string(), v.check(isDay, message))

/** The first and last day a report may ask about (analytics, the audit log). */
export const REPORT_DAYS = { first: '2000-01-01', last: '2100-12-31' } as const

/**
 * A day a report may ask about: a calendar date `YYYY-MM-DD` that exists, from 2000 to 2100 (so the
 * day after it and its start in any time zone are still dates).
 */
export const reportDay = v.pipe(
  v.string(),
  v.check(isDay, 'must be a day, YYYY-MM-DD'),
  v.check(
    (d) => d >= REPORT_DAYS.first && d <= REPORT_DAYS.last,
    'must be a day between 2000 and 2100',
  ),
)

/** An ISO 8601 time with an offset, on a date that exists (1970–9999). */
export const timestamp = (message = 'must be an ISO 8601 time with an offset') =>
  v.pipe(
    v.string(),
    v.isoTimestamp(message),
    v.check((s) => realDay(s) && !Number.isNaN(Date.parse(s)), message),
  )

/** An absolute http(s) URL, exactly as a URL parser writes it (no spaces, no control characters). */
export const httpUrl = (message = 'must be an absolute http(s) URL (no spaces or line breaks)') =>
  v.pipe(v.string(), v.maxLength(2048, message), v.check(isHttpUrl, message))

/**
 * Refuses (400) a URL carrying a NUL character (`%00`) in its path or query: PostgreSQL text
 * cannot hold one, so it would otherwise fail in the database as a 500.
 */
export const refuseNulInUrl: MiddlewareHandler = async function refuseNulInUrl(c, next) {
  if (/%00/i.test(c.req.url))
    throw new InputError([{ path: 'url', message: 'must not contain NUL characters (%00)' }])
  await next()
}

/** Refuses (404) an operator route for another account than the shop's. */
export const shopAccountGuard = (appid: string) => (requested: string) => {
  if (requested !== appid)
    throw new HTTPException(404, { message: `the shop belongs to account ${appid}` })
}

/** The `:appid` of an operator route, refused (404) unless it is a configured account. */
export function accountParam(appids: string[]) {
  return (c: Context): string => {
    const appid = c.req.param('appid') ?? ''
    if (!appids.includes(appid)) throw new HTTPException(404, { message: 'unknown account' })
    return appid
  }
}
