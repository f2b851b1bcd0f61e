/** A member's points and one page of their ledger, newest first. */
import type { Kysely } from 'kysely'
import type { Database, Member } from '../../db/schema.js'

/** The largest page of ledger entries. */
export const LEDGER_PAGE_MAX = 200

/**
 * The member's balance, frozen and lifetime points, level, and up to `limit` ledger entries (default
 * 50, at most {@link LEDGER_PAGE_MAX}) older than entry `before` (0 or absent: the newest).
 */
export async function memberLedger(
  db: Kysely<Database>,
  member: Member,
  page: { limit?: number; before?: number } = {},
) {
  const limit = Math.min(LEDGER_PAGE_MAX, page.limit ?? 50)
  const before = page.before ?? 0
  let q = db
    .selectFrom('points_ledger')
    .select([
      'id',
      'delta',
      'rule',
      'reference',
      'balance_after',
      'earned',
      'state',
      'created_at',
      'expires_at',
    ])
    .where('member_id', '=', member.id)
    .orderBy('id', 'desc')
    .limit(limit)
  if (before > 0) q = q.where('id', '<', before)
  const entries = await q.execute()
  return {
    balance: member.points_balance,
    frozen: member.points_frozen,
    lifetime: member.points_lifetime,
    level: member.level,
    entries,
  }
}
