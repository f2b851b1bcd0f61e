/** A transaction held open on purpose, to test what waits for its locks. */
import { type Kysely, sql, type Transaction } from 'kysely'
import type { Database } from '../src/db/schema.js'

/**
 * Runs `work` in a transaction on `db` and keeps it open — its locks held — until `commit()`;
 * resolves once `work` has returned. `done` is the work's result after the commit.
 * @example const held = await holdTransaction(other, (trx) => moveCampaign(trx, …))
 *   … start what must wait …; held.commit(); await held.done
 */
export async function holdTransaction<T>(
  db: Kysely<Database>,
  work: (trx: Transaction<Database>) => Promise<T>,
): Promise<{ commit: () => void; done: Promise<T> }> {
  let worked!: () => void
  let commit!: () => void
  const isWorked = new Promise<void>((r) => {
    worked = r
  })
  const committed = new Promise<void>((r) => {
    commit = r
  })
  const done = db.transaction().execute(async (trx) => {
    const result = await work(trx)
    worked()
    await committed
    return result
  })
  await Promise.race([isWorked, done])
  return { commit, done }
}

/** Whether `p` is still pending after `ms` milliseconds. */
export async function stillPending(p: Promise<unknown>, ms = 300): Promise<boolean> {
  let settled = false
  p.then(
    () => {
      settled = true
    },
    () => {
      settled = true
    },
  )
  await new Promise((r) => setTimeout(r, ms))
  return !settled
}

/**
 * Resolves once a statement like one of `queries` (SQL `like` patterns) waits for a lock on the
 * database of `db` (PostgreSQL: `pg_stat_activity`).
 * @example await waitingForLock(db, 'update orders o set member_id%')
 */
export async function waitingForLock(db: Kysely<Database>, ...queries: string[]): Promise<void> {
  for (;;) {
    const { rows } = await sql<{ n: number }>`select count(*)::int as n
      from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'
        and (${sql.join(
          queries.map((q) => sql`query like ${q}`),
          sql` or `,
        )})`.execute(db)
    if (rows[0]!.n > 0) return
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
