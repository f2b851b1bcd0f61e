import { type Kysely, sql } from 'kysely'

/**
 * One row per job and slot (its scheduled time): the primary key is the claim, so with several
 * processes scheduling the same jobs each slot runs once; the row keeps the outcome.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('job_runs')
    .addColumn('job', 'text', (col) => col.notNull())
    .addColumn('slot', 'timestamptz', (col) => col.notNull())
    .addColumn('trigger', 'text', (col) =>
      col.notNull().check(sql`trigger in ('schedule', 'manual')`),
    )
    .addColumn('status', 'text', (col) =>
      col.notNull().check(sql`status in ('running', 'succeeded', 'failed')`),
    )
    .addColumn('worker', 'text', (col) => col.notNull())
    .addColumn('result', 'text')
    .addColumn('error', 'text')
    .addColumn('started_at', 'timestamptz', (col) => col.notNull())
    .addColumn('finished_at', 'timestamptz')
    .addPrimaryKeyConstraint('job_runs_pkey', ['job', 'slot'])
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('job_runs').execute()
}
