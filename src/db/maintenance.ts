/**
 * What PostgreSQL's autovacuum does, for a database where it does not run. PGlite is one standalone
 * backend, with no autovacuum launcher, so nothing there ever vacuums or analyzes a table. Without
 * VACUUM the space of deleted and updated rows is never reused (the free space map is only filled by
 * VACUUM): every table that is pruned — the inbound claims, the replay cache, rate buckets, the
 * outbox, job runs — grows with everything it ever held. Without ANALYZE the planner never has
 * statistics. A PostgreSQL server runs autovacuum itself unless `autovacuum = off`: only then is
 * anything done there.
 *
 * The thresholds are autovacuum's defaults (PostgreSQL 15–17; a server's own `autovacuum_*`
 * settings and per-table options are not read): VACUUM once the dead rows exceed 50 + 20 % of the
 * table's rows, the rows inserted since the last VACUUM 1,000 + 20 %, or the table's oldest
 * unfrozen transaction is older than `autovacuum_freeze_max_age` (VACUUM then freezes the whole
 * table, as autovacuum's anti-wraparound run does); ANALYZE once the rows changed since the last
 * ANALYZE exceed 50 + 10 %. The app's tables and the system catalogs (ANALYZE itself leaves dead
 * rows in `pg_statistic`), only those the app's role may maintain. Run often (the
 * `database-maintenance` job: every five minutes), each VACUUM covers only what changed since the
 * last one; a run starts no new statement after {@link RUN_BUDGET_MS}, the next run goes on.
 */
import { type Kysely, sql } from 'kysely'
import type { Database } from './schema.js'

/** A run starts no VACUUM or ANALYZE after this long but its first: PGlite serves nothing else meanwhile. */
export const RUN_BUDGET_MS = 1_000

/** What one pass did: the tables vacuumed (with ANALYZE) and analyzed only, and how long it took. */
export interface MaintenanceSummary {
  /** Set when the database runs autovacuum itself: nothing was done. */
  skipped?: 'autovacuum'
  vacuumed: string[]
  analyzed: string[]
  /** Tables due that the budget left for the next run. */
  left: number
  ms: number
}

/**
 * Whether the database vacuums its tables itself: not PGlite (its own session is a standalone
 * backend, with no launcher beside it); PostgreSQL as its `autovacuum` setting says — a launcher an
 * ordinary role could not see in pg_stat_activity.
 */
export async function autovacuumRuns(db: Kysely<Database>): Promise<boolean> {
  const { rows } = await sql<{ runs: boolean }>`select current_setting('autovacuum') = 'on'
      and (select backend_type from pg_stat_activity where pid = pg_backend_pid())
        is distinct from 'standalone backend' as runs`.execute(db)
  return rows[0]!.runs
}

/** Vacuums and analyzes the tables that autovacuum would, where it does not run. */
export async function maintainTables(
  db: Kysely<Database>,
  { budgetMs = RUN_BUDGET_MS }: { budgetMs?: number } = {},
): Promise<MaintenanceSummary> {
  const started = performance.now()
  const elapsed = () => Math.round(performance.now() - started)
  if (await autovacuumRuns(db))
    return { skipped: 'autovacuum', vacuumed: [], analyzed: [], left: 0, ms: elapsed() }
  // A backend flushes its counts of changed rows when idle, which a standalone backend never is:
  // they are read only after a forced flush (PostgreSQL 15 and later).
  await sql`do $$ begin
      if to_regproc('pg_catalog.pg_stat_force_next_flush') is not null then
        perform pg_stat_force_next_flush();
      end if;
    end $$`.execute(db)
  // reltuples is -1 for a table never vacuumed nor analyzed: counted as empty, as autovacuum does.
  const { rows } = await sql<{ name: string; vacuum: boolean }>`
    select name, due_vacuum as vacuum from (
      select c.oid::regclass::text as name,
        greatest(s.last_vacuum, s.last_autovacuum, s.last_analyze, s.last_autoanalyze) as last_done,
        s.n_dead_tup > 50 + 0.2 * greatest(c.reltuples, 0)
          or s.n_ins_since_vacuum > 1000 + 0.2 * greatest(c.reltuples, 0)
          or age(c.relfrozenxid) > current_setting('autovacuum_freeze_max_age')::bigint as due_vacuum,
        s.n_mod_since_analyze > 50 + 0.1 * greatest(c.reltuples, 0) as due_analyze
      from pg_stat_all_tables s join pg_class c on c.oid = s.relid
      where s.schemaname in (current_schema(), 'pg_catalog') and c.relkind = 'r'
        and pg_has_role(c.relowner, 'USAGE')) t
    where due_vacuum or due_analyze
    -- The longest unmaintained first: what a run's budget leaves, the next run starts with.
    order by last_done nulls first, name`.execute(db)
  const vacuumed: string[] = []
  const analyzed: string[] = []
  let left = 0
  for (const table of rows) {
    // The first table due always runs, so every run makes progress.
    if (vacuumed.length + analyzed.length > 0 && elapsed() >= budgetMs) {
      left++
      continue
    }
    // The name is the catalog's own, quoted by regclass where it needs to be.
    if (table.vacuum) {
      await sql.raw(`vacuum (analyze) ${table.name}`).execute(db)
      vacuumed.push(table.name)
    } else {
      await sql.raw(`analyze ${table.name}`).execute(db)
      analyzed.push(table.name)
    }
  }
  return { vacuumed, analyzed, left, ms: elapsed() }
}
