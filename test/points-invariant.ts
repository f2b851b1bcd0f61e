/** The ledger's invariant with lots (migrations/0035, 0043), checked over every member. */
import { type Kysely, sql } from 'kysely'
import { expect } from 'vitest'
import type { Database } from '../src/db/schema.js'

/**
 * Per member: Σ available ledger deltas = `points_balance` = Σ lots' `remaining` ≥ 0, Σ frozen =
 * `points_frozen` ≥ 0, and every entry's `balance_after` is the running sum of its state.
 */
export async function expectLedgerInvariant(db: Kysely<Database>) {
  const { rows } = await sql<{
    id: number
    balance: number
    frozen: number
    available: number
    frozen_sum: number
    lots: number
  }>`select m.id, m.points_balance as balance, m.points_frozen as frozen,
      coalesce((select sum(delta) from points_ledger l
        where l.member_id = m.id and l.state = 'available'), 0)::int as available,
      coalesce((select sum(delta) from points_ledger l
        where l.member_id = m.id and l.state = 'frozen'), 0)::int as frozen_sum,
      coalesce((select sum(remaining) from points_lots p where p.member_id = m.id), 0)::int as lots
    from members m`.execute(db)
  for (const r of rows) {
    expect(
      { available: r.available, lots: r.lots, frozen: r.frozen_sum },
      `member ${r.id}`,
    ).toEqual({ available: r.balance, lots: r.balance, frozen: r.frozen })
    expect(r.balance).toBeGreaterThanOrEqual(0)
    expect(r.frozen).toBeGreaterThanOrEqual(0)
  }
  const entries = await db
    .selectFrom('points_ledger')
    .select(['member_id', 'state', 'delta', 'balance_after'])
    .orderBy('id')
    .execute()
  const running = new Map<string, number>()
  for (const e of entries) {
    const key = `${e.member_id}:${e.state}`
    const next = (running.get(key) ?? 0) + e.delta
    expect(e.balance_after, `member ${e.member_id} ${e.state}`).toBe(next)
    running.set(key, next)
  }
}
