/**
 * The Cloudflare Workers entry: the same app as Node, on PostgreSQL through the Hyperdrive binding
 * (or a direct DATABASE_URL, e.g. in `.dev.vars`). PGlite and the sandbox are Node-only.
 * Migrations are applied from Node (`npm run migrate`) before deploying, not on a request path.
 *
 * What is built once per isolate: configuration, the router, the Hono app, the shop's keys. What
 * belongs to one request or one scheduled invocation: the database connections (Workers forbid
 * using another request's socket — src/db/request-scope.ts) and the WeChat and WeCom API clients
 * (their single-flight token refresh holds a pending fetch).
 */
import type { ExecutionContext, Hono } from 'hono'
import { createRouter } from '../handlers/index.js'
import { jobs } from '../jobs/index.js'
import { runDue, type SlotReport } from '../jobs/runner.js'
import type { JobDeps } from '../jobs/types.js'
import { createApp } from './app.js'
import { wallClockBudget } from './budget.js'
import { systemClock } from './clock.js'
import { cachedOpsStatus } from './community/ops-status.js'
import { type BoundedDrain, drainOutboxWithin } from './community/outbox-worker.js'
import { databaseTokenStore } from './community/token-store.js'
import { type Config, ConfigError, loadConfig } from './config.js'
import { type DatabaseScopes, databaseScopes } from './db/request-scope.js'
import { createLogger, type Logger } from './logger.js'
import type { ShopRouteOptions } from './routes/shop.js'
import { nodeShop } from './shop/node-shop.js'
import { accountClients, miniProgramClient } from './wechat/api/account-client.js'
import { workerMetrics } from './worker-metrics.js'

/** Bindings: every configuration variable as a var or secret, plus an optional Hyperdrive. */
export interface WorkerEnv extends Record<string, unknown> {
  HYPERDRIVE?: { connectionString: string }
}

/** The wall time a scheduled invocation spends draining the outbox after its jobs. */
const DRAIN_BUDGET_MS = 20_000

interface Built {
  app: Hono
  config: Config
  scopes: DatabaseScopes
  jobDeps: JobDeps
  logger: Logger
  apis: () => ReturnType<typeof accountClients>
  mpApi: () => ReturnType<typeof miniProgramClient>
}

/**
 * Why the isolate cannot serve (a configuration problem, named by variable, never by value): logged,
 * and answered with a generic 503 — whoever asks, `GET /healthz` needs no token.
 */
class NotConfigured extends Error {}

let built: Promise<Built> | undefined

/**
 * The answer of an isolate that cannot serve: the reason is in the log, not in the answer (it names
 * the configuration, and an anonymous `GET /healthz` gets it).
 */
function notConfiguredResponse(): Response {
  return Response.json(
    {
      code: 'NOT_CONFIGURED',
      message: 'the server is not configured: its log names the problem',
    },
    { status: 503 },
  )
}

async function build(env: WorkerEnv): Promise<Built> {
  const vars = Object.fromEntries(
    Object.entries(env).filter((e): e is [string, string] => typeof e[1] === 'string'),
  )
  let config: Config
  try {
    // Workers run on PostgreSQL only, by DATABASE_URL or a HYPERDRIVE binding (not a string var).
    config = loadConfig(vars, { postgres: true })
  } catch (error) {
    if (error instanceof ConfigError) throw new NotConfigured(error.message)
    throw error
  }
  if (!env.HYPERDRIVE && !config.databaseUrl)
    throw new NotConfigured('DATABASE_URL: set it (.dev.vars) or bind HYPERDRIVE (wrangler.toml)')
  if (config.sandbox)
    throw new NotConfigured(
      'WECHAT_APPID, WECHAT_TOKEN: set an account (sandbox mode runs on Node only: npm start)',
    )
  const logger = createLogger({ level: config.logLevel })
  const scopes = databaseScopes()
  const { db } = scopes
  const clientOptions = () => ({
    tokenStore: databaseTokenStore(db, systemClock),
    baseUrl: config.apiBase,
    mode: config.tokenMode,
    clock: systemClock,
    logger,
  })
  const makeApis = () => accountClients(config.accounts, clientOptions())
  const apis = () => scopes.local(makeApis)
  // The mini program's own client: reminders it was authorised to send (subscribe/send).
  const makeMpApi = () => miniProgramClient(config.shop, clientOptions())
  const mpApi = () => scopes.local(makeMpApi)
  const jobNames = jobs.map((j) => j.name)
  // Cached within one request only: a read shared with another request would be its I/O.
  const makeStatus = () => cachedOpsStatus(db, systemClock, jobNames)
  const status = () => scopes.local(makeStatus)()
  const shop: ShopRouteOptions['shop'] | undefined = config.shop
    ? await nodeShop(config.shop, {
        appid: config.accounts[0]!.appid,
        apiBase: config.apiBase,
        logger,
        pointsFreezeDays: config.pointsFreezeDays,
      })
    : undefined
  const app = createApp({
    config,
    db,
    router: createRouter(),
    logger,
    clock: systemClock,
    api: (appid) => apis().get(appid),
    clientAddress: (c) => c.req.header('cf-connecting-ip'),
    shop,
    status,
    metrics: workerMetrics({ status }),
    local: (make) => scopes.local(make),
  })
  return {
    app,
    config,
    scopes,
    logger,
    apis,
    mpApi,
    jobDeps: { db, clock: systemClock, logger, config, shop, api: (appid) => apis().get(appid) },
  }
}

