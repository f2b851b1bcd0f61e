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
 * Schedules every job. A job's passes run one after another in this process (node-cron's
 * `noOverlap` skips a tick while the previous one runs; the next tick catches it up); across
 * processes the `(job, slot)` claims decide.
 */
export function scheduleJobs(
  jobs: readonly Job[],
  deps: JobDeps,
  o: { timeZone: string; worker?: string; metrics?: Metrics },
): Schedule {
  const worker = o.worker ?? workerName()
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
    return cron.schedule(job.cron, (tick) => pass(slotOf(tick.date), true), {
      timezone: o.timeZone,
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
