/**
 * VACUUM and ANALYZE where autovacuum does not run (PGlite): a pruned table's space is used again,
 * and the planner gets statistics. On PostgreSQL autovacuum runs, and nothing is done.
 */
import { sql } from 'kysely'
import { expect, it } from 'vitest'
import { findJob } from '../../jobs/index.js'
import { runJobSlot, slotOf } from '../../jobs/runner.js'
import { forEachDatabase } from '../../test/databases.js'
import { loadConfig } from '../config.js'
import { silentLogger } from '../logger.js'
import { maintainTables } from './maintenance.js'
import type { Database } from './schema.js'

type Db = import('kysely').Kysely<Database>

/** A day of claims with their replies, then the prune job's delete of all of them. */
async function fillAndPrune(db: Db, day: number) {
  await sql`insert into inbound_events (appid, dedupe_key, openid, msg_type, status, reply, received_at)
    select 'wxmaint', ${`d${day}-`} || g, 'o' || g, 'text', 'replied', repeat('回复', 300),
      now() - interval '8 days'
    from generate_series(1, 2000) g`.execute(db)
  await sql`delete from inbound_events where appid = 'wxmaint'`.execute(db)
}

const pages = async (db: Db) =>
  Number(
    (
      await sql<{
        pages: string
      }>`select pg_relation_size('inbound_events') / 8192 as pages`.execute(db)
    ).rows[0]!.pages,
  )

const launcherRuns = async (db: Db) =>
  (
    await sql<{ running: boolean }>`select exists (select from pg_stat_activity
      where backend_type = 'autovacuum launcher') as running`.execute(db)
  ).rows[0]!.running

forEachDatabase('database maintenance', (t) => {
  it('is a scheduled job, run by the runner outside any transaction (VACUUM refuses one)', async () => {
    const job = findJob('database-maintenance')!
    expect(job.cron).toBe('*/5 * * * *')
    const { db } = t()
    await fillAndPrune(db, 0)
    const deps = {
      db,
      clock: { now: () => new Date() },
      logger: silentLogger,
      config: loadConfig({}),
    }
    const outcome = await runJobSlot(job, deps, {
      slot: slotOf(new Date()),
      trigger: 'manual',
      worker: 'maintenance-test',
    })
    expect(outcome.status).toBe('ran')
  })

  // PGlite has no autovacuum; this machine's PostgreSQL may run with `autovacuum = off` too. One
  // connection: a backend's counts of changed rows are its own until flushed.
  it('vacuums what the prune deleted where autovacuum does not run, so new rows reuse its space', async () => {
    await t()
      .db.connection()
      .execute(async (db) => {
        if (await launcherRuns(db)) {
          await fillAndPrune(db, 1)
          expect(await maintainTables(db)).toMatchObject({
            skipped: 'autovacuum',
            vacuumed: [],
            analyzed: [],
          })
          return
        }
        await fillAndPrune(db, 1)
        const first = await maintainTables(db)
        expect(first.skipped).toBeUndefined()
        expect(first.vacuumed).toContain('inbound_events')
        const afterOne = await pages(db)
        for (const day of [2, 3, 4]) {
          await fillAndPrune(db, day)
          await maintainTables(db)
        }
        // Without VACUUM each day's rows take new pages: four days, four times the pages.
        expect(await pages(db)).toBeLessThanOrEqual(afterOne)
        const { rows } = await sql<{ reltuples: number }>`select reltuples from pg_class
        where oid = 'inbound_events'::regclass`.execute(db)
        expect(rows[0]!.reltuples).toBeGreaterThanOrEqual(0)
        // Nothing changed since: nothing to do.
        expect(await maintainTables(db)).toMatchObject({ vacuumed: [], analyzed: [] })
      })
  })
})