const databaseUrl = (env: WorkerEnv, config: Config) =>
  env.HYPERDRIVE?.connectionString ?? config.databaseUrl!

/** What one scheduled invocation did. */
export interface TickReport {
  jobs: SlotReport[]
  drains: Record<string, BoundedDrain>
}

/**
 * One minute's tick: every job's paused, due and missed slots (jobs/runner.ts claims each once)
 * within JOB_BUDGET_MS of wall time — long jobs stop between chunks once it is spent and the next
 * tick resumes them — then each account's outbox drained for at most {@link DRAIN_BUDGET_MS} in
 * batches; the rest waits for the next tick.
 */
async function tick(b: Built, scheduledTime: Date): Promise<TickReport> {
  const reports = await runDue(jobs, b.jobDeps, {
    scheduledTime,
    timeZone: b.config.timeZone,
    worker: `workers@${crypto.randomUUID().slice(0, 8)}`,
    budget: wallClockBudget(systemClock, b.config.jobs.budgetMs),
  })
  const drains: Record<string, BoundedDrain> = {}
  await Promise.all(
    [...b.apis()].map(async ([appid, api]) => {
      drains[appid] = await drainOutboxWithin({
        db: b.scopes.db,
        api,
        mpApi: b.mpApi(),
        appid,
        clock: systemClock,
        logger: b.logger,
        timeZone: b.config.timeZone,
        quietHours: b.config.campaigns.quietHours,
        rate: { perSecond: b.config.outboxRatePerSecond, burst: b.config.outboxBurst },
        budgetMs: DRAIN_BUDGET_MS,
      })
    }),
  )
  return { jobs: reports, drains }
}

/**
 * The isolate's app, built on first use; undefined when it is not configured — the problem is kept,
 * and logged (one line, value-free) by every request and tick it stops.
 */
async function isolate(env: WorkerEnv): Promise<Built | undefined> {
  built ??= build(env)
  try {
    return await built
  } catch (error) {
    if (!(error instanceof NotConfigured)) throw error
    createLogger().error('not configured', { code: 'NOT_CONFIGURED', message: error.message })
    return undefined
  }
}

export default {
  async fetch(request: Request, env: WorkerEnv, ctx: ExecutionContext): Promise<Response> {
    const b = await isolate(env)
    if (!b) return notConfiguredResponse()
    return b.scopes.run(
      databaseUrl(env, b.config),
      (waitUntil) =>
        Promise.resolve(
          b.app.fetch(request, env, {
            waitUntil,
            passThroughOnException: () => ctx.passThroughOnException(),
            props: ctx.props,
          }),
        ),
      (work) => ctx.waitUntil(work),
    )
  },
  /**
   * The cron trigger (every minute, wrangler.toml): the jobs due now with their catch-up, then a
   * bounded outbox drain, in one database scope closed when done. Not configured: the log line,
   * and nothing else.
   */
  async scheduled(
    event: { scheduledTime: number },
    env: WorkerEnv,
    ctx: { waitUntil(work: Promise<unknown>): void },
  ): Promise<void> {
    const b = await isolate(env)
    if (!b) return
    const report = await b.scopes.run(
      databaseUrl(env, b.config),
      () => tick(b, new Date(event.scheduledTime)),
      (work) => ctx.waitUntil(work),
    )
    const drained = Object.values(report.drains)
    b.logger.info('scheduled tick', {
      jobs: report.jobs.filter((r) => r.status !== 'skipped').map((r) => `${r.job}:${r.status}`),
      sent: drained.reduce((n, d) => n + d.sent, 0),
      outOfTime: drained.some((d) => d.outOfTime),
    })
  },
}
