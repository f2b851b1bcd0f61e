/**
 * The Node entry: configuration → database (PGlite or PostgreSQL) → migrations → HTTP server →
 * scheduled jobs, with graceful shutdown. In sandbox mode it prints the dev account to connect
 * `npm run chat` (or a real tunnel) to.
 */
import { existsSync } from 'node:fs'
import { serve } from '@hono/node-server'
import cron from 'node-cron'
import { createRouter } from '../handlers/index.js'
import { jobs } from '../jobs/index.js'
import { createApp } from './app.js'
import { systemClock } from './clock.js'
import { ConfigError, loadConfig } from './config.js'
import { openDatabase } from './db/open-database.js'
import { createLogger } from './logger.js'
import { nodeCrypto } from './node-crypto.js'
import { loadSandboxAccount, sandboxAccountPath } from './sandbox/sandbox-account.js'

async function main(): Promise<void> {
  if (existsSync('.env')) process.loadEnvFile('.env')
  const config = loadConfig(process.env)
  const logger = createLogger({ level: config.logLevel })
  if (config.sandbox) config.accounts = [await loadSandboxAccount(config.dataDir)]

  const { db, kind, location } = await openDatabase(config)
  logger.info('database ready', { kind, location })

  const app = createApp({
    config,
    db,
    router: createRouter(),
    logger,
    clock: systemClock,
    crypto: nodeCrypto,
  })
  const server = serve({ fetch: app.fetch, port: config.port }, (info) => {
    const base = `http://localhost:${info.port}`
    logger.info('listening', { url: base, accounts: config.accounts.map((a) => a.appid) })
    if (config.sandbox) printSandbox(base, config.dataDir, config.accounts[0]!)
  })

  const tasks = jobs.map((job) =>
    cron.schedule(
      job.cron,
      async () => {
        try {
          const result = await job.run({ db, clock: systemClock, logger, config })
          logger.info('job finished', { job: job.name, ...result })
        } catch (error) {
          logger.error('job failed', { job: job.name, error })
        }
      },
      { timezone: config.timeZone, name: job.name, noOverlap: true },
    ),
  )

  let stopping = false
  const stop = async (signal: string) => {
    if (stopping) return
    stopping = true
    logger.info('shutting down', { signal })
    for (const task of tasks) await task.stop()
    await new Promise<void>((resolve) => server.close(() => resolve()))
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
