/** `GET|POST /wechat` (default account) and `/wechat/:appid`: the official-account callback. */
import { Hono } from 'hono'
import { getRuntimeKey } from 'hono/adapter'
import { HTTPException } from 'hono/http-exception'
import type { TrafficCounter } from '../analytics/traffic-counter.js'
import { ReplayRefusedError } from '../community/inbound-events.js'
import type { AccountConfig } from '../config.js'
import { answeredPushes } from '../inbound/answered.js'
import { type DispatchDeps, dispatch } from '../inbound/dispatch.js'
import type { Metrics } from '../metrics.js'
import { bodySize } from '../middleware/body-size.js'
import type { CryptoBackend } from '../wechat/crypto.js'
import { respondToWechat, wechatPushOpener } from '../wechat/webhook.js'

/** What the callback route needs. */
export interface WechatRouteOptions {
  accounts: AccountConfig[]
  maxSkewSeconds: number
  maxBodyBytes: number
  crypto?: CryptoBackend
  dispatch: Omit<DispatchDeps, 'waitUntil' | 'answered'>
  metrics?: Metrics
  /** Refused pushes of configured accounts, per minute in the database (the error-rate alert). */
  traffic?: TrafficCounter
}

/** Why a push was refused before dispatch, by the status the webhook answered. */
const REFUSED: Record<number, string> = {
  400: 'refused_malformed',
  401: 'refused_unauthenticated',
  404: 'refused_unknown_account',
  413: 'refused_too_large',
}

/** The callback routes, to mount at `/wechat`. */
export function wechatRoutes(options: WechatRouteOptions): Hono {
  const byAppid = new Map(options.accounts.map((a) => [a.appid, a]))
  const clock = options.dispatch.clock
  // Built once: Node needs no waitUntil. (Object.assign, not `{ ...deps, metrics }`: Node 20's V8
  // takes a slow path for properties after a spread; bench/README.md, "Object spread".)
  const nodeDeps: DispatchDeps = Object.assign({}, options.dispatch, {
    waitUntil: undefined,
    metrics: options.metrics,
    // One memo per route (per process, per Worker isolate): WeChat's resends of answered pushes.
    answered: answeredPushes(),
  })
  const workerd = getRuntimeKey() === 'workerd'
  const open = wechatPushOpener({
    account: (appid) => (appid === undefined ? options.accounts[0] : byAppid.get(appid)),
    maxSkewSeconds: options.maxSkewSeconds,
    now: () => clock.now().getTime(),
    crypto: options.crypto,
  })
  // Three levels: the refusal count, the body-size check, the push. The first two are not async
  // functions, and the push's handler calls the webhook's work and answers with the push it opened
  // (no middleware level and no context variable between them; a few per cent of a push's CPU at
  // most: bench/README.md, session 37).
  return new Hono().on(
    ['GET', 'POST'],
    '/:appid?',
    function countRefusals(c, next) {
      const at = performance.now()
      return next().then(() => {
        const reason = c.req.method === 'POST' ? REFUSED[c.res.status] : undefined
        if (!reason) return
        const appid = c.req.param('appid') ?? options.accounts[0]?.appid
        if (appid && byAppid.has(appid)) options.traffic?.add(appid, 'push_refused')
        options.metrics?.push({
          channel: 'oa',
          type: 'unknown',
          outcome: reason as `refused_${string}`,
          seconds: (performance.now() - at) / 1000,
        })
      })
    },
    bodySize({ maxBytes: options.maxBodyBytes }),
    async function push(c) {
      const receivedAt = clock.now().getTime()
      const opened = await open(c)
      // The server's verification GET, answered.
      if (opened instanceof Response) return opened
      const { account, message, format, stamp } = opened
      // Workers end an isolate's work with the response unless told to wait.
      const deps: DispatchDeps = workerd
        ? Object.assign({}, nodeDeps, {
            waitUntil: (work: Promise<unknown>) => c.executionCtx.waitUntil(work),
          })
        : nodeDeps
      let body: string | null
      try {
        body = await dispatch(deps, { appid: account.appid, message, format, receivedAt, stamp })
      } catch (error) {
        if (error instanceof ReplayRefusedError)
          throw new HTTPException(401, { message: error.message })
        throw error
      }
      return respondToWechat(c, opened, body)
    },
  )
}
