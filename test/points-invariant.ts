/** The ledger's invariant (migrations/0035 frozen points, 0043 lots), checked over every member. */
import { type Kysely, sql } from 'kysely'
import { expect } from 'vitest'
import type { Database } from '../src/db/schema.js'

/**
 * Per member: Σ available ledger deltas = `points_balance` = Σ lots' `remaining` ≥ 0; Σ frozen =
 * `points_frozen` = what its frozen grants still hold ≥ 0; `points_lifetime` = Σ earned; and every
 * entry's `balance_after` is the running sum of its state, in ledger order.
 */
export async function expectLedgerInvariant(db: Kysely<Database>) {
  const { rows } = await sql<{
    id: number
    points_balance: number
    points_frozen: number
    points_lifetime: number
    available: number
    frozen: number
    earned: number
    granted_frozen: number
    lots: number
  }>`select m.id, m.points_balance, m.points_frozen, m.points_lifetime,
      coalesce((select sum(delta) from points_ledger l
        where l.member_id = m.id and l.state = 'available'), 0)::int as available,
      coalesce((select sum(delta) from points_ledger l
        where l.member_id = m.id and l.state = 'frozen'), 0)::int as frozen,
      coalesce((select sum(earned) from points_ledger l where l.member_id = m.id), 0)::int as earned,
      coalesce((select sum(points - points_taken_back) from purchase_grants g
        where g.member_id = m.id and g.points_status = 'frozen'), 0)::int as granted_frozen,
      coalesce((select sum(remaining) from points_lots p where p.member_id = m.id), 0)::int as lots
    from members m`.execute(db)
  expect(rows.length).toBeGreaterThan(0)
  for (const m of rows) {
    expect(
      {
        balance: m.points_balance,
        lots: m.points_balance,
        frozen: m.points_frozen,
        lifetime: m.points_lifetime,
        grants: m.points_frozen,
      },
      `member ${m.id}`,
    ).toEqual({
      balance: m.available,
      lots: m.lots,
      frozen: m.frozen,
      lifetime: m.earned,
      grants: m.granted_frozen,
    })
    expect(Math.min(m.points_balance, m.points_frozen), `member ${m.id}`).toBeGreaterThanOrEqual(0)
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
