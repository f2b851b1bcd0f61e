/**
 * `createApp(deps)` → the Hono app. The one place routes are mounted; every dependency is
 * injected, so the same app runs under Node, Workers and tests.
 */
import { Hono } from 'hono'
import { getRuntimeKey } from 'hono/adapter'
import { compress } from 'hono/compress'
import { HTTPException } from 'hono/http-exception'
import type { Kysely } from 'kysely'
import { jobs } from '../jobs/index.js'
import { adminRoutes } from './admin/admin-routes.js'
import type { TrafficCounter } from './analytics/traffic-counter.js'
import type { Router } from './bot/router.js'
import { type Clock, systemClock } from './clock.js'
import { countSliceRows } from './community/campaign-counts.js'
import { checkinStatements } from './community/checkins.js'
import { databaseInboundStore, type InboundStore } from './community/inbound-events.js'
import { databaseMemberStore, type MemberStore } from './community/members.js'
import { cachedOpsStatus, type OpsStatus } from './community/ops-status.js'
import { databaseTokenStore } from './community/token-store.js'
import type { Config } from './config.js'
import { consoleRoutes } from './console/console-routes.js'
import { BUSY_RETRY_AFTER_SECONDS, PoolBusyError } from './db/pool-busy-error.js'
import { CLAIM_LANES } from './db/pool-size.js'
import type { Database } from './db/schema.js'
import { createLogger, type Logger } from './logger.js'
import { MemoRouter } from './memo-router.js'
import { type Metrics, noopMetrics } from './metrics.js'
import { accessLog } from './middleware/access-log.js'
import { clientAddress, type PeerAddress } from './middleware/client-address.js'
import { bridgeRoutes } from './routes/bridge.js'
import { healthRoutes } from './routes/health.js'
import { type JobRouteOptions, jobRoutes } from './routes/jobs.js'
import { linkRoutes, type ShareOauthOptions } from './routes/links.js'
import { miniProgramRoutes, payNotifyRoutes, type ShopRouteOptions } from './routes/shop.js'
import { InputError } from './routes/validate.js'
import { wechatRoutes } from './routes/wechat.js'
import { aibotRoutes } from './routes/wecom-aibot.js'
import { contactRoutes } from './routes/wecom-contact.js'
import type { Stopping } from './stopping.js'
import { accountClient } from './wechat/api/account-client.js'
import type { ApiClient } from './wechat/api/client.js'
import { isArgumentError, WechatApiError, WechatNetworkError } from './wechat/api/errors.js'
import type { CryptoBackend } from './wechat/crypto.js'
import { encryptionMode } from './wechat/webhook.js'
import { aibotCodec } from './wecom/aibot.js'
import { contactCodec } from './wecom/contact.js'

