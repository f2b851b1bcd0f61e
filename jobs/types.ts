/** The shape of a scheduled job: `{ name, cron, run }`, one file per job. */
import type { Kysely } from 'kysely'
import type { Clock } from '../src/clock.js'
import type { Config } from '../src/config.js'
import type { Database } from '../src/db/schema.js'
import type { Logger } from '../src/logger.js'
import type { Metrics } from '../src/metrics.js'
import type { Shop } from '../src/shop/maintenance.js'

/** What the entries give the runner once: every run gets these plus its slot. */
export interface JobDeps {
  db: Kysely<Database>
  clock: Clock
  logger: Logger
  config: Config
  /** The shop, when payments are configured. */
  shop?: Shop
  /** Where jobs count what they did (Node: Prometheus); absent: nothing is counted. */
  metrics?: Metrics
}

/** What a job run receives. */
export interface JobContext extends JobDeps {
  /**
   * The scheduled minute being run — for a caught-up slot, a minute in the past; for a manual run,
   * now rounded down to the minute. Decide what is due from it, not from `clock.now()`.
   */
  slot: Date
}

/** A scheduled job. `cron` is read in the community's time zone (QUANZI_TIME_ZONE). */
export interface Job {
  name: string
  cron: string
  /**
   * Missed slots (downtime, a late trigger): `every` runs each one in order — for jobs that decide
   * what is due from the slot (campaigns, activity reminders); `latest` (default) runs only the
   * newest, and none when the current slot runs — for jobs whose run covers everything up to now
   * (pruning, segments, shop maintenance).
   */
  catchUp?: 'every' | 'latest'
  /** Returns a small summary that is logged and stored in `job_runs.result`. */
  run(ctx: JobContext): Promise<Record<string, unknown>>
}
