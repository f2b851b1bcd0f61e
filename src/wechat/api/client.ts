/**
 * The outbound official-account API client. A call passes through small layers, each a function over
 * the next (like grammY's API transformers):
 *
 *   logging → token (inject; on 40001/40014/42001 compare-and-expire, retry once)
 *           → backoff (-1, 5xx, timeouts, connection errors; never 45009) → timeout → fetch
 *
 * A request marked `idempotent: false` (a customer-service or subscribe message: WeChat has no
 * idempotency key for them) is retried only when it certainly was not delivered — WeChat answered
 * -1 (busy), or the connection was never made — never after a timeout or a dropped connection,
 * which could deliver it twice ({@link WechatNetworkError.maybeDelivered}).
 *
 * Portable: fetch and AbortSignal only.
 */
import type { Logger } from '../../logger.js'
import { isTransient, TOKEN_ERRORS, WechatApiError, WechatNetworkError } from './errors.js'

/** One API request. `path` starts with `/`, e.g. `/cgi-bin/message/template/send`. */
export interface ApiRequest {
  method: string
  path: string
  http: 'GET' | 'POST'
  query?: Record<string, string>
  body?: unknown
  /** Whether the access token is added (false for the token endpoints themselves). */
  auth: boolean
  /** Set by the token layer. */
  accessToken?: string
  /** The body holds a secret: keep it out of errors. */
  secret?: boolean
  /** False: sending it twice would deliver twice (see the header). Default true. */
  idempotent?: boolean
  /** False: never retried (a single-use credential such as a `wx.login()` code). */
  retry?: boolean
}

/** A JSON object WeChat answered with errcode 0 (or none). */
export type ApiResponse = Record<string, unknown>

/** A step in the chain. */
export type Call = (req: ApiRequest) => Promise<ApiResponse>
/** A layer wraps the next call. */
export type Layer = (next: Call) => Call

/** Where access tokens come from (see token-provider.ts). */
export interface TokenSource {
  /** A valid token, fetching one if needed. */
  get(): Promise<string>
  /** Marks `token` expired, but only if it is still the stored one (compare-and-expire). */
  expire(token: string): Promise<void>
}

/** The part of `fetch` the client uses; the global `fetch` is one (Node injects a leaner one). */
export type FetchLike = (
  url: URL,
  init: { method: string; headers?: Record<string, string>; body?: string; signal: AbortSignal },
) => Promise<{ status: number; text(): Promise<string> }>

/** Options of {@link createApiClient}. */
export interface ApiClientOptions {
  baseUrl: string
  tokens?: TokenSource
  logger?: Logger
  /** Per attempt (default 5000 ms). */
  timeoutMs?: number
  /** Retries after the first attempt for transient failures (default 3). */
  retries?: number
  /** First backoff delay (default 200 ms); doubles with ±25 % jitter, capped at 5 s. */
  backoffMs?: number
  fetch?: FetchLike
  sleep?: (ms: number) => Promise<void>
  random?: () => number
}

/** The transport: one HTTP exchange, JSON in and out, errcode → {@link WechatApiError}. */
export function transport(baseUrl: string, fetchFn: FetchLike, timeoutMs: number): Call {
  return async (req) => {
    const url = new URL(baseUrl + req.path)
    for (const [k, v] of Object.entries(req.query ?? {})) url.searchParams.set(k, v)
    if (req.accessToken) url.searchParams.set('access_token', req.accessToken)
    // One timer per request, cleared as soon as the body is read (AbortSignal.timeout would keep
    // every timer and signal alive for the full timeout).
    const abort = new AbortController()
    const timer = setTimeout(() => abort.abort(), timeoutMs)
    let res: Awaited<ReturnType<FetchLike>>
    let text: string
    try {
      res = await fetchFn(url, {
        method: req.http,
        headers: req.body === undefined ? undefined : { 'content-type': 'application/json' },
        body: req.body === undefined ? undefined : JSON.stringify(req.body),
        signal: abort.signal,
      })
      text = await res.text()
    } catch (error) {
      const refused = !abort.signal.aborted && neverConnected(error)
      throw new WechatNetworkError(
        req.method,
        abort.signal.aborted
          ? `timed out after ${timeoutMs} ms`
          : refused
            ? 'connection refused'
            : 'request failed',
        undefined,
        { cause: error, maybeDelivered: !refused },
      )
    } finally {
      clearTimeout(timer)
    }
    if (res.status >= 500)
      // 503: the service refused the request before processing it; any other 5xx may come after.
      throw new WechatNetworkError(req.method, `HTTP ${res.status}`, res.status, {
        maybeDelivered: res.status !== 503,
      })
    let json: ApiResponse
    try {
      json = JSON.parse(text) as ApiResponse
    } catch {
      throw new WechatNetworkError(req.method, `HTTP ${res.status}, body is not JSON`, res.status)
    }
    const errcode = Number(json.errcode ?? 0)
    if (errcode !== 0)
      throw new WechatApiError(
        errcode,
        String(json.errmsg ?? ''),
        req.method,
        req.secret ? undefined : req.body,
      )
    return json
  }
}

