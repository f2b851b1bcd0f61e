/**
 * The suites' databases (test/databases.ts): on PGlite each suite gets a fresh `public` in its
 * worker's one instance, and a suite's work still running after its database was destroyed never
 * reaches the next suite's.
 */
import { sql } from 'kysely'
import { expect, it } from 'vitest'
import { freshPglite } from './databases.js'

it('fences a finished suite off the next one’s PGlite database', async () => {
  const first = await freshPglite()
  await sql`create table left_behind (x int)`.execute(first)
  let resume = () => {}
  const paused = new Promise<void>((resolve) => {
    resume = resolve
  })
  // a transaction still running when its suite ends (a handler finishing after its reply)
  const straggler = first.transaction().execute(async (trx) => {
    await sql`insert into left_behind values (1)`.execute(trx)
    await paused
    await sql`insert into left_behind values (2)`.execute(trx)
  })
  await first.destroy()
  const next = await freshPglite()
  resume()
  await expect(straggler).rejects.toThrow(/closed/)
  await expect(sql`select 1 from left_behind`.execute(first)).rejects.toThrow()
  // the next suite's public is empty, and no statement of the first reached it
  const { rows } = await sql<{ n: number }>`select count(*)::int as n from pg_tables
    where schemaname = 'public'`.execute(next)
  expect(rows[0]!.n).toBe(0)
  await sql`select 1`.execute(next) // and it works, outside any transaction of the first
  await next.destroy()
})
