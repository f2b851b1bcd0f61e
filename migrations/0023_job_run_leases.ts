import { type Kysely, sql } from 'kysely'

/**
 * Job runs get a lease: the process running a slot renews `lease_until` while the job runs; a
 * `running` row whose lease has passed belongs to a process that died, and the next tick takes it
 * over with a conditional update (`attempts` counts the tries: one retry, then it is marked failed).
 * Rows from before this migration keep a null lease and are never taken over. The partial index
 * makes the per-tick look for expired leases cheap: few rows are ever running.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('job_runs')
    .addColumn('lease_until', 'timestamptz')
    .addColumn('attempts', 'integer', (col) => col.notNull().defaultTo(1))
    .execute()
  await db.schema
    .createIndex('job_runs_running')
    .on('job_runs')
    .columns(['job', 'slot'])
    .where(sql.ref('status'), '=', 'running')
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('job_runs_running').execute()
  await db.schema.alterTable('job_runs').dropColumn('lease_until').dropColumn('attempts').execute()
}
