/**
 * The Cloudflare Workers entry: the same app as Node, on PostgreSQL (through Hyperdrive or a
 * direct DATABASE_URL). PGlite and the sandbox are Node-only. Migrations are applied from Node
 * (`npm run migrate`) before deploying, not on a request path.
 */
import type { ExecutionContext, Hono } from 'hono'
import { createRouter } from '../handlers/index.js'
import { jobs } from '../jobs/index.js'
import { runDue } from '../jobs/runner.js'
import type { JobDeps } from '../jobs/types.js'
import { createApp } from './app.js'
import { systemClock } from './clock.js'
import { databaseTokenStore } from './community/token-store.js'
import { loadConfig } from './config.js'
import { postgresDatabase } from './db/postgres.js'
import { createLogger } from './logger.js'
import { accountClients } from './wechat/api/account-client.js'

/** Bindings: every configuration variable as a var or secret, plus an optional Hyperdrive. */
export interface WorkerEnv extends Record<string, unknown> {
  HYPERDRIVE?: { connectionString: string }
}

interface Built {
  app: Hono
  jobDeps: JobDeps
  timeZone: string
}
let built: Built | undefined

function build(env: WorkerEnv): Built {
  const vars = Object.fromEntries(
    Object.entries(env).filter((e): e is [string, string] => typeof e[1] === 'string'),
  )
  const config = loadConfig({
    ...vars,
    DATABASE_URL: env.HYPERDRIVE?.connectionString ?? vars.DATABASE_URL,
  })
  if (!config.databaseUrl) throw new Error('DATABASE_URL: set it or bind HYPERDRIVE on Workers')
  if (config.sandbox) throw new Error('WECHAT_APPID: sandbox mode runs on Node only (npm start)')
  // Hyperdrive pools connections itself; one per isolate is enough.
  const db = postgresDatabase(config.databaseUrl, { max: 1 })
  const logger = createLogger({ level: config.logLevel })
  const apis = accountClients(config.accounts, {
    tokenStore: databaseTokenStore(db, systemClock),
    baseUrl: config.apiBase,
    mode: config.tokenMode,
    clock: systemClock,
    logger,
  })
  return {
    app: createApp({
      config,
      db,
      router: createRouter(),
      api: (appid) => apis.get(appid),
      clientAddress: (c) => c.req.header('cf-connecting-ip'),
    }),
    jobDeps: { db, clock: systemClock, logger, config },
    timeZone: config.timeZone,
  }
}

export default {
  fetch(request: Request, env: WorkerEnv, ctx: ExecutionContext): Response | Promise<Response> {
    built ??= build(env)
    return built.app.fetch(request, env, ctx)
  },
  /**
   * The cron trigger (every minute, wrangler.toml): each job due now catches up the slots it missed
   * (late or skipped triggers) and takes over runs whose invocation died, then runs this slot; each
   * slot is claimed once (jobs/runner.ts).
   */
  scheduled(
    event: { scheduledTime: number },
    env: WorkerEnv,
    ctx: { waitUntil(work: Promise<unknown>): void },
  ): void {
    built ??= build(env)
    ctx.waitUntil(
      runDue(jobs, built.jobDeps, {
        scheduledTime: new Date(event.scheduledTime),
        timeZone: built.timeZone,
        worker: 'workers',
      }),
    )
  },
}
