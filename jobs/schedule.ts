/**
 * The Node scheduler: node-cron in the community's time zone, each job's tick through
 * {@link runScheduled} (catch-up, then the slot, each through its claim). At start every job first
 * catches up what it missed while no process ran it. Node ticks a job only at its own cron, so a
 * sweep every minute resumes the paused runs (and takes over the dead ones) of every job — a
 * daily job's run paused after a failed chunk goes on within a minute, not a day later — and
 * starts no slot; with nothing to resume it is one query and no log line.
 */
import cron from 'node-cron'
import type { Metrics } from '../src/metrics.js'
import { jobsToResume, runScheduled, slotOf, workerName } from './runner.js'
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

/** The sweep's expression: every minute, like the Workers trigger. */
export const SWEEP_CRON = '* * * * *'

/**
 * Schedules every job, and the sweep. A job's passes — its ticks and the sweep's resumptions of
 * it — run one after another in this process (node-cron's `noOverlap` skips a tick while the
 * previous one runs; the next tick catches it up; the sweep queues no second resumption of a job
 * while one waits); across processes the `(job, slot)` claims decide.
 */
export function scheduleJobs(
  jobs: readonly Job[],
  deps: JobDeps,
  o: { timeZone: string; worker?: string; metrics?: Metrics; cron?: CronDriver },
): Schedule {
  const worker = o.worker ?? workerName()
  const driver = o.cron ?? nodeCron
  const running = new Set<Promise<unknown>>()
  const track = <T>(work: Promise<T>) => {
    running.add(work)
    return work.finally(() => running.delete(work))
  }
  // Each job's passes, chained: one at a time in this process.
  const passes = new Map<
    string,
    (slot: Date, due: boolean, resumeOnly?: boolean) => Promise<unknown>
  >()
  const tasks = jobs.map((job) => {
    let previous: Promise<unknown> = Promise.resolve()
    const pass = (slot: Date, due: boolean, resumeOnly = false) => {
      const at = { slot, due, resumeOnly, timeZone: o.timeZone, worker, metrics: o.metrics }
      previous = previous.then(() => runScheduled(job, deps, at))
      return track(previous)
    }
    passes.set(job.name, pass)
    void pass(slotOf(deps.clock.now()), false)
    return driver.schedule(job.cron, (at) => pass(slotOf(at), true), {
      timeZone: o.timeZone,
      name: job.name,
      noOverlap: true,
    })
  })
  // Jobs with a resumption queued or running here: a later sweep does not queue another.
  const resuming = new Set<string>()
  let failing = false
  let stopped = false
  const sweep = async (slot: Date) => {
    let found: Job[]
    try {
      found = await jobsToResume(jobs, deps, slot)
      failing = false
    } catch (error) {
      // Said once per outage, not every minute.
      if (!failing) deps.logger.warn('job sweep failed', { code: 'JOB_FAILED', error })
      failing = true
      return
    }
    const waiting = stopped ? [] : found.filter((job) => !resuming.has(job.name))
    for (const job of waiting) resuming.add(job.name)
    await Promise.all(
      waiting.map((job) =>
        passes.get(job.name)!(slot, false, true).finally(() => resuming.delete(job.name)),
      ),
    )
  }
  if (jobs.length > 0)
    tasks.push(
      driver.schedule(SWEEP_CRON, (at) => track(sweep(slotOf(at))), {
        timeZone: o.timeZone,
        name: 'resume-paused-jobs',
        noOverlap: false,
      }),
    )
  return {
    async stop() {
      stopped = true
      for (const task of tasks) await task.stop()
      await Promise.allSettled([...running])
    },
  }
}
