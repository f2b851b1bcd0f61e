/**
 * One access-log line per request (info: method, route pattern, status, ms) and the request
 * metrics. The route is the matched pattern (`/wechat/:appid`), never the path or query string —
 * pushes carry their signatures in the query.
 */
import type { MiddlewareHandler } from 'hono'
import { routePath } from 'hono/route'
import type { Logger } from '../logger.js'
import type { Metrics } from '../metrics.js'

/** Options for {@link accessLog}. */
export interface AccessLogOptions {
  logger: Logger
  metrics: Metrics
}

/** Logs and counts every request once it is answered. */
export function accessLog(o: AccessLogOptions): MiddlewareHandler {
  return async function accessLog(c, next) {
    const started = performance.now()
    await next()
    const seconds = (performance.now() - started) / 1000
    const matched = routePath(c, -1)
    // Only this middleware matched: no route took the request.
    const route = matched === '*' || matched === '/*' ? 'unmatched' : matched
    const { method } = c.req
    const status = c.res.status
    o.metrics.request({ method, route, status, seconds })
    o.logger.info('request', { method, route, status, ms: Math.round(seconds * 10000) / 10 })
  }
}
