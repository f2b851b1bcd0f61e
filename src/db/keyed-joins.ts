import { type Kysely, sql } from 'kysely'
import type { Database } from './schema.js'

/**
 * Plans the next statements of a transaction for joins that find every row by key from a bounded
 * driving set (a batch of due rows, the members who moved): nested loops over the indexes only,
 * no JIT. Batches of 50,000 out of 1,000,000 rows, or statistics taken before a table filled, made
 * the planner choose hash and merge joins that read (and sorted) the whole members, enrollments
 * or outbox table for every batch — 0.8–2.7 s each at 1,000,000 members, and JIT compilation
 * cost ≈ 0.2 s a batch more than it saved (bench/README.md: check-in reminders, lifecycle
 * journeys). `set local`: it ends with the transaction.
 */
export async function keyedJoins(trx: Kysely<Database>): Promise<void> {
  await sql`set local enable_hashjoin = off`.execute(trx)
  await sql`set local enable_mergejoin = off`.execute(trx)
  await sql`set local jit = off`.execute(trx)
}
