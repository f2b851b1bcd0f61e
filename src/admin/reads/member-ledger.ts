/** A member's points and one page of their ledger, newest first. */
import { type Kysely, sql } from 'kysely'
import type { Database, Member } from '../../db/schema.js'

/** The largest page of ledger entries. */
export const LEDGER_PAGE_MAX = 200

/**
 * The member's balance, frozen and lifetime points, level, and up to `limit` ledger entries (default
 * 50, at most {@link LEDGER_PAGE_MAX}) older than entry `before` (0 or absent: the newest). A
 * credit carries its lot's expiry (points-expiry.ts): `lot_expires_at` (null: not stamped yet or
 * never expires), what is left of it and what expired.
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
    .leftJoin('points_lots as l', 'l.ledger_id', 'points_ledger.id')
    .select([
      'points_ledger.id',
      'points_ledger.delta',
      'points_ledger.rule',
      'points_ledger.reference',
      'points_ledger.balance_after',
      'points_ledger.earned',
      'points_ledger.state',
      'points_ledger.created_at',
      'points_ledger.expires_at',
      // `infinity` (never) is not read into JavaScript
      sql<Date | null>`case when l.expires_at < 'infinity'::timestamptz then l.expires_at end`.as(
        'lot_expires_at',
      ),
      'l.remaining as lot_remaining',
      'l.expired as lot_expired',
    ])
    .where('points_ledger.member_id', '=', member.id)
    .orderBy('points_ledger.id', 'desc')
    .limit(limit)
  if (before > 0) q = q.where('points_ledger.id', '<', before)
  const entries = await q.execute()
  return {
    balance: member.points_balance,
    frozen: member.points_frozen,
    lifetime: member.points_lifetime,
    level: member.level,
    entries,
  }
}
