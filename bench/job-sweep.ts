/**
 * The Node sweep's idle cost (jobs/schedule.ts): what `jobsToResume` — the one query the sweep
 * makes every minute — costs with nothing to resume, over a `job_runs` table as 30 days of the real
 * job list leave it (JOB_RUNS_RETENTION_DAYS), on PostgreSQL and on PGlite. Per call: wall time and
 * this process's CPU (the driver's and Kysely's; PGlite's WASM engine runs in this process, so its
 * figure includes the database's work). Prints the PostgreSQL plan.
 *
 *   npx tsx bench/job-sweep.ts
 * Env: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test), BENCH_CALLS (2000).
 */
import { CompiledQuery, type Kysely, sql } from 'kysely'
import { jobs } from '../jobs/index.js'
import { jobsToResume } from '../jobs/runner.js'
import type { JobDeps } from '../jobs/types.js'
import { loadConfig } from '../src/config.js'
import { migrateToLatest } from '../src/db/migrate.js'
import { pgliteDatabase } from '../src/db/open-database.js'
import type { Database } from '../src/db/schema.js'
import { silentLogger } from '../src/logger.js'
import { throwawaySchema } from './throwaway-schema.js'

const calls = Number(process.env.BENCH_CALLS ?? 2000)
const now = new Date('2026-11-26T00:00:00Z')

/** Every job's succeeded runs over 30 days, at its cron's period (minute, 5, 30 min or daily). */
async function fill(db: Kysely<Database>): Promise<number> {
  for (const job of jobs) {
    const [minute, hour] = job.cron.split(' ')
    const step =
      minute === '*'
        ? 1
        : minute?.startsWith('*/')
          ? Number(minute.slice(2))
          : hour === '*'
            ? 60
            : 1440
    await sql`insert into job_runs (job, slot, trigger, status, worker, started_at, finished_at,
        attempts)
      select ${job.name}, s, 'schedule', 'succeeded', 'bench', s, s, 1
      from generate_series(${now}::timestamptz - interval '30 days', ${now}::timestamptz,
        make_interval(mins => ${step})) as s`.execute(db)
  }
  await sql`analyze job_runs`.execute(db)
  const { rows } = await sql<{ n: number }>`select count(*)::int as n from job_runs`.execute(db)
  return rows[0]!.n
}

async function measure(name: string, db: Kysely<Database>) {
  const rows = await fill(db)
  const deps: JobDeps = {
    db,
    clock: { now: () => now },
    logger: silentLogger,
    config: loadConfig({}),
  }
  for (let i = 0; i < 100; i++) await jobsToResume(jobs, deps, now)
  const cpu = process.cpuUsage()
  const started = performance.now()
  for (let i = 0; i < calls; i++) {
    const found = await jobsToResume(jobs, deps, now)
    if (found.length > 0) throw new Error('nothing should be resumable')
  }
  const wall = ((performance.now() - started) * 1000) / calls
  const used = process.cpuUsage(cpu)
  console.log(
    `${name}: job_runs ${rows} rows, ${calls} idle sweeps: ${wall.toFixed(0)} µs wall, ` +
      `${((used.user + used.system) / calls).toFixed(0)} µs CPU (this process) per sweep`,
  )
}

let last: CompiledQuery | undefined
const pg = await throwawaySchema('bench_sweep', {
  log: (e) => {
    if (e.level === 'query') last = e.query
  },
})
try {
  await migrateToLatest(pg.db)
  await measure('postgres', pg.db)
  // The plan of the sweep's statement (the last one run).
  const q = last!
  const plan = await pg.db.executeQuery<{ 'QUERY PLAN': string }>(
    CompiledQuery.raw(`explain (analyze, costs off, timing off) ${q.sql}`, [...q.parameters]),
  )
  console.log(plan.rows.map((r) => r['QUERY PLAN']).join('\n'))
} finally {
  await pg.drop()
}
const lite = await pgliteDatabase(undefined)
await migrateToLatest(lite)
await measure('pglite', lite)
await lite.destroy()
