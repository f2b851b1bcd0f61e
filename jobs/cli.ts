/**
 * `npm run job <name>`: runs one job now (recorded in job_runs as a manual run) and prints its
 * result; `npm run job` lists the jobs.
 */
import { existsSync } from 'node:fs'
import { systemClock } from '../src/clock.js'
import { ConfigError, loadConfig } from '../src/config.js'
import { openDatabase } from '../src/db/open-database.js'
import { createLogger } from '../src/logger.js'
import { nodeShop } from '../src/shop/node-shop.js'
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
try {
  const config = loadConfig(process.env)
  const logger = createLogger({ level: config.logLevel })
  const { db } = await openDatabase(config)
  const shop =
    config.shop && config.accounts[0]
      ? await nodeShop(config.shop, {
          appid: config.accounts[0].appid,
          apiBase: config.apiBase,
          logger,
        })
      : undefined
  const outcome = await runJobSlot(
    job,
    { db, clock: systemClock, logger, config, shop },
    { slot: systemClock.now(), trigger: 'manual', worker: workerName() },
  )
  console.log(JSON.stringify({ job: job.name, ...outcome }, null, 2))
  await db.destroy()
  process.exit(outcome.status === 'failed' ? 1 : 0)
} catch (error) {
  console.error(error instanceof ConfigError ? error.message : error)
  process.exit(1)
}
