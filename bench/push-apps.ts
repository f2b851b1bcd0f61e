/**
 * The push-handling apps the webhook benches measure, built in one place for the server bench
 * (bench/server.ts, over HTTP) and the in-process layers bench (bench/layers.ts):
 *   - `webhookAlone`: quanzi's webhook middleware (signature, envelope, decryption, the hardening
 *     checks, parse, typed message, sealed reply) answering a fixed reply, no dispatch — (w);
 *   - `leastDispatch`: (w) plus the least dispatch (b)'s push needs written inline with Maps (replay
 *     check, dedupe claim, member activity, command lookup, deadline timer armed and cleared,
 *     answer stored) — (m), none of quanzi's layers;
 *   - `webhookDispatch`: (w) plus quanzi's own `dispatch` called directly — no app middleware, no
 *     route wrappers (in-process only);
 *   - `wechatRoutesOnly`: quanzi's `/wechat` routes (refusal counter, body size, webhook, dispatch)
 *     alone in an app (in-process only);
 *   - `benchApp`: the whole app (`createApp`); with in-memory stores and a database that answers
 *     no rows, (b).
 */
import { Hono } from 'hono'
import type { Kysely } from 'kysely'
import { createRouter } from '../handlers/index.js'
import { type AppDeps, createApp } from '../src/app.js'
import { systemClock } from '../src/clock.js'
import type { Database } from '../src/db/schema.js'
import { answeredPushes } from '../src/inbound/answered.js'
import { type DispatchDeps, dispatch } from '../src/inbound/dispatch.js'
import { createLogger } from '../src/logger.js'
import { nodeCrypto } from '../src/node-crypto.js'
import { wechatRoutes } from '../src/routes/wechat.js'
import { dedupeKey, type InboundMessage } from '../src/wechat/message.js'
import { type ReplyAddress, renderReply, text } from '../src/wechat/reply.js'
import { respondToWechat, wechatWebhook } from '../src/wechat/webhook.js'
import { memoryStores } from '../test/memory-stores.js'
import { SAFE_ACCOUNT, testConfig } from '../test/server.js'
import { noRowsDatabase } from './no-rows.js'

/** The configuration (b) runs with: the test accounts, bodies up to 1 MiB. */
const benchConfig = () => testConfig({ WECHAT_MAX_BODY_BYTES: '1048576' })

/** quanzi's webhook middleware on the safe account, as (w) and (m) run it. */
const benchWebhook = () =>
  wechatWebhook({ account: () => SAFE_ACCOUNT, maxSkewSeconds: 300, crypto: nodeCrypto })

/** The reply's header for a push, at `now` (ms). */
const replyAddress = (message: InboundMessage, now: number): ReplyAddress => ({
  to: message.fromUserName,
  from: message.toUserName,
  createTime: Math.floor(now / 1000),
})

/** (w): the webhook alone, answering `reply` to every push, at `/wechat`. */
export function webhookAlone(reply: string): Hono {
  const answer = text(reply)
  return new Hono().post('/wechat', benchWebhook(), (c) => {
    // `c.get`, not `c.var`: Hono builds a new object of every variable on each read of `c.var`.
    const push = c.get('wechat')
    const { message, format } = push
    return respondToWechat(c, push, renderReply(answer, replyAddress(message, Date.now()), format))
  })
}

/** (m): the webhook plus the least dispatch, answering `reply` to `command`, at `/wechat`. */
export function leastDispatch(command: string, reply: string): Hono {
  const commands = new Map([[command, text(reply)]])
  const replays = new Map<string, string>()
  const claims = new Map<string, string | null | undefined>()
  const lastActive = new Map<string, number>()
  return new Hono().post('/wechat', benchWebhook(), (c) => {
    const push = c.get('wechat')
    const { account, message, format, stamp } = push
    const replayId = `${account.appid}\u0000${stamp.timestamp}\u0000${stamp.nonce}`
    const seen = replays.get(replayId)
    if (seen !== undefined && seen !== stamp.digest) return c.text('replayed', 401)
    replays.set(replayId, stamp.digest)
    const claim = `${account.appid}\u0000${dedupeKey(message)}`
    if (claims.has(claim)) return respondToWechat(c, push, claims.get(claim) ?? null)
    claims.set(claim, undefined)
    const now = Date.now()
    lastActive.set(`${account.appid}\u0000${message.fromUserName}`, now)
    const deadline = setTimeout(() => claims.set(claim, null), 4500)
    const word = message.type === 'text' ? message.content.trim() : ''
    const answer = commands.get(word)
    const body = answer ? renderReply(answer, replyAddress(message, now), format) : null
    clearTimeout(deadline)
    claims.set(claim, body)
    return respondToWechat(c, push, body)
  })
}

/** What quanzi's dispatch is given in (b): the app's settings, in-memory stores, no rows. */
export function dispatchDeps(): Omit<DispatchDeps, 'answered' | 'metrics' | 'waitUntil'> {
  const config = benchConfig()
  return {
    router: createRouter(),
    ...memoryStores(),
    db: noRowsDatabase(),
    clock: systemClock,
    logger: createLogger({ level: 'error' }),
    locale: config.locale,
    community: {
      timeZone: config.timeZone,
      checkin: config.checkin,
      invites: config.invites,
      robots: config.robots,
    },
    wechat: { api: () => undefined, qrImageBase: config.qrImageBase },
    replyDeadlineMs: config.replyDeadlineMs,
  }
}

/** The webhook plus quanzi's `dispatch`, called straight from the route handler, at `/wechat`. */
export function webhookDispatch(): Hono {
  // Built as wechatRoutes builds its own (the same properties in the same order: V8 is sensitive
  // to the object's shape), so that (r) − (d) is the routes' layers alone.
  const deps: DispatchDeps = Object.assign({}, dispatchDeps(), {
    waitUntil: undefined,
    metrics: undefined,
    answered: answeredPushes(),
  })
  return new Hono().post('/wechat', benchWebhook(), async (c) => {
    const push = c.get('wechat')
    const { account, message, format, stamp } = push
    const input = { appid: account.appid, message, format, receivedAt: Date.now(), stamp }
    return respondToWechat(c, push, await dispatch(deps, input))
  })
}

/** quanzi's `/wechat` routes alone in an app (the default account at `/wechat`). */
export function wechatRoutesOnly(): Hono {
  const config = benchConfig()
  return new Hono().route(
    '/wechat',
    wechatRoutes({
      accounts: config.accounts,
      maxSkewSeconds: config.maxSkewSeconds,
      maxBodyBytes: config.maxBodyBytes,
      crypto: nodeCrypto,
      dispatch: dispatchDeps(),
    }),
  )
}

/**
 * The whole app as the bench runs it on `db`, with `stores` in place of the database's own — (b)
 * is `benchApp(noRowsDatabase(), memoryStores())`: the stores in memory, and a handler's own
 * queries (帮助 asks whether the sender is a moderator) compiled by Kysely and answered with no rows.
 */
export function benchApp(
  db: Kysely<Database>,
  stores?: Pick<AppDeps, 'inbound' | 'members'>,
): Hono {
  return createApp({
    config: benchConfig(),
    db,
    router: createRouter(),
    logger: createLogger({ level: 'error' }),
    crypto: nodeCrypto,
    ...stores,
  })
}
