/** The Node scheduler: node-cron in the community's time zone, every tick through its slot claim. */
import cron, { type ScheduledTask } from 'node-cron'
import { runJobSlot, slotOf, workerName } from './runner.js'
import type { Job, JobContext } from './types.js'

export function scheduleJobs(
  jobs: readonly Job[],
  ctx: JobContext,
  o: { timeZone: string; worker?: string },
): ScheduledTask[] {
  const worker = o.worker ?? workerName()
  return jobs.map((job) =>
    cron.schedule(
      job.cron,
      async (tick) => {
        const outcome = await runJobSlot(job, ctx, {
          slot: slotOf(tick.date),
          trigger: 'schedule',
          worker,
        })
        if (outcome.status === 'ran')
          ctx.logger.info('job finished', { job: job.name, ...outcome.result })
        else if (outcome.status === 'failed')
          ctx.logger.error('job failed', { job: job.name, error: outcome.error })
      },
      { timezone: o.timeZone, name: job.name, noOverlap: true },
    ),
  )
}
