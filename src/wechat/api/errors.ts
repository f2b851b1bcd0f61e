/**
 * The two errors the API client throws: `WechatApiError` when WeChat answered with an errcode, and
 * `WechatNetworkError` when it did not answer usefully (timeout, connection, 5xx, non-JSON). Both
 * carry the method, so logs say which call failed, and never the access token.
 */

const HINTS: Record<number, string> = {
  [-1]: 'WeChat is busy; retried with backoff',
  40001:
    'access_token invalid or superseded: another component refreshed it, or the AppSecret is wrong',
  40003: 'invalid openid: not a follower of this AppID (openids are per account)',
  40014: 'malformed access_token',
  40164: 'caller IP is not in the API IP whitelist (MP console → 基本配置 → IP白名单)',
  42001: 'access_token expired',
  43004: 'the member does not follow the account (template messages need a follower)',
  43101: 'the member refused or used up the subscription for this template',
  45009: 'daily API quota reached; it resets at midnight (Beijing time) or with clear_quota',
  45011: 'per-minute API quota reached; slow down',
  45015: 'outside the 48-hour customer-service window, or the member unfollowed',
  45047: 'customer-service window quota used up',
  47003: 'an argument is invalid; errmsg names the field',
  48001: 'the account lacks permission for this API',
  61004: 'caller IP is not registered for this account',
}

/** A hint for an errcode, if we have one. */
export function hintFor(errcode: number): string | undefined {
  return HINTS[errcode]
}

/** WeChat answered `{ errcode != 0, errmsg }`. */
export class WechatApiError extends Error {
  override readonly name = 'WechatApiError'
  readonly hint: string | undefined
  constructor(
    readonly errcode: number,
    readonly errmsg: string,
    readonly method: string,
    /** The request body as sent (never contains the access token). */
    readonly payload?: unknown,
  ) {
    const hint = hintFor(errcode)
    super(`${method} failed: ${errcode} ${errmsg}${hint ? ` — ${hint}` : ''}`)
    this.hint = hint
  }
}

/** No usable answer: timeout, connection failure, HTTP 5xx or a body that is not JSON. */
export class WechatNetworkError extends Error {
  override readonly name = 'WechatNetworkError'
  constructor(
    readonly method: string,
    message: string,
    /** HTTP status, when there was a response. */
    readonly status?: number,
    options?: { cause?: unknown; maybeDelivered?: boolean },
  ) {
    super(`${method}: ${message}`, options)
    this.maybeDelivered = options?.maybeDelivered ?? true
  }
  /**
   * Whether WeChat may have acted on the request: the request was written and no usable answer
   * came (a timeout, a dropped connection, a 5xx other than 503). False when the connection was
   * never made or the service refused it (503).
   */
  readonly maybeDelivered: boolean
}

/** Errcodes that mean "the token is bad": expire it (if still current) and retry once. */
export const TOKEN_ERRORS = new Set([40001, 40014, 42001])

/**
 * Errcodes by which WeChat says an argument of the call is wrong — a value the caller chose (an
 * openid, a tag id or name, a list's size, a field of a message) — rather than that WeChat, the
 * token or the account failed: 40003 invalid openid, 40032 invalid openid list size, 45058 a
 * reserved tag (0/1/2), 45157 invalid (duplicate) tag name, 45158 tag name too long, 45159 invalid
 * tag id, 47003 argument invalid (errmsg names the field). Kept short on purpose: anything not
 * listed is WeChat's or the deployment's problem.
 */
export const ARGUMENT_ERRORS = new Set([40003, 40032, 45058, 45157, 45158, 45159, 47003])

/** True when WeChat refused the call for one of its arguments ({@link ARGUMENT_ERRORS}). */
export function isArgumentError(error: unknown): error is WechatApiError {
  return error instanceof WechatApiError && ARGUMENT_ERRORS.has(error.errcode)
}

/** True for failures worth retrying with backoff: WeChat busy, 5xx, timeouts, connection errors. */
export function isTransient(error: unknown): boolean {
  if (error instanceof WechatNetworkError) return error.status === undefined || error.status >= 500
  return error instanceof WechatApiError && error.errcode === -1
}

/** The template-message rule a value breaks (validateTemplateMessage), for callers that word it. */
export type TemplateRule =
  | { code: 'required' }
  | { code: 'template_id' }
  | { code: 'colour' }
  | { code: 'url' }
  | { code: 'mp_appid' }
  | { code: 'client_msg_id' }
  | { code: 'no_keywords' }
  | { code: 'first_remark' }
  | { code: 'not_string' }
  | { code: 'line_break' }
  | { code: 'emoji' }
  | { code: 'too_long'; params: { length: number; max: number } }

/** A message we refuse to send because WeChat would reject or silently mangle it. */
export class WechatValidationError extends Error {
  override readonly name = 'WechatValidationError'
  constructor(
    /** The offending field, e.g. `data.keyword1.value`. */
    readonly field: string,
    /** In English, for logs and the API's 400. */
    readonly problem: string,
    /** Which template rule, with its figures, when a template was refused (the console words it). */
    readonly rule?: TemplateRule,
  ) {
    super(`${field}: ${problem}`)
  }
}
