/**
 * The operator API's door: `Authorization: Bearer <ADMIN_TOKEN>` (constant-time compare of
 * digests; the API is off — 404 — when ADMIN_TOKEN is unset). Refused calls go to the audit log
 * with the client's address, never the token: every 4xx an operator route answers, and the 401s of
 * a client address within {@link REFUSAL_AUDIT_RATE} (a burst, then one a minute, a bucket shared
 * in the database) — beyond it a 401 is answered the same but not audited, so callers without the
 * token cannot grow the table or bury the entries that matter; the request metric and the access
 * log still count every one.
 */
import type { Context, MiddlewareHandler } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { Kysely } from 'kysely'
import type { Clock } from '../clock.js'
import { audit, REFUSED } from '../community/audit-log.js'
import { limitRequest, type RateLimit } from '../community/rate-buckets.js'
import type { Database } from '../db/schema.js'
import type { Logger } from '../logger.js'
import { sha1Hex, timingSafeEqual } from '../wechat/crypto.js'
import { API_ACTOR } from './route-helpers.js'

export interface AdminAuthOptions {
  db: Kysely<Database>
  clock: Clock
  logger: Logger
  adminToken?: string
  /** The configured accounts: a refusal is audited under the one the path names, else `-`. */
  appids: string[]
}

/** How many unauthenticated (401) calls of one client address are audited: 5, then one a minute. */
export const REFUSAL_AUDIT_RATE: RateLimit = { perSecond: 1 / 60, burst: 5 }

/** The `:appid` an operator call names, when it names one (refused calls are audited under it). */
const requestedAppid = (path: string) => /\/accounts\/([^/]{1,64})/.exec(path)?.[1]

/** The bearer-token check and refusal audit, for `app.use('*', …)` on the operator API. */
export function adminAuth(o: AdminAuthOptions): MiddlewareHandler {
  // Compare digests so the comparison time does not depend on the token's length either.
  const expected = o.adminToken ? sha1Hex(o.adminToken) : undefined

  /** A refused call goes to the audit log with the client's address (never the token). */
  const auditRefusal = async (c: Context, status: number, reason: string | undefined) => {
    const requested = requestedAppid(c.req.path)
    try {
      // A 401 takes a token from its address's bucket; without one it is not audited.
      if (status === 401) {
        const bucket = { key: `admin-refused:${c.var.clientAddress}`, rate: REFUSAL_AUDIT_RATE }
        if ((await limitRequest(o.db, [bucket], o.clock.now())) > 0) return
      }
      await audit(o.db, {
        appid: requested && o.appids.includes(requested) ? requested : '-',
        actor: status === 401 ? 'anonymous' : API_ACTOR,
        action: REFUSED,
        target: `${c.req.method} ${c.req.path}`.replaceAll('\u0000', '%00').slice(0, 300),
        details: { status, reason: reason?.slice(0, 300), appid: requested },
        now: o.clock.now(),
        clientAddress: c.var.clientAddress,
      })
    } catch (error) {
      o.logger.warn('could not audit a refused operator call', { status, error })
    }
  }

  return async function adminAuth(c, next) {
    if (!expected)
      throw new HTTPException(404, { message: 'operator API disabled: set ADMIN_TOKEN' })
    const given = /^Bearer (.+)$/.exec(c.req.header('authorization') ?? '')?.[1]
    if (!given || !timingSafeEqual(await sha1Hex(given), await expected)) {
      const message = 'missing or wrong bearer token'
      await auditRefusal(c, 401, message)
      throw new HTTPException(401, { message })
    }
    await next()
    if (c.res.status >= 400 && c.res.status < 500)
      await auditRefusal(
        c,
        c.res.status,
        c.error?.message ?? (c.res.status === 404 ? 'no such route' : undefined),
      )
  }
}
