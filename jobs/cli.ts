/**
 * `npm run job <name>`: runs one job now (recorded in job_runs as a manual run) and prints its
 * result; `npm run job` lists the jobs. On the embedded database while the server runs on the same
 * data folder (PGlite is single-process), the job runs inside the server: the CLI asks it over
 * loopback with the control token from the folder's lock file.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { systemClock } from '../src/clock.js'
import { databaseTokenStore } from '../src/community/token-store.js'
import { loadConfig } from '../src/config.js'
import { liveLockHolder } from '../src/db/data-dir-lock.js'
import { databaseLogs } from '../src/db/database-logs.js'
import { closeDatabase, openDatabase } from '../src/db/open-database.js'
import { createLogger } from '../src/logger.js'
import { startupFailure } from '../src/node-process.js'
import { nodeShop } from '../src/shop/node-shop.js'
import { accountClients } from '../src/wechat/api/account-client.js'
import { findJob, jobs } from './index.js'
import { runJobSlot, workerName } from './runner.js'

if (existsSync('.env')) process.loadEnvFile('.env')
const name = process.argv[2]
const job = name ? findJob(name) : undefined
if (!job) {
  console.log(name ? `no job named ${name}; the jobs are:` : 'npm run job <name>; the jobs are:')
  for (const j of jobs) console.log(`  ${j.name.padEnd(24)} ${j.cron}`)
  process.exit(name ? 2 : 0)
}
const logger = createLogger({ level: 'info' })
try {
  const config = loadConfig(process.env)
  const holder = config.databaseUrl
    ? undefined
    : liveLockHolder(join(config.dataDir, 'pglite.lock'))
  if (holder?.role === 'server' && holder.port && holder.controlToken) {
    const url = `http://127.0.0.1:${holder.port}/admin/jobs/${encodeURIComponent(job.name)}/run`
    const response = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${holder.controlToken}` },
    }).catch(() => undefined)
    if (!response?.ok) {
      console.error(
        `quanzi: the server (pid ${holder.pid}) holds the data folder but did not run the job (${response ? `HTTP ${response.status}` : 'no answer'}); stop it and run the job again`,
      )
      process.exit(1)
    }
    const outcome = (await response.json()) as { status: string }
    console.log(JSON.stringify({ ...outcome, ranIn: `server pid ${holder.pid}` }, null, 2))
    process.exit(outcome.status === 'failed' ? 1 : 0)
  }
  const database = await openDatabase({
    ...config,
    role: 'job',
    ...databaseLogs(logger, config.slowStatementMs),
  })
  const shop =
    config.shop && config.accounts[0]
      ? await nodeShop(config.shop, {
          appid: config.accounts[0].appid,
          apiBase: config.apiBase,
          logger,
          pointsFreezeDays: config.pointsFreezeDays,
        })
      : undefined
  // One API client per account with a secret, as the server makes them (src/node.ts).
  const apis = accountClients(config.accounts, {
    tokenStore: databaseTokenStore(database.db, systemClock),
    baseUrl: config.apiBase,
    mode: config.tokenMode,
    clock: systemClock,
    logger,
  })
  const outcome = await runJobSlot(
    job,
    {
      db: database.db,
      clock: systemClock,
      logger,
      config,
      shop,
      api: (appid) => apis.get(appid),
    },
    { slot: systemClock.now(), trigger: 'manual', worker: workerName() },
  )
  console.log(JSON.stringify({ job: job.name, ...outcome }, null, 2))
  await closeDatabase(database)
  process.exit(outcome.status === 'failed' ? 1 : 0)
} catch (error) {
  startupFailure(logger, error)
}
