/**
 * Nightly: every member's lifecycle segment and its transitions (src/community/segments.ts), in
 * chunks of JOB_CHUNK_MEMBERS members by id, each chunk one transaction with its cursor
 * (jobs/chunks.ts). Every chunk of a run computes at the run's `now`, kept in the cursor, so a run
 * spread over several Workers invocations ends exactly where one unbounded run would. A run whose
 * `now` is older than another run's that has committed a chunk is superseded: it stops and writes
 * nothing more (a paused nightly run resumed after a newer manual one must not put older segments
 * and `since` values back). Chunks run one at a time (recomputeSegments' lock), and each looks at
 * the runs' cursors in `job_runs` under that lock, so the decision holds across processes.
 */
import { type Kysely, sql, type Transaction } from 'kysely'
import { lockSegmentRecomputes, recomputeSegments } from '../src/community/segments.js'
import type { Database } from '../src/db/schema.js'
import { memberChunkEnd, runChunks } from './chunks.js'
import type { Job } from './types.js'

/** Where a run stands: its time, the last member id recomputed, the changes so far. */
interface SegmentCursor {
  now: string
  after: number
  changed: number
  /** The `now` of the newer run that superseded this one. */
  superseded?: string
}

/** The newest `now` of the runs of this job that committed a chunk (their saved cursors). */
async function newestRun(db: Kysely<Database>): Promise<Date | null> {
  const row = await db
    .selectFrom('job_runs')
    .select(sql<Date | null>`max((cursor::jsonb ->> 'now')::timestamptz)`.as('now'))
    .where('job', '=', recomputeSegmentsJob.name)
    .where('cursor', 'is not', null)
    .executeTakeFirst()
  return row?.now ? new Date(row.now) : null
}

/** Whether a newer run has written: then this chunk writes nothing (called under the lock). */
async function supersededBy(trx: Transaction<Database>, c: SegmentCursor) {
  await lockSegmentRecomputes(trx)
  const newest = await newestRun(trx)
  return newest && newest.getTime() > new Date(c.now).getTime() ? newest : null
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
        const newer = await supersededBy(trx, c)
        if (newer) return { cursor: { ...c, superseded: newer.toISOString() }, done: true }
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
      ...(run.cursor.superseded ? { superseded: run.cursor.superseded } : {}),
      ...(run.done ? {} : { more: true, after: run.cursor.after }),
    }
  },
}
