/**
 * The points ledger: append-only entries, each with a unique idempotency key, delta, rule, reference
 * and balance_after. Every change happens with the member's row locked (`select … for update`), in
 * the same transaction as the cached balance on `members` — so concurrent awards for one member
 * serialize, a repeated idempotency key changes nothing, caps hold, and no spend makes a balance
 * negative (also enforced by CHECK constraints).
 */
import type { Kysely, Transaction } from 'kysely'
import type { Database, Member } from '../db/schema.js'
import { localDay, weekStart } from './community-time.js'
import { type Level, levelByKey, levelFor } from './levels.js'

type Db = Kysely<Database> | Transaction<Database>

/** A ledger change to make. */
export interface LedgerChange {
  appid: string
  memberId: number
  /** The rule (for awards from the rules table) or a free label (grant, deduct, redeem …). */
  rule: string
  /** Unique per account: the same key never changes the balance twice. */
  idempotencyKey: string
  reference?: string
  now: Date
  timeZone: string
  expiresAt?: Date
  /** Whether a positive delta counts as earned (levels, weekly ranking). Default true; refunds: false. */
  earned?: boolean
}

/** What a change did. */
export type LedgerOutcome =
  | {
      status: 'applied'
      delta: number
      balance: number
      lifetime: number
      level: Level
      /** Set when this entry moved the member up a level. */
      levelUp: { from: Level; to: Level } | null
    }
  | { status: 'duplicate' | 'capped' | 'disabled' | 'insufficient'; balance: number; level: Level }

/** Runs `fn` in a transaction with the member's row locked. */
export async function withMemberLocked<T>(
  db: Kysely<Database>,
  memberId: number,
  fn: (trx: Transaction<Database>, member: Member) => Promise<T>,
): Promise<T> {
  return db.transaction().execute(async (trx) => {
    const member = await trx
      .selectFrom('members')
      .selectAll()
      .where('id', '=', memberId)
      .forUpdate()
      .executeTakeFirstOrThrow()
    return fn(trx, member)
  })
}

/** The effective rule for an account: its own row, else the '*' default. */
export async function findRule(db: Db, appid: string, rule: string) {
  const rows = await db
    .selectFrom('point_rules')
    .selectAll()
    .where('rule', '=', rule)
    .where('appid', 'in', [appid, '*'])
    .execute()
  return rows.find((r) => r.appid === appid) ?? rows.find((r) => r.appid === '*')
}

async function alreadyApplied(trx: Db, c: LedgerChange) {
  return trx
    .selectFrom('points_ledger')
    .select('id')
    .where('appid', '=', c.appid)
    .where('idempotency_key', '=', c.idempotencyKey)
    .executeTakeFirst()
}

async function append(trx: Transaction<Database>, member: Member, c: LedgerChange, delta: number) {
  const balance = member.points_balance + delta
  const earned = c.earned === false ? 0 : Math.max(0, delta)
  const lifetime = member.points_lifetime + earned
  const from = levelByKey(member.level)
  const to = levelFor(lifetime)
  await trx
    .insertInto('points_ledger')
    .values({
      appid: c.appid,
      member_id: member.id,
      delta,
      rule: c.rule,
      reference: c.reference ?? null,
      idempotency_key: c.idempotencyKey,
      balance_after: balance,
      earned,
      day: localDay(c.now, c.timeZone),
      created_at: c.now,
      expires_at: c.expiresAt ?? null,
    })
    .execute()
  await trx
    .updateTable('members')
    .set({ points_balance: balance, points_lifetime: lifetime, level: to.key })
    .where('id', '=', member.id)
    .execute()
  member.points_balance = balance
  member.points_lifetime = lifetime
  member.level = to.key
  return {
    status: 'applied' as const,
    delta,
    balance,
    lifetime,
    level: to,
    levelUp: to.min > from.min ? { from, to } : null,
  }
}

/**
 * Awards a rule's points, multiplied by the member's level, within the rule's cap. Call with the
 * member locked ({@link withMemberLocked}); `member` is updated in place.
 */
export async function awardRule(
  trx: Transaction<Database>,
  member: Member,
  c: LedgerChange,
): Promise<LedgerOutcome> {
  const level = levelByKey(member.level)
  const unchanged = { balance: member.points_balance, level }
  if (await alreadyApplied(trx, c)) return { status: 'duplicate', ...unchanged }
  const rule = await findRule(trx, c.appid, c.rule)
  if (!rule?.enabled) return { status: 'disabled', ...unchanged }
  if (rule.cap_count !== null && rule.cap_period !== null) {
    const today = localDay(c.now, c.timeZone)
    let q = trx
      .selectFrom('points_ledger')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('member_id', '=', member.id)
      .where('rule', '=', c.rule)
    if (rule.cap_period === 'day') q = q.where('day', '=', today)
    if (rule.cap_period === 'week') q = q.where('day', '>=', weekStart(today))
    const { n } = await q.executeTakeFirstOrThrow()
    if (Number(n) >= rule.cap_count) return { status: 'capped', ...unchanged }
  }
  return append(trx, member, c, rule.points * level.multiplier)
}

/**
 * Adds (grant) or removes (deduct, spend) an exact amount. A removal larger than the balance changes
 * nothing and answers `insufficient`. Call with the member locked.
 */
export async function applyDelta(
  trx: Transaction<Database>,
  member: Member,
  c: LedgerChange,
  delta: number,
): Promise<LedgerOutcome> {
  const unchanged = { balance: member.points_balance, level: levelByKey(member.level) }
  if (!Number.isInteger(delta) || delta === 0)
    throw new RangeError('delta must be a non-zero integer')
  if (await alreadyApplied(trx, c)) return { status: 'duplicate', ...unchanged }
  if (member.points_balance + delta < 0) return { status: 'insufficient', ...unchanged }
  return append(trx, member, c, delta)
}
