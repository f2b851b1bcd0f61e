/**
 * The Node entry: configuration → database (PGlite or PostgreSQL) → migrations → HTTP server →
 * scheduled jobs and outbox workers, saying what it does as it goes; a graceful stop on SIGTERM or
 * SIGINT. `npm start` runs it built (src/start.mjs) in the process that receives the signals. In
 * sandbox mode it prints the dev account to connect `npm run chat` (or a real tunnel) to.
 */
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createAdaptorServer } from '@hono/node-server'
import { getConnInfo } from '@hono/node-server/conninfo'
import { createRouter } from '../handlers/index.js'
import { findJob, jobs } from '../jobs/index.js'
import { runJobSlot, workerName } from '../jobs/runner.js'
import { scheduleJobs } from '../jobs/schedule.js'
import type { JobDeps } from '../jobs/types.js'
import { trafficCounter } from './analytics/traffic-counter.js'
import { createApp } from './app.js'
import { systemClock } from './clock.js'
import { seedModerators } from './community/moderation.js'
import { cachedOpsStatus } from './community/ops-status.js'
import { startOutboxWorker } from './community/outbox-worker.js'
import { databaseTokenStore } from './community/token-store.js'
import { loadConfig } from './config.js'
import { databaseLogs } from './db/database-logs.js'
import { closeDatabase, openDatabase } from './db/open-database.js'
import { poolCounts } from './db/postgres.js'
import { createLogger, type Logger } from './logger.js'
import { type Metrics, noopMetrics } from './metrics.js'
import { nodeCrypto } from './node-crypto.js'
import { nodeFetch } from './node-fetch.js'
import { nodeMetrics } from './node-metrics.js'
import { drainServer, listen, onStopSignals, startupFailure } from './node-process.js'
import { packageRequests } from './pay/wechatpay-package-requests.js'
import { loadSandboxAccount, sandboxAccountPath } from './sandbox/sandbox-account.js'
import { startSandboxShop } from './sandbox/sandbox-shop.js'
import { startSandboxApi } from './sandbox/wechat-api-server.js'
import { nodeShop } from './shop/node-shop.js'
import { stopping } from './stopping.js'
import { accountClients, miniProgramClient } from './wechat/api/account-client.js'

/** How often this process adds its traffic counts to the database. */
const TRAFFIC_FLUSH_MS = 10_000
/** The migrated PGlite folder `npm install` makes beside the built entry (dist/pglite-template). */
const TEMPLATE_DIR = fileURLToPath(new URL('./pglite-template', import.meta.url))

