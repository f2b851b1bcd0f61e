/**
 * What PostgreSQL's autovacuum does, for a database where it does not run: PGlite is one standalone
 * backend, with no autovacuum launcher, so nothing there ever vacuums or analyzes a table. Without
 * VACUUM the space of deleted and updated rows is never reused (the free space map is only filled by
 * VACUUM): every table that is pruned — the inbound claims, the replay cache, rate buckets, the
 * outbox, job runs — grows with everything it ever held. Without ANALYZE the planner never has
 * statistics. A PostgreSQL server runs autovacuum itself (unless `autovacuum = off`): when its
 * launcher is running, nothing is done here.
 *
 * The thresholds are autovacuum's defaults (PostgreSQL 15–17): VACUUM once the dead rows exceed 50
 * + 20 % of the table's rows, or the rows inserted since the last VACUUM 1,000 + 20 %; ANALYZE once
 * the rows changed since the last ANALYZE exceed 50 + 10 %. Run often (the `database-maintenance`
 * job: every five minutes), each VACUUM covers only what changed since the last one.
 */
import { type Kysely, sql } from 'kysely'
import type { Database } from './schema.js'

/** What one pass did: the tables vacuumed (with ANALYZE) and analyzed only, and how long it took. */
export interface MaintenanceSummary {
  /** Set when the database runs autovacuum itself: nothing was done. */
  skipped?: 'autovacuum'
  vacuumed: string[]
  analyzed: string[]
  ms: number
}

/** Vacuums and analyzes the tables of the current schema that autovacuum would, where it does not run. */
export async function maintainTables(db: Kysely<Database>): Promise<MaintenanceSummary> {
  const started = performance.now()
  const { rows: launcher } = await sql<{ running: boolean }>`select exists (
      select from pg_stat_activity where backend_type = 'autovacuum launcher') as running`.execute(
    db,
  )
  if (launcher[0]?.running)
    return {
      skipped: 'autovacuum',
      vacuumed: [],
      analyzed: [],
      ms: Math.round(performance.now() - started),
    }
  // A backend flushes its counts of changed rows when idle, which a standalone backend (PGlite)
  // never is: its counts are read only after a forced flush (PostgreSQL 15 and later).
  await sql`do $$ begin
      if to_regproc('pg_catalog.pg_stat_force_next_flush') is not null then
        perform pg_stat_force_next_flush();
      end if;
    end $$`.execute(db)
  // reltuples is -1 for a table never vacuumed nor analyzed: counted as empty, as autovacuum does.
  const { rows } = await sql<{ name: string; vacuum: boolean; analyze: boolean }>`
    select c.oid::regclass::text as name,
      s.n_dead_tup > 50 + 0.2 * greatest(c.reltuples, 0)
        or s.n_ins_since_vacuum > 1000 + 0.2 * greatest(c.reltuples, 0) as vacuum,
      s.n_mod_since_analyze > 50 + 0.1 * greatest(c.reltuples, 0) as analyze
    from pg_stat_user_tables s join pg_class c on c.oid = s.relid
    where s.schemaname = current_schema()
    order by name`.execute(db)
  const vacuumed: string[] = []
  const analyzed: string[] = []
  for (const table of rows) {
    // The name is the catalog's own, quoted by regclass where it needs to be.
    if (table.vacuum) {
      await sql.raw(`vacuum (analyze) ${table.name}`).execute(db)
      vacuumed.push(table.name)
    } else if (table.analyze) {
      await sql.raw(`analyze ${table.name}`).execute(db)
      analyzed.push(table.name)
    }
  }
  return { vacuumed, analyzed, ms: Math.round(performance.now() - started) }
}
