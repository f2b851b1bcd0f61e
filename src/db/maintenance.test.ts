/**
 * VACUUM and ANALYZE where autovacuum does not run (PGlite; a PostgreSQL server with
 * `autovacuum = off`, as this machine's is): a pruned table's space is used again, and the planner
 * gets statistics. Where autovacuum runs, nothing is done.
 */
import { type Kysely, sql } from 'kysely'
import { expect, it } from 'vitest'
import { findJob } from '../../jobs/index.js'
import { runJobSlot, slotOf } from '../../jobs/runner.js'
import { forEachDatabase } from '../../test/databases.js'
import { loadConfig } from '../config.js'
import { silentLogger } from '../logger.js'
import { autovacuumRuns, type MaintenanceSummary, maintainTables } from './maintenance.js'
import type { Database } from './schema.js'

type Db = Kysely<Database>

/**
 * A day of claims with their replies, then the prune job's delete of all but the day's last one
 * (kept, so a VACUUM cannot simply cut the table's end off: the space must be found again).
 */
async function fillAndPrune(db: Db, day: number) {
  await sql`insert into inbound_events (appid, dedupe_key, openid, msg_type, status, reply, received_at)
    select 'wxmaint', ${`d${day}-`} || lpad(g::text, 4, '0'), 'o' || g, 'text', 'replied',
      repeat('回复', 300), now() - interval '8 days'
    from generate_series(1, 2000) g`.execute(db)
  await sql`delete from inbound_events
    where appid = 'wxmaint' and dedupe_key <> ${`d${day}-2000`}`.execute(db)
}

const pages = async (db: Db) =>
  Number(
    (
      await sql<{
        pages: string
      }>`select pg_relation_size('inbound_events') / 8192 as pages`.execute(db)
    ).rows[0]!.pages,
  )

forEachDatabase('database maintenance', (t, name) => {
  // One connection: a backend's counts of changed rows are its own until flushed.
  it('runs every five minutes, outside any transaction (VACUUM refuses one)', async () => {
    const job = findJob('database-maintenance')!
    expect(job.cron).toBe('*/5 * * * *')
    await t()
      .db.connection()
      .execute(async (db) => {
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
        expect(outcome).toMatchObject({ status: 'ran' })
        const result = (outcome as { result: Record<string, unknown> }).result
        if (await autovacuumRuns(db)) {
          expect(result).toMatchObject({ skipped: 'autovacuum' })
          return
        }
        // The job keeps the real budget (RUN_BUDGET_MS of wall clock), which a loaded machine may
        // spend on the first table: then the pruned table is left, counted, for the next run.
        const { vacuumed, analyzed, left } = result as unknown as MaintenanceSummary
        if (left === 0) expect(vacuumed).toContain('inbound_events')
        else expect(vacuumed.length + analyzed.length).toBeGreaterThan(0)
      })
  })

  // PGlite only: on a shared PostgreSQL server another suite's open transaction may keep the
  // deleted rows from being removed, so their space would rightly not be free yet.
  if (name === 'pglite')
    it('vacuums what the prune deleted, so the next rows reuse its space, and analyzes', async () => {
      const { db } = t()
      // No budget: this is about what VACUUM does, not how much of it fits in a second of this
      // machine's wall clock (a loaded one spent it on the first table, pg_class, and stopped).
      const maintain = () => maintainTables(db, { budgetMs: Number.POSITIVE_INFINITY })
      await fillAndPrune(db, 1)
      expect((await maintain()).vacuumed).toContain('inbound_events')
      const afterOne = await pages(db)
      for (const day of [2, 3, 4]) {
        await fillAndPrune(db, day)
        expect((await maintain()).vacuumed).toContain('inbound_events')
      }
      // Without VACUUM each day's rows take new pages: four days, four times the pages.
      expect(await pages(db)).toBeLessThanOrEqual(afterOne)
      const { rows } = await sql<{ reltuples: number }>`select reltuples from pg_class
        where oid = 'inbound_events'::regclass`.execute(db)
      expect(rows[0]!.reltuples).toBeGreaterThanOrEqual(0)
      // Nothing changed in it since: not due again.
      const again = await maintain()
      expect([...again.vacuumed, ...again.analyzed]).not.toContain('inbound_events')
    })

  it('starts no statement once its budget is spent: what is due waits for the next run', async () => {
    await t()
      .db.connection()
      .execute(async (db) => {
        if (await autovacuumRuns(db)) return
        await fillAndPrune(db, 5)
        const spent = await maintainTables(db, { budgetMs: 0 })
        // A budget of 0 still runs the first table due, and leaves the rest counted.
        expect(spent.vacuumed.length + spent.analyzed.length).toBe(1)
        // The next runs take the rest, the longest unmaintained first, until nothing is left.
        const done = [...spent.vacuumed, ...spent.analyzed]
        let left = spent.left
        for (let run = 0; left > 0 && run < 20; run++) {
          // The runs after it have all the time they need: how many a machine takes is not asserted.
          const next = await maintainTables(db, { budgetMs: Number.POSITIVE_INFINITY })
          done.push(...next.vacuumed, ...next.analyzed)
          left = next.left
        }
        expect(left).toBe(0)
        expect(done).toContain('inbound_events')
      })
  })
})
