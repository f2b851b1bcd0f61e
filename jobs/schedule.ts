/**
 * The Node scheduler: node-cron in the community's time zone, each job's tick through
 * {@link runScheduled} (catch-up, then the slot, each through its claim). At start every job first
 * catches up what it missed while no process ran it.
 */
import cron from 'node-cron'
import type { Metrics } from '../src/metrics.js'
import { runScheduled, slotOf, workerName } from './runner.js'
import type { Job, JobDeps } from './types.js'

/** The running schedule. */
export interface Schedule {
  /** Stops ticking and waits for the runs in progress. */
  stop(): Promise<void>
}

/**
 * What calls a function at the minutes a cron expression matches: node-cron in production, a
 * test's fake clock in tests. `tick` gets the scheduled time.
 */
export interface CronDriver {
  schedule(
    expression: string,
    tick: (at: Date) => Promise<unknown>,
    o: { timeZone: string; name: string; noOverlap: boolean },
  ): { stop(): unknown }
}

/** node-cron: a task per expression, read in the time zone. */
export const nodeCron: CronDriver = {
  schedule: (expression, tick, o) =>
    cron.schedule(expression, (context) => tick(context.date), {
      timezone: o.timeZone,
      name: o.name,
      noOverlap: o.noOverlap,
    }),
}

/**
 * Schedules every job. A job's passes run one after another in this process (node-cron's
 * `noOverlap` skips a tick while the previous one runs; the next tick catches it up); across
 * processes the `(job, slot)` claims decide.
 */
export function scheduleJobs(
  jobs: readonly Job[],
  deps: JobDeps,
  o: { timeZone: string; worker?: string; metrics?: Metrics; cron?: CronDriver },
): Schedule {
  const worker = o.worker ?? workerName()
  const driver = o.cron ?? nodeCron
  const running = new Set<Promise<unknown>>()
  const tasks = jobs.map((job) => {
    let previous: Promise<unknown> = Promise.resolve()
    const pass = (slot: Date, due: boolean) => {
      const run = previous.then(() =>
        runScheduled(job, deps, { slot, due, timeZone: o.timeZone, worker, metrics: o.metrics }),
      )
      previous = run
      running.add(run)
      return run.finally(() => running.delete(run))
    }
    void pass(slotOf(deps.clock.now()), false)
    return driver.schedule(job.cron, (at) => pass(slotOf(at), true), {
      timeZone: o.timeZone,
      name: job.name,
      noOverlap: true,
    })
  })
  return {
    async stop() {
      for (const task of tasks) await task.stop()
      await Promise.allSettled([...running])
    },
  }
}
