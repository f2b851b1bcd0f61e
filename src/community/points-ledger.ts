/**
 * The points ledger: append-only entries, each with a unique idempotency key, delta, rule, reference
 * and balance_after. Every change is one call of the SQL function `quanzi_points_change`
 * (migrations/0007), which locks the member row (`select … for no key update`, migrations/0074)
 * and appends the entry and updates the cached balance in the same statement — so concurrent
 * awards for one member serialize, a repeated idempotency key changes nothing, caps hold, and no
 * spend makes a balance negative (also enforced by CHECK constraints). One round trip per change.
 *
 * Lock strength: a writer that locks a member only to serialize its own changes to that member
 * (the ledger functions, the check-in and make-up, {@link lockMember}) takes `FOR NO KEY UPDATE`:
 * it excludes every other writer of the member (it conflicts with itself and with `FOR UPDATE`),
 * but not the `FOR KEY SHARE` a foreign-key check takes on the member for a row that references
 * it — so a check-in does not queue behind the nightly build inserting that member's
 * `member_days` row (rollup.ts, seconds at a million members). `FOR UPDATE` is kept where rows
 * keyed on the member move or the member goes: a 绑定 (mp-link.ts) must exclude those inserts
 * ({@link keyShareMember}).
 */
import { type Kysely, sql, type Transaction } from 'kysely'
import type { Database, Member } from '../db/schema.js'
import { localDay, weekStart } from './community-time.js'
import { LEVELS, type Level, levelByKey } from './levels.js'

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
  return db.transaction().execute(async (trx) => fn(trx, await lockMember(trx, memberId)))
}

/**
 * The member's row held `for key share` until the caller's transaction ends, before a write that
 * inserts a row keyed on the member which a 绑定 may move onto them (a check-in reminder, a share
 * link: src/shop/member-moves.ts). The 绑定 holds both members `for update` from before it moves
 * anything until it commits, so the insert comes entirely before it or entirely after it — then,
 * on its unique key, onto what the 绑定 moved. Without it the insert's foreign-key check takes
 * the same lock, but after the insert has taken its key: the 绑定 moving a row onto that key waits
 * for the insert, which waits for the 绑定, and PostgreSQL aborts one of them as a deadlock.
 */
export async function keyShareMember(trx: Kysely<Database>, memberId: number): Promise<void> {
  await trx.selectFrom('members').select('id').where('id', '=', memberId).forKeyShare().execute()
}

/**
 * The member's row, locked until the caller's transaction ends (`select … for no key update`:
 * other writers of the member wait, a foreign-key check of a row referencing it does not — see
 * the module comment). Not for a 绑定 moving rows keyed on the member: it takes `for update`.
 */
export async function lockMember(trx: Transaction<Database>, memberId: number): Promise<Member> {
  return trx
    .selectFrom('members')
    .selectAll()
    .where('id', '=', memberId)
    .forNoKeyUpdate()
    .executeTakeFirstOrThrow()
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

/** The level table as the SQL functions take it (`p_levels`). */
export const LEVELS_JSON = JSON.stringify(
  LEVELS.map(({ key, min, multiplier }) => ({ key, min, multiplier })),
)

/** A ledger outcome as the SQL functions return it (jsonb). */
export interface RawLedgerOutcome {
  status: LedgerOutcome['status']
  delta?: number
  balance: number
  lifetime: number
  level: string
  previous_level?: string
}

/** Turns the SQL function's answer into a {@link LedgerOutcome}. */
export function ledgerOutcome(raw: RawLedgerOutcome): LedgerOutcome {
  const level = levelByKey(raw.level)
  if (raw.status !== 'applied') return { status: raw.status, balance: raw.balance, level }
  const from = levelByKey(raw.previous_level ?? raw.level)
  return {
    status: 'applied',
    delta: raw.delta ?? 0,
    balance: raw.balance,
    lifetime: raw.lifetime,
    level,
    levelUp: level.min > from.min ? { from, to: level } : null,
  }
}

/**
 * One ledger change in one statement (`quanzi_points_change`, migrations/0007): locks the member,
 * checks the idempotency key, applies the rule and its cap (delta null) or the exact delta, appends
 * the entry and updates the cached balance and level. Atomic on its own; inside a transaction it
 * joins it.
 */
export async function changePoints(
  db: Db,
  c: LedgerChange,
  delta: number | null,
): Promise<LedgerOutcome> {
  if (delta !== null && (!Number.isInteger(delta) || delta === 0))
    throw new RangeError('delta must be a non-zero integer')
  const day = localDay(c.now, c.timeZone)
  const { rows } = await sql<{ outcome: RawLedgerOutcome }>`select quanzi_points_change(
    ${c.appid}::text, ${c.memberId}::bigint, ${c.rule}::text, ${c.idempotencyKey}::text,
    ${c.reference ?? null}::text, ${c.now}::timestamptz, ${day}::date, ${weekStart(day)}::date,
    ${delta}::integer, ${c.earned !== false}::boolean, ${c.expiresAt ?? null}::timestamptz,
    ${LEVELS_JSON}::jsonb) as outcome`.execute(db)
  return ledgerOutcome(rows[0]!.outcome)
}

/** Copies an applied outcome onto the caller's member row. */
function track(member: Member, outcome: LedgerOutcome): LedgerOutcome {
  if (outcome.status === 'applied') {
    member.points_balance = outcome.balance
    member.points_lifetime = outcome.lifetime
    member.level = outcome.level.key
  }
  return outcome
}

/**
 * Awards a rule's points, multiplied by the member's level, within the rule's cap. `member` (locked
 * by {@link withMemberLocked} or not) is updated in place.
 */
export async function awardRule(db: Db, member: Member, c: LedgerChange): Promise<LedgerOutcome> {
  return track(member, await changePoints(db, { ...c, memberId: member.id }, null))
}

/**
 * Adds (grant) or removes (deduct, spend) an exact amount. A removal larger than the balance changes
 * nothing and answers `insufficient`. `member` is updated in place.
 */
export async function applyDelta(
  db: Db,
  member: Member,
  c: LedgerChange,
  delta: number,
): Promise<LedgerOutcome> {
  return track(member, await changePoints(db, { ...c, memberId: member.id }, delta))
}
