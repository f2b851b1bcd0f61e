/** The Node scheduler: node-cron in the community's time zone, every tick through its slot claim. */
import cron from 'node-cron'
import type { Metrics } from '../src/metrics.js'
import { runJobSlot, slotOf, workerName } from './runner.js'
import type { Job, JobContext } from './types.js'

/** A run slower than this is logged at warn. */
const SLOW_MS = 30_000

/** The running schedule. */
export interface Schedule {
  /** Stops ticking and waits for the runs in progress. */
  stop(): Promise<void>
}

/**
 * Schedules every job. Routine successful runs log at debug (an idle server would otherwise write
 * thousands of lines a day); failed and slow runs at warn with a stable `code`.
 */
export function scheduleJobs(
  jobs: readonly Job[],
  ctx: JobContext,
  o: { timeZone: string; worker?: string; metrics?: Metrics },
): Schedule {
  const worker = o.worker ?? workerName()
  const running = new Set<Promise<unknown>>()
  const tasks = jobs.map((job) =>
    cron.schedule(
      job.cron,
      async (tick) => {
        const started = performance.now()
        const run = runJobSlot(job, ctx, { slot: slotOf(tick.date), trigger: 'schedule', worker })
        running.add(run)
        const outcome = await run.finally(() => running.delete(run))
        const ms = Math.round(performance.now() - started)
        o.metrics?.job({ job: job.name, outcome: outcome.status, seconds: ms / 1000 })
        if (outcome.status === 'failed')
          ctx.logger.warn('job failed', {
            code: 'JOB_FAILED',
            job: job.name,
            ms,
            error: outcome.error,
          })
        else if (outcome.status === 'ran' && ms >= SLOW_MS)
          ctx.logger.warn('job slow', { code: 'JOB_SLOW', job: job.name, ms, ...outcome.result })
        else if (outcome.status === 'ran')
          ctx.logger.debug('job finished', { job: job.name, ms, ...outcome.result })
      },
      { timezone: o.timeZone, name: job.name, noOverlap: true },
    ),
  )
  return {
    async stop() {
      for (const task of tasks) await task.stop()
      await Promise.allSettled([...running])
    },
  }
}
