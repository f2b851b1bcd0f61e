/**
 * Nightly: every member's lifecycle segment and its transitions (src/community/segments.ts), in
 * chunks of JOB_CHUNK_MEMBERS members by id, each chunk one transaction with its cursor
 * (jobs/chunks.ts). Every chunk of a run computes at the run's `now`, kept in the cursor, so a run
 * spread over several Workers invocations ends exactly where one unbounded run would.
 */
import { recomputeSegments } from '../src/community/segments.js'
import { memberChunkEnd, runChunks } from './chunks.js'
import type { Job } from './types.js'

/** Where a run stands: its time, the last member id recomputed, the changes so far. */
interface SegmentCursor {
  now: string
  after: number
  changed: number
}

export const recomputeSegmentsJob: Job = {
  name: 'recompute-segments',
  cron: '30 3 * * *',
  async run(ctx) {
    const { clock, config } = ctx
    const started = Date.now()
    const run = await runChunks<SegmentCursor>(ctx, {
      start: () => ({ now: clock.now().toISOString(), after: 0, changed: 0 }),
      async chunk(trx, c) {
        const through = await memberChunkEnd(trx, c.after, config.jobs.chunkMembers)
        const changed = await recomputeSegments(trx, {
          now: new Date(c.now),
          thresholds: config.segments,
          timeZone: config.timeZone,
          ids: { after: c.after, through },
        })
        const cursor = { now: c.now, after: through ?? c.after, changed: c.changed + changed }
        return { cursor, done: through === null }
      },
    })
    return {
      changed: run.cursor.changed,
      chunks: run.chunks,
      ms: Date.now() - started,
      ...(run.done ? {} : { more: true, after: run.cursor.after }),
    }
  },
}
