import { type Kysely, sql } from 'kysely'

/**
 * Resumable job runs (Workers' bounded scheduled invocations): a run that used up its
 * invocation's budget is `paused` — no process holds it — and the next tick resumes it; a chunked
 * job keeps its progress in `cursor` (JSON), written in the same transaction as each chunk's
 * writes, so a chunk either commits with its cursor or not at all. The partial index keeps the
 * per-tick look for paused runs cheap.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('job_runs').addColumn('cursor', 'text').execute()
  await sql`alter table job_runs drop constraint job_runs_status_check`.execute(db)
  await sql`alter table job_runs add constraint job_runs_status_check
    check (status in ('running', 'paused', 'succeeded', 'failed'))`.execute(db)
  await db.schema
    .createIndex('job_runs_paused')
    .on('job_runs')
    .columns(['job', 'slot'])
    .where(sql.ref('status'), '=', 'paused')
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('job_runs_paused').execute()
  await sql`delete from job_runs where status = 'paused'`.execute(db)
  await sql`alter table job_runs drop constraint job_runs_status_check`.execute(db)
  await sql`alter table job_runs add constraint job_runs_status_check
    check (status in ('running', 'succeeded', 'failed'))`.execute(db)
  await db.schema.alterTable('job_runs').dropColumn('cursor').execute()
}
