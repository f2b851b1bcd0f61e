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
  await noJit(trx)
}

/**
 * Turns PostgreSQL's JIT off for the rest of the transaction: one-pass statements over large
 * tables (rollups, segment recompute, job batches) spent ≈ 0.2–1 s compiling for no gain (benches
 * at 1M members). PGlite has no JIT and accepts the setting.
 */
export const noJit = (trx: Kysely<Database>) => sql`set local jit = off`.execute(trx)

/**
 * Runs `n` copies of a batch loop at once, each on its own connection from the pool (one on
 * PGlite, where they take turns). For loops over `FOR UPDATE SKIP LOCKED` batches that stop at the
 * first short batch: a loop stops only when every due row it did not take is locked by another
 * loop, which goes on until it finds none, so no due row is left. A statement runs on one core;
 * two loops use two (the 1,000,000-member runs in bench/README.md).
 */
export async function inParallel(n: number, loop: () => Promise<void>): Promise<void> {
  await Promise.all(Array.from({ length: Math.max(1, n) }, loop))
}
