/**
 * The Node entry: configuration → database (PGlite or PostgreSQL) → migrations → HTTP server →
 * scheduled jobs, with graceful shutdown. In sandbox mode it prints the dev account to connect
 * `npm run chat` (or a real tunnel) to.
 */
import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { serve } from '@hono/node-server'
import { createRouter } from '../handlers/index.js'
import { jobs } from '../jobs/index.js'
import { scheduleJobs } from '../jobs/schedule.js'
import { createApp } from './app.js'
import { systemClock } from './clock.js'
import { seedModerators } from './community/moderation.js'
import { startOutboxWorker } from './community/outbox-worker.js'
import { ConfigError, loadConfig } from './config.js'
import { openDatabase } from './db/open-database.js'
import { createLogger } from './logger.js'
import { nodeCrypto } from './node-crypto.js'
import { nodeFetch } from './node-fetch.js'
import { loadSandboxAccount, sandboxAccountPath } from './sandbox/sandbox-account.js'
import { startSandboxShop } from './sandbox/sandbox-shop.js'
import { startSandboxApi } from './sandbox/wechat-api-server.js'
import { nodeShop } from './shop/node-shop.js'
import { accountClients } from './wechat/api/account-client.js'

async function main(): Promise<void> {
  if (existsSync('.env')) process.loadEnvFile('.env')
  const config = loadConfig(process.env)
  const logger = createLogger({ level: config.logLevel })
  if (config.sandbox) config.accounts = [await loadSandboxAccount(config.dataDir)]

  const { db, kind, location } = await openDatabase(config)
  logger.info('database ready', { kind, location })
  await seedModerators(db, config.moderators)

  // Sandbox mode: outbound calls go to the sandbox WeChat API on loopback, which logs what it got.
  const sandboxApi = config.sandbox
    ? await startSandboxApi({
        onSend: (m) =>
          logger.info('sandbox: WeChat would deliver', {
            method: m.method,
            touser: m.touser,
            body: m.body,
          }),
      })
    : undefined
  const apiBase = sandboxApi?.url ?? config.apiBase
  if (sandboxApi) config.qrImageBase = sandboxApi.url
  // One API client per account with a secret: the outbox workers and the handlers share it.
  const apis = accountClients(config.accounts, {
    db,
    baseUrl: apiBase,
    mode: config.tokenMode,
    clock: systemClock,
    logger,
    fetch: nodeFetch,
  })
  const workers = [...apis].map(([appid, api]) =>
    startOutboxWorker({
      db,
      api,
      appid,
      clock: systemClock,
      logger,
      timeZone: config.timeZone,
      rate: { perSecond: config.outboxRatePerSecond, burst: config.outboxBurst },
      pollMs: config.outboxPollMs,
    }),
  )

  // The shop: configured (MP_*, PAY_*), or in sandbox mode a generated one on a sandbox Pay server.
  const sandboxShop = config.sandbox
    ? await startSandboxShop({
        dataDir: config.dataDir,
        notifyUrl: `http://localhost:${config.port}/pay/notify`,
      })
    : undefined
  if (sandboxApi && sandboxShop) {
    // Where `npm run shop` finds the sandbox servers of this process.
    await writeFile(
      join(config.dataDir, 'sandbox-services.json'),
      `${JSON.stringify({ port: config.port, wechatApi: sandboxApi.url, pay: sandboxShop.pay.url, mpAppid: sandboxShop.config.mpAppid }, null, 2)}\n`,
    )
  }
  const shopConfig = sandboxShop?.config ?? config.shop
  const shop = shopConfig
    ? await nodeShop(shopConfig, {
        appid: config.accounts[0]!.appid,
        apiBase,
        logger,
        fetch: nodeFetch,
      })
    : undefined

  const app = createApp({
    config,
    db,
    router: createRouter(),
    logger,
    clock: systemClock,
    crypto: nodeCrypto,
    api: (appid) => apis.get(appid),
    shop,
  })
  const server = serve({ fetch: app.fetch, port: config.port }, (info) => {
    const base = `http://localhost:${info.port}`
    logger.info('listening', { url: base, accounts: config.accounts.map((a) => a.appid) })
    if (config.sandbox) printSandbox(base, config.dataDir, config.accounts[0]!)
  })

  const tasks = scheduleJobs(
    jobs,
    { db, clock: systemClock, logger, config, shop },
    { timeZone: config.timeZone },
  )

  let stopping = false
  const stop = async (signal: string) => {
    if (stopping) return
    stopping = true
    logger.info('shutting down', { signal })
    for (const task of tasks) await task.stop()
    await new Promise<void>((resolve) => server.close(() => resolve()))
    for (const worker of workers) await worker.stop()
    await sandboxApi?.close()
    await sandboxShop?.pay.close()
    await db.destroy()
    process.exit(0)
  }
  process.on('SIGINT', () => void stop('SIGINT'))
  process.on('SIGTERM', () => void stop('SIGTERM'))
}

function printSandbox(
  base: string,
  dataDir: string,
  account: { appid: string; token: string; aesKey?: string },
): void {
  console.log(
    [
      '',
      '  quanzi is running in SANDBOX mode (no WeChat credentials configured)',
      `  Webhook URL     ${base}/wechat   (or ${base}/wechat/${account.appid})`,
      `  AppID           ${account.appid}`,
      `  Token           ${account.token}`,
      `  EncodingAESKey  ${account.aesKey}`,
      `  (kept in ${sandboxAccountPath(dataDir)})`,
      '',
      '  Chat with it:   npm run chat',
      '  Outbound messages go to a sandbox WeChat API and are logged as "sandbox: WeChat would deliver".',
      '  The mini-program shop pays through a sandbox WeChat Pay server: npm run shop buys something.',
      '',
    ].join('\n'),
  )
}

main().catch((error) => {
  if (error instanceof ConfigError) {
    console.error(error.message)
  } else {
    console.error('quanzi failed to start:', error instanceof Error ? error.message : error)
  }
  process.exit(1)
})