/** Everything the app needs. Stores default to the database ones. */
export interface AppDeps {
  config: Config
  db: Kysely<Database>
  /**
   * The database for work a request leaves running after its response (a large campaign's
   * report recount): on PGlite the instance that gives way to requests (src/node.ts); `db` if none.
   */
  background?: Kysely<Database>
  /** The server's stop, for that work: it stops, and the shutdown waits for it (src/node.ts). */
  stopping?: Stopping
  router: Router
  clock?: Clock
  logger?: Logger
  inbound?: InboundStore
  members?: MemberStore
  /** Crypto primitives for the webhook; Web Crypto by default (the Node entry passes node:crypto). */
  crypto?: CryptoBackend
  /** Outbound API clients by appid (accounts with a secret); none → handlers that need one say so. */
  api?: (appid: string) => ApiClient | undefined
  /** For calls the app makes itself (group-robot webhooks); the global fetch by default. */
  fetch?: typeof fetch
  /** The mini-program shop and WeChat Pay (src/shop/node-shop.ts builds it from configuration). */
  shop?: ShopRouteOptions['shop']
  /** Where requests, pushes and sends are counted; `/metrics` is served when it can render. */
  metrics?: Metrics
  /** Refused pushes per account and minute, written to the database (the error-rate alert). */
  traffic?: TrafficCounter
  /** The vital signs (/healthz, /metrics); read from the database, cached 1 s, by default. */
  status?: () => Promise<OpsStatus>
  /** Running a job now on request (`POST /admin/jobs/<name>/run`), where the entry allows it. */
  jobs?: JobRouteOptions['jobs']
  /**
   * The peer's address (Node: `getConnInfo(c).remote.address`; Workers: `CF-Connecting-IP`), for
   * the audit log and rate limits; behind TRUSTED_PROXY_HOPS proxies, X-Forwarded-For is read too.
   */
  clientAddress?: PeerAddress
  /**
   * A value made once per request scope (Workers: `scopes.local`, since an I/O object — a pending
   * token refresh — may not pass from one request to another); absent: once for the app.
   */
  local?: <V>(make: () => V) => V
  /**
   * The lease on an inbound claim — an official-account push's, a bridge or WeCom callback event's
   * (`INBOUND_CLAIM_LEASE_MS`, 12 s, by default; see src/community/claim-lease.ts): tests inject a
   * shorter one.
   */
  claimLeaseMs?: number
  /**
   * How late an official-account answer must come to be kept for WeChat's resend
   * (`RESEND_LIKELY_AFTER_MS`, 1 s, by default; src/inbound/answered.ts): tests set it.
   */
  resendLikelyAfterMs?: number
}

const CODES: Record<number, string> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  409: 'CONFLICT',
  413: 'PAYLOAD_TOO_LARGE',
  429: 'TOO_MANY_REQUESTS',
  500: 'INTERNAL_ERROR',
}

/** SHARE_OAUTH: each account with a secret authorises share-link openers silently. */
function shareOauth(
  config: Config,
  api: (appid: string) => ApiClient | undefined,
  logger: Logger,
): ShareOauthOptions {
  return {
    publicBaseUrl: config.campaigns.publicBaseUrl,
    account(appid) {
      const secret = config.accounts.find((a) => a.appid === appid)?.secret
      const client = api(appid)
      return secret && client ? { api: client, secret } : undefined
    },
    logger,
  }
}

/** `local` for one scope that lasts as long as the app (Node). */
function once() {
  const made = new Map<unknown, unknown>()
  return <V>(make: () => V): V => {
    if (!made.has(make)) made.set(make, make())
    return made.get(make) as V
  }
}

