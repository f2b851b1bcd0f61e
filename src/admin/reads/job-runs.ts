/** The scheduler as an operator sees it: each job's newest run (one primary-key probe each). */
import type { Kysely, Selectable } from 'kysely'
import type { Database, JobRunsTable } from '../../db/schema.js'

/** A job's newest run, or null when it never ran here. */
export interface LatestJobRun {
  job: string
  run: Selectable<JobRunsTable> | null
}

/** The newest run of each named job, in the order given. */
export async function latestJobRuns(
  db: Kysely<Database>,
  names: readonly string[],
): Promise<LatestJobRun[]> {
  return Promise.all(
    names.map(async (job) => ({
      job,
      run:
        (await db
          .selectFrom('job_runs')
          .selectAll()
          .where('job', '=', job)
          .orderBy('slot', 'desc')
          .limit(1)
          .executeTakeFirst()) ?? null,
    })),
  )
}
