/** The shape of a scheduled job: `{ name, cron, run }`, one file per job. */
import type { Kysely, Transaction } from 'kysely'
import type { Budget } from '../src/budget.js'
import type { Clock } from '../src/clock.js'
import type { Config } from '../src/config.js'
import type { Database } from '../src/db/schema.js'
import type { Logger } from '../src/logger.js'
import type { Metrics } from '../src/metrics.js'
import type { Shop } from '../src/shop/maintenance.js'
import type { ApiClient } from '../src/wechat/api/client.js'

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
  /** The API client of an account, by appid (the entries' shared one; undefined without a secret). */
  api?: (appid: string) => ApiClient | undefined
}

/** What a job run receives. */
export interface JobContext extends JobDeps {
  /**
   * The scheduled minute being run — for a caught-up slot, a minute in the past; for a manual run,
   * now rounded down to the minute. Decide what is due from it, not from `clock.now()`.
   */
  slot: Date
  /**
   * What this invocation may still start: a long job asks before each chunk after its first and,
   * when none is left, returns `{ more: true, … }` — the slot is paused and the next tick resumes
   * it. Unlimited when absent (Node, manual runs).
   */
  budget?: Budget
  /** The progress a paused or crashed run of this slot saved ({@link saveCursor}); else absent. */
  cursor?: unknown
  /**
   * Saves the run's progress inside a chunk's transaction, so the chunk's writes and its cursor
   * commit together; throws (rolling the chunk back) when the run is no longer this process's.
   * Absent outside the runner (a direct call runs to completion).
   */
  saveCursor?(trx: Transaction<Database>, cursor: unknown): Promise<void>
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
  /**
   * Returns a small summary that is logged and stored in `job_runs.result`; `more: true` in it
   * says the budget ran out before the work was done: the slot is paused, and resumed (with its
   * saved cursor) by the next tick.
   */
  run(ctx: JobContext): Promise<Record<string, unknown>>
}