async function main(logger: Logger): Promise<void> {
  const started = performance.now()
  if (existsSync('.env')) process.loadEnvFile('.env')
  const config = loadConfig(process.env)
  logger = createLogger({ level: config.logLevel })
  logger.info('starting', { node: process.version, pid: process.pid })
  if (config.sandbox) config.accounts = [await loadSandboxAccount(config.dataDir)]

  // Slow statements are logged from the first; their times reach /metrics once the metrics exist
  // (after the database is open: the start-up's migrations are not in the histogram).
  let metrics: Metrics = noopMetrics
  // The database opens (PGlite: ~1 s of WebAssembly) while the sandbox servers start.
  const [database, sandboxApi, sandboxShop] = await Promise.all([
    openDatabase({
      ...config,
      role: 'server',
      templateDir: TEMPLATE_DIR,
      progress: (message, fields) => logger.info(message, fields),
      ...databaseLogs(logger, config.slowStatementMs, () => metrics),
    }),
    // Sandbox mode: outbound calls go to the sandbox WeChat API on loopback, which logs what it got.
    config.sandbox
      ? startSandboxApi({
          onSend: (m) =>
            logger.info('sandbox: WeChat would deliver', {
              method: m.method,
              touser: m.touser,
              body: m.body,
            }),
        })
      : undefined,
    // …and the shop pays through a sandbox WeChat Pay server with generated keys, whose refunds
    // settle by themselves (REFUND.SUCCESS) a few seconds after they are accepted.
    config.sandbox
      ? startSandboxShop({
          dataDir: config.dataDir,
          notifyUrl: `http://localhost:${config.port}/pay/notify`,
          settleRefundsAfterMs: config.sandboxRefundSeconds * 1000,
        })
      : undefined,
  ])
  const { db } = database
  logger.info('database ready', { kind: database.kind, location: database.location })
  await seedModerators(db, config.moderators)

  const apiBase = sandboxApi?.url ?? config.apiBase
  if (sandboxApi) config.qrImageBase = sandboxApi.url
  // One API client per account with a secret: the outbox workers and the handlers share it.
  const clientOptions = {
    tokenStore: databaseTokenStore(db, systemClock),
    baseUrl: apiBase,
    mode: config.tokenMode,
    clock: systemClock,
    logger,
    fetch: nodeFetch,
  }
  const apis = accountClients(config.accounts, clientOptions)

  // The shop: configured (MP_*, PAY_*), or in sandbox mode the generated one.
  if (sandboxApi && sandboxShop) {
    // Sandbox mode without ADMIN_TOKEN: an operator token for this run only, kept with the
    // sandbox's other secrets, so `npm run shop` can grant its demo member points for a cashback.
    const adminToken = config.adminToken ? undefined : randomBytes(24).toString('base64url')
    if (adminToken) config.adminToken = adminToken
    // Where `npm run shop` finds the sandbox servers of this process.
    await writeFile(
      join(config.dataDir, 'sandbox-services.json'),
      `${JSON.stringify({ port: config.port, wechatApi: sandboxApi.url, pay: sandboxShop.pay.url, mpAppid: sandboxShop.config.mpAppid, adminToken }, null, 2)}\n`,
      { mode: 0o600 },
    )
  }
  const shopConfig = sandboxShop?.config ?? config.shop
  const shop = shopConfig
    ? await nodeShop(shopConfig, {
        appid: config.accounts[0]!.appid,
        apiBase,
        logger,
        fetch: nodeFetch,
        pointsFreezeDays: config.pointsFreezeDays,
        payRequests: (c) => packageRequests({ certSerial: c.pay.certSerial }),
      })
    : undefined

  // The mini program's own client: reminders it was authorised to send (subscribe/send).
  const mpApi = miniProgramClient(shopConfig, clientOptions)

  const status = cachedOpsStatus(
    db,
    systemClock,
    jobs.map((j) => j.name),
  )
  metrics = nodeMetrics({ status, pool: () => poolCounts(db) })
  const jobDeps: JobDeps = {
    // Jobs and the outbox workers give way to requests on the embedded database's one connection.
    db: database.background,
    clock: systemClock,
    logger,
    config,
    shop,
    metrics,
    api: (appid) => apis.get(appid),
  }
  // Refused pushes and sends, added to the database every 10 s (the error-rate alert).
  const traffic = trafficCounter(db, systemClock)
  const flushTraffic = () =>
    traffic
      .flush()
      .catch((error) =>
        logger.warn('traffic counts not written', { code: 'TRAFFIC_FLUSH_FAILED', error }),
      )
  const trafficTimer = setInterval(flushTraffic, TRAFFIC_FLUSH_MS)
  trafficTimer.unref()
  // Lets `npm run job` run a job in this process while it holds the embedded database.
  const controlToken = database.lock ? randomBytes(24).toString('base64url') : undefined
  // Work a request leaves running (a report's recount): stopped, and waited for, at shutdown.
  const stopWork = stopping()
  const app = createApp({
    config,
    db,
    background: database.background,
    stopping: stopWork,
    router: createRouter(),
    logger,
    clock: systemClock,
    crypto: nodeCrypto,
    api: (appid) => apis.get(appid),
    clientAddress: (c) => getConnInfo(c).remote.address,
    shop,
    metrics,
    traffic,
    status,
    jobs: {
      tokens: controlToken ? [controlToken] : [],
      run: async (name) => {
        const job = findJob(name)
        if (!job) return undefined
        const slot = systemClock.now()
        const outcome = await runJobSlot(job, jobDeps, {
          slot,
          trigger: 'manual',
          worker: workerName(),
        })
        metrics.job({
          job: job.name,
          outcome: outcome.status,
          seconds: (Date.now() - slot.getTime()) / 1000,
        })
        return { job: job.name, ...outcome }
      },
    },
  })
  const server = createAdaptorServer({ fetch: app.fetch })
  await listen(server, config.port).catch(async (error) => {
    await closeDatabase(database).catch(() => {})
    throw error
  })
  database.lock?.update({ port: config.port, controlToken })

  const workers = [...apis].map(([appid, api]) =>
    startOutboxWorker({
      db: database.background,
      api,
      mpApi,
      appid,
      clock: systemClock,
      logger,
      timeZone: config.timeZone,
      quietHours: config.campaigns.quietHours,
      rate: { perSecond: config.outboxRatePerSecond, burst: config.outboxBurst },
      pollMs: config.outboxPollMs,
      metrics,
      traffic,
    }),
  )
  const schedule = scheduleJobs(jobs, jobDeps, { timeZone: config.timeZone, metrics })

  const url = `http://localhost:${config.port}`
  logger.info('listening', {
    url,
    accounts: config.accounts.map((a) => a.appid),
    startMs: Math.round(performance.now() - started),
  })
  if (config.sandbox) announceSandbox(logger, url, config.dataDir, config.accounts[0]!)

  const drainMs = config.shutdownTimeoutSeconds * 1000
  onStopSignals(logger, database.lock, drainMs, async (signal) => {
    const stopping = performance.now()
    logger.info('shutting down', { signal, drainSeconds: config.shutdownTimeoutSeconds })
    // Stop accepting, stop ticking and stop the work requests left running at once; then wait for
    // requests and running jobs, both within the one drain deadline, and for that work (it stops
    // before its next slice; on PostgreSQL a count is one statement, ~3 s at 1,000,000).
    const [drained] = await Promise.all([
      drainServer(server, drainMs),
      schedule.stop(),
      stopWork.stop(),
    ])
    if (!drained)
      logger.warn('drain deadline passed: closed the remaining connections', {
        code: 'DRAIN_TIMEOUT',
      })
    for (const worker of workers) await worker.stop()
    clearInterval(trafficTimer)
    await flushTraffic()
    await sandboxApi?.close()
    await sandboxShop?.pay.close()
    await closeDatabase(database)
    logger.info('stopped', { ms: Math.round(performance.now() - stopping) })
  })
}

