/**
 * Running jobs exactly once per slot, whatever the number of processes: a run first claims
 * `(job, slot)` in `job_runs` (insert … on conflict do nothing); the process that inserted runs the
 * job and stores its result, the others skip. The slot is the scheduled time, rounded to the second
 * so that processes whose clocks differ by less than half a second agree on it.
 *
 * A process that dies mid-run leaves its row `running`: that slot is not retried (jobs are written
 * to catch up on their next slot).
 */
import { cronMatches } from '../src/cron.js'
import type { Job, JobContext } from './types.js'

/** What happened to one slot in this process. */
export type SlotOutcome =
  | { status: 'ran'; result: Record<string, unknown> }
  | { status: 'failed'; error: unknown }
  | { status: 'skipped' }

/** The slot of a scheduled time: rounded to the second. */
export const slotOf = (scheduled: Date) => new Date(Math.round(scheduled.getTime() / 1000) * 1000)

/** A name for this process in `job_runs.worker`. */
export const workerName = () =>
  `${globalThis.process?.pid ?? 'worker'}@${Math.random().toString(36).slice(2, 8)}`

/** Claims `(job, slot)` and, if this caller won, runs the job and records the outcome. */
export async function runJobSlot(
  job: Job,
  ctx: JobContext,
  o: { slot: Date; trigger: 'schedule' | 'manual'; worker: string },
): Promise<SlotOutcome> {
  const claimed = await ctx.db
    .insertInto('job_runs')
    .values({
      job: job.name,
      slot: o.slot,
      trigger: o.trigger,
      status: 'running',
      worker: o.worker,
      started_at: ctx.clock.now(),
    })
    .onConflict((oc) => oc.columns(['job', 'slot']).doNothing())
    .returning('job')
    .executeTakeFirst()
  if (!claimed) return { status: 'skipped' }
  const done = (status: 'succeeded' | 'failed', fields: { result?: string; error?: string }) =>
    ctx.db
      .updateTable('job_runs')
      .set({ status, finished_at: ctx.clock.now(), ...fields })
      .where('job', '=', job.name)
      .where('slot', '=', o.slot)
      .execute()
  try {
    const result = await job.run(ctx)
    await done('succeeded', { result: JSON.stringify(result) })
    return { status: 'ran', result }
  } catch (error) {
    await done('failed', { error: error instanceof Error ? error.message : String(error) })
    return { status: 'failed', error }
  }
}

/**
 * The jobs due at a moment (Workers: `scheduled()` fires every minute; each job's cron is matched in
 * the community's time zone), each run through its claim.
 */
export async function runDue(
  jobs: readonly Job[],
  ctx: JobContext,
  o: { scheduledTime: Date; timeZone: string; worker: string },
) {
  const due = jobs.filter((j) => cronMatches(j.cron, o.scheduledTime, o.timeZone))
  return Promise.all(
    due.map(async (job) => ({
      job: job.name,
      ...(await runJobSlot(job, ctx, {
        slot: slotOf(o.scheduledTime),
        trigger: 'schedule',
        worker: o.worker,
      })),
    })),
  )
}