/** Builds the HTTP app. */
export function createApp(deps: AppDeps): Hono {
  const { config, db } = deps
  const clock = deps.clock ?? systemClock
  const logger = deps.logger ?? createLogger({ level: config.logLevel })
  // Matches remembered by method and path (memo-router.ts): the app's routes need the TrieRouter.
  const app = new Hono({ router: new MemoRouter() })
  const contact = config.wecomContact
  const makeWecomApi = () =>
    accountClient({
      tokenStore: databaseTokenStore(db, clock),
      appid: `wecom:${contact!.corpId}`,
      secret: contact!.secret,
      baseUrl: contact!.apiBase,
      mode: 'wecom',
      clock,
      logger,
    })
  const local = deps.local ?? once()
  const inbound = deps.inbound ?? databaseInboundStore(db, local)
  // Each call goes to the client of the current scope (its single-flight token refresh).
  const wecomApi: ApiClient | undefined = contact && {
    call: (req) => local(makeWecomApi).call(req),
    unauthenticated: (req) => local(makeWecomApi).unauthenticated(req),
  }
  const wechat = {
    api: deps.api ?? (() => undefined),
    qrImageBase: config.qrImageBase,
    wecom: wecomApi && contact ? { api: wecomApi, joinChats: contact.joinChats } : undefined,
  }
  const community = {
    timeZone: config.timeZone,
    checkin: config.checkin,
    invites: config.invites,
    robots: { ...config.robots, fetch: deps.fetch },
    miniProgram: deps.shop && { appid: deps.shop.settings.mpAppid },
  }
  // The check-in statements of every channel, batched (PostgreSQL: several at once, as claims).
  const checkins = checkinStatements(db, {
    local,
    lanes: config.embeddedDatabase ? 1 : CLAIM_LANES,
  })

  app.onError((error, c) => {
    if (isArgumentError(error)) {
      // WeChat refused a value the client sent (a tag id it does not know …): the client's to fix.
      logger.warn('request refused by WeChat', { path: c.req.path, reason: error.message })
      const { errcode, errmsg, message } = error
      return c.json({ code: 'WECHAT_REFUSED', message, errcode, errmsg }, 400)
    }
    if (error instanceof WechatApiError || error instanceof WechatNetworkError) {
      // An outbound call refused or failed: say so (errcode, hint), never the token or body.
      logger.warn('WeChat call failed', { path: c.req.path, reason: error.message })
      return c.json({ code: 'WECHAT_ERROR', message: error.message }, 502)
    }
    if (error instanceof PoolBusyError) {
      // No connection came free in time (the statement was never sent): a rush, not a fault of
      // the request — the client asks again shortly (a client key makes an order's retry safe).
      logger.warn('database busy', { path: c.req.path, waitedMs: error.waitedMs })
      const seconds = BUSY_RETRY_AFTER_SECONDS
      return c.json(
        { code: 'SERVICE_UNAVAILABLE', message: `the server is busy: retry in ${seconds} s` },
        503,
        { 'Retry-After': String(seconds) },
      )
    }
    const status = error instanceof HTTPException ? error.status : 500
    const fields = { status, method: c.req.method, path: c.req.path }
    if (status >= 500) logger.error('request failed', { ...fields, error })
    else logger.warn('request refused', { ...fields, reason: error.message })
    const message = status >= 500 ? 'internal error' : error.message
    const issues = error instanceof InputError ? { issues: error.issues } : {}
    return c.json({ code: CODES[status] ?? 'ERROR', message, ...issues }, status as 400)
  })
  app.notFound((c) => c.json({ code: 'NOT_FOUND', message: 'no such route' }, 404))

  const metrics = deps.metrics ?? noopMetrics
  // The WeCom callbacks: the same crypto backend and freshness window as the webhook.
  const callbackCodecOptions = {
    crypto: deps.crypto,
    maxSkewSeconds: config.maxSkewSeconds,
    now: () => clock.now().getTime(),
  }
  app.use('*', accessLog({ logger, metrics }))
  app.use(
    '*',
    clientAddress({ peer: deps.clientAddress, trustedProxyHops: config.trustedProxyHops }),
  )
  const status =
    deps.status ??
    cachedOpsStatus(
      db,
      clock,
      jobs.map((j) => j.name),
    )
  app.route(
    '/',
    healthRoutes({
      status,
      metrics,
      metricsToken: config.metricsToken,
      sandbox: config.sandbox,
      accounts: config.accounts.length,
    }),
  )
  if (deps.jobs)
    app.route('/admin/jobs', jobRoutes({ jobs: deps.jobs, adminToken: config.adminToken, logger }))

  const reportCounts = {
    recountDb: deps.background,
    sliceRows: countSliceRows(config.embeddedDatabase),
    stopping: deps.stopping,
  }
  app.route(
    '/admin/api',
    adminRoutes({
      db,
      reportCounts,
      clock,
      adminToken: config.adminToken,
      appids: config.accounts.map((a) => a.appid),
      timeZone: config.timeZone,
      locale: config.locale,
      wechat,
      invites: config.invites,
      shop: deps.shop,
      logger,
      robots: community.robots,
    }),
  )
  // The console's pages in gzip for the clients that accept it (its assets are compressed at build
  // time: console-routes.tsx); on Workers, Cloudflare's edge compresses responses itself. Gzip only:
  // an asset a client takes in neither brotli nor gzip is not compressed again on every request.
  if (getRuntimeKey() !== 'workerd') app.use('/console/*', compress({ encoding: 'gzip' }))
  app.route(
    '/console',
    consoleRoutes({
      db,
      reportCounts,
      clock,
      logger,
      appids: config.accounts.map((a) => a.appid),
      timeZone: config.timeZone,
      locale: config.locale,
      trustedProxyHops: config.trustedProxyHops,
      campaigns: config.campaigns,
      wechat,
      system: {
        status,
        accounts: config.accounts.map((a) => ({
          appid: a.appid,
          mode: encryptionMode(a),
          secret: Boolean(a.secret),
          previousKey: Boolean(a.previousAesKey),
        })),
        jobs: jobs.map((j) => ({ name: j.name, cron: j.cron })),
        sandbox: config.sandbox,
      },
      shop: deps.shop,
    }),
  )
  app.route(
    '/r',
    linkRoutes({
      db,
      clock,
      timeZone: config.timeZone,
      oauth: config.shareOauth ? shareOauth(config, wechat.api, logger) : undefined,
    }),
  )
  if (contact && wecomApi) {
    app.route(
      '/wecom/callback',
      contactRoutes({
        codec: contactCodec(contact, callbackCodecOptions),
        corpId: contact.corpId,
        api: wecomApi,
        codeAppid: config.accounts[0]?.appid ?? '',
        oaApi: wechat.api,
        db,
        clock,
        logger,
        locale: config.locale,
        timeZone: config.timeZone,
        invites: config.invites,
        inbound,
        claimLeaseMs: deps.claimLeaseMs,
      }),
    )
  }
  if (Object.keys(config.bridges).length > 0) {
    app.route(
      '/bridge',
      bridgeRoutes({
        db,
        router: deps.router,
        clock,
        logger,
        locale: config.locale,
        community,
        wechat,
        checkins,
        bridges: config.bridges,
        maxSkewSeconds: config.maxSkewSeconds,
        codeAppid: config.accounts[0]?.appid ?? '',
        invites: config.invites,
        inbound,
        claimLeaseMs: deps.claimLeaseMs,
      }),
    )
  }
  if (config.aibot) {
    app.route(
      '/wecom/aibot',
      aibotRoutes({
        codec: aibotCodec(config.aibot, callbackCodecOptions),
        db,
        router: deps.router,
        clock,
        logger,
        locale: config.locale,
        community,
        wechat,
        checkins,
        replyDeadlineMs: config.replyDeadlineMs,
        fetch: deps.fetch,
        inbound,
        claimLeaseMs: deps.claimLeaseMs,
      }),
    )
  }
  if (deps.shop) {
    const shop = {
      db,
      clock,
      logger,
      timeZone: config.timeZone,
      locale: config.locale,
      shop: deps.shop,
      publicBaseUrl: config.campaigns.publicBaseUrl,
      reminders: config.checkin.reminders,
    }
    app.route('/api/mp', miniProgramRoutes(shop))
    app.route('/pay/notify', payNotifyRoutes(shop))
  } else {
    const off = () => {
      throw new HTTPException(404, { message: 'shop not configured: set MP_* and PAY_*' })
    }
    app.all('/api/mp/*', off)
    app.all('/pay/notify', off)
  }
  app.route(
    '/wechat',
    wechatRoutes({
      accounts: config.accounts,
      maxSkewSeconds: config.maxSkewSeconds,
      maxBodyBytes: config.maxBodyBytes,
      crypto: deps.crypto,
      metrics,
      traffic: deps.traffic,
      dispatch: {
        router: deps.router,
        inbound,
        members:
          deps.members ??
          databaseMemberStore(db, {
            timeZone: config.timeZone,
            local,
            // PostgreSQL: claim statements on several connections (see databaseMemberStore).
            lanes: config.embeddedDatabase ? 1 : CLAIM_LANES,
          }),
        db,
        checkins,
        clock,
        logger,
        locale: config.locale,
        community,
        wechat,
        replyDeadlineMs: config.replyDeadlineMs,
        claimLeaseMs: deps.claimLeaseMs,
        resendLikelyAfterMs: deps.resendLikelyAfterMs,
      },
    }),
  )
  return app
}