/** The sandbox account: a JSON line for the log, and the readable banner when a person watches. */
function announceSandbox(
  logger: Logger,
  base: string,
  dataDir: string,
  account: { appid: string; token: string; aesKey?: string },
): void {
  const accountFile = sandboxAccountPath(dataDir)
  logger.info('sandbox mode: no WeChat credentials configured', {
    webhook: `${base}/wechat`,
    appid: account.appid,
    accountFile,
    chat: 'npm run chat',
  })
  if (!process.stdout.isTTY) return
  console.log(
    [
      '',
      '  quanzi is running in SANDBOX mode (no WeChat credentials configured)',
      `  Webhook URL     ${base}/wechat   (or ${base}/wechat/${account.appid})`,
      `  AppID           ${account.appid}`,
      `  Token           ${account.token}`,
      `  EncodingAESKey  ${account.aesKey}`,
      `  (kept in ${accountFile})`,
      '',
      '  Chat with it:   npm run chat',
      '  Outbound messages go to a sandbox WeChat API and are logged as "sandbox: WeChat would deliver".',
      '  The mini-program shop pays through a sandbox WeChat Pay server: npm run shop buys something.',
      '',
    ].join('\n'),
  )
}

const bootLogger = createLogger({ level: 'info' })
main(bootLogger).catch((error) => startupFailure(bootLogger, error))