/** Retries transient failures with bounded, jittered exponential backoff. 45009 is never retried. */
export function backoff(options: {
  retries: number
  baseMs: number
  sleep: (ms: number) => Promise<void>
  random: () => number
}): Layer {
  return (next) => async (req) => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await next(req)
      } catch (error) {
        if (attempt >= options.retries || !isTransient(error) || req.retry === false) throw error
        if (req.idempotent === false && !certainlyNotDelivered(error)) throw error
        const delay = Math.min(5000, options.baseMs * 2 ** attempt) * (0.75 + options.random() / 2)
        await options.sleep(delay)
      }
    }
  }
}

/** Error codes of a connection that was never made (the request was not written). */
const NOT_CONNECTED = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
])

/** Whether a fetch failure (or its causes) says the connection was never made. */
function neverConnected(error: unknown): boolean {
  for (let e = error, depth = 0; e && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string' && NOT_CONNECTED.has(code)) return true
    e = (e as { cause?: unknown }).cause
  }
  return false
}

/** True when a failed request certainly did not reach WeChat's sending (safe to send again). */
export function certainlyNotDelivered(error: unknown): boolean {
  if (error instanceof WechatApiError) return true // WeChat answered with an error: not sent
  if (error instanceof WechatNetworkError) return !error.maybeDelivered
  return false
}

/** Adds the access token; on a token error expires that token (if still current) and retries once. */
export function withToken(tokens: TokenSource): Layer {
  return (next) => async (req) => {
    if (!req.auth) return next(req)
    const token = await tokens.get()
    try {
      return await next({ ...req, accessToken: token })
    } catch (error) {
      if (!(error instanceof WechatApiError) || !TOKEN_ERRORS.has(error.errcode)) throw error
      await tokens.expire(token)
      return next({ ...req, accessToken: await tokens.get() })
    }
  }
}

/** Logs every call's outcome and duration; never the token or the body. */
export function logging(logger: Logger, now: () => number = Date.now): Layer {
  return (next) => async (req) => {
    const started = now()
    try {
      const res = await next(req)
      logger.debug('wechat api', { method: req.method, ms: now() - started })
      return res
    } catch (error) {
      const fields = {
        method: req.method,
        ms: now() - started,
        errcode: error instanceof WechatApiError ? error.errcode : undefined,
        status: error instanceof WechatNetworkError ? error.status : undefined,
        reason: error instanceof Error ? error.message : String(error),
      }
      logger.warn('wechat api failed', fields)
      throw error
    }
  }
}

/** Composes layers outermost first. */
export function compose(layers: Layer[], last: Call): Call {
  return layers.reduceRight((next, layer) => layer(next), last)
}

/**
 * The client: `call` sends one request through every layer.
 * @example
 * const api = createApiClient({ baseUrl: 'https://api.weixin.qq.com', tokens })
 * await api.call({ method: 'user.info', path: '/cgi-bin/user/info', http: 'GET', query: { openid }, auth: true })
 */
export function createApiClient(options: ApiClientOptions) {
  const fetchFn = options.fetch ?? fetch
  const raw = transport(options.baseUrl.replace(/\/+$/, ''), fetchFn, options.timeoutMs ?? 5000)
  const retry = backoff({
    retries: options.retries ?? 3,
    baseMs: options.backoffMs ?? 200,
    sleep: options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms))),
    random: options.random ?? Math.random,
  })
  const layers: Layer[] = []
  if (options.logger) layers.push(logging(options.logger))
  if (options.tokens) layers.push(withToken(options.tokens))
  layers.push(retry)
  const call = compose(layers, raw)
  return {
    call,
    /** The chain without the token layer, for the token endpoints. */
    unauthenticated: compose([retry], raw),
  }
}

/** The client's type. */
export type ApiClient = ReturnType<typeof createApiClient>
