/**
 * One access-log line per request (info: method, route pattern, status, ms) and the request
 * metrics. The route is the matched pattern (`/wechat/:appid`), never the path or query string —
 * pushes carry their signatures in the query.
 */
import type { Context, MiddlewareHandler } from 'hono'
import { matchedRoutes } from 'hono/route'
import type { Logger } from '../logger.js'
import type { Metrics } from '../metrics.js'

/** Options for {@link accessLog}. */
export interface AccessLogOptions {
  logger: Logger
  metrics: Metrics
}

/** Logs and counts every request once it is answered. */
export function accessLog(o: AccessLogOptions): MiddlewareHandler {
  // Not an async function: one promise callback instead of an async frame awaiting the rest
  // (bench/README.md, session 37). Hono's composition turns an Error a handler throws into the
  // error handler's response before `next()` settles: refusals and failures are logged too.
  return function accessLog(c, next) {
    const started = performance.now()
    return next().then(() => {
      const seconds = (performance.now() - started) / 1000
      const route = routeAskedFor(c)
      const { method } = c.req
      const status = c.res.status
      o.metrics.request({ method, route, status, seconds })
      o.logger.info('request', { method, route, status, ms: Math.round(seconds * 10000) / 10 })
    })
  }
}

/**
 * The pattern of what a request asked for: the route of the handler that answered; when a
 * middleware answered for it (a `*` pattern: a redirect to sign in, a refusal), the last concrete
 * route the request matched — the page it guarded, not a sub-app's catch-all (`/console/*`, which
 * every console page matches); `unmatched` when only middleware matched (no route took it).
 */
function routeAskedFor(c: Context): string {
  const routes = matchedRoutes(c)
  const concrete = (path: string | undefined): path is string =>
    path !== undefined && !path.endsWith('*')
  const answered = routes[c.req.routeIndex]?.path
  if (concrete(answered)) return answered
  const guarded = routes.findLast((r) => concrete(r.path))?.path
  if (guarded !== undefined) return guarded
  return answered === undefined || answered === '*' || answered === '/*' ? 'unmatched' : answered
}
