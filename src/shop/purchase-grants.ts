/**
 * Points that follow the money: what a paid order grants — `first_purchase` (once per member) and
 * `purchase` (its points per whole yuan paid), both × the member's level multiplier — is **frozen**
 * (the ledger's `frozen` state, `members.points_frozen`, shown as 待到账) until the refund window
 * (POINTS_FREEZE_DAYS) ends; the `release-points` job then releases it (it becomes spendable and
 * counts as earned, for levels). A refund that succeeds takes back the refunded share of the points:
 * cancelled while still frozen, deducted from the balance after release — never below zero, the
 * part already spent recorded as the grant's `points_shortfall` — and, after release, taken from
 * lifetime (and so the level and the weekly board) in full, spent or not: they were never earned
 * (the refund entry's `earned` is negative, migrations/0082). A refund of the whole order also
 * takes back the membership days it bought (never ending the membership before now).
 *
 * Each step is one SQL function (migrations/0035) that locks the member first (the house lock
 * order: member, then order, then the grant), so payments, releases and refunds of one member
 * serialize; ledger entries carry idempotency keys, and the grant's status decides once.
 * Invariant: per member, Σ available ledger deltas = `points_balance`, Σ frozen = `points_frozen`.
 */
import { type Kysely, sql, type Transaction } from 'kysely'
import { localDay, weekStart } from '../community/community-time.js'
import { LEVELS_JSON } from '../community/points-ledger.js'
import type { Database } from '../db/schema.js'

type Db = Kysely<Database> | Transaction<Database>

/** Days a purchase's points stay frozen when POINTS_FREEZE_DAYS is not set. */
export const DEFAULT_POINTS_FREEZE_DAYS = 7

/** What a payment granted: the frozen points, by rule (0 when disabled, capped or already had). */
export type PurchaseGrant =
  | { status: 'granted'; points: number; firstPurchase: number; purchase: number }
  | { status: 'duplicate' }

/**
 * At payment, in the payment's transaction (member already locked): records the order's grant and
 * freezes its points until `now + freezeDays`. Once per order: a second call is a `duplicate`.
 */
export async function grantPurchase(
  db: Db,
  g: {
    memberId: number
    orderId: number
    outTradeNo: string
    /** What was paid (fen): `purchase` earns its points per whole yuan of it. */
    paidFen: number
    /** Membership days the order bought (taken back if it is refunded in full). */
    membershipDays: number
    now: Date
    timeZone: string
    freezeDays: number
  },
): Promise<PurchaseGrant> {
  const day = localDay(g.now, g.timeZone)
  const releasesAt = new Date(g.now.getTime() + g.freezeDays * 86_400_000)
  const { rows } = await sql<{
    outcome: {
      status: 'granted' | 'duplicate'
      points?: number
      first_purchase?: number
      purchase?: number
    }
  }>`select quanzi_purchase_grant(${g.memberId}::bigint, ${g.orderId}::bigint,
    ${`order ${g.outTradeNo}`}::text, ${g.now}::timestamptz, ${day}::date,
    ${weekStart(day)}::date, ${g.timeZone}::text, ${releasesAt}::timestamptz,
    ${g.paidFen}::integer, ${g.membershipDays}::integer, ${LEVELS_JSON}::jsonb) as outcome`.execute(
    db,
  )
  const o = rows[0]!.outcome
  if (o.status === 'duplicate') return { status: 'duplicate' }
  return {
    status: 'granted',
    points: o.points ?? 0,
    firstPurchase: o.first_purchase ?? 0,
    purchase: o.purchase ?? 0,
  }
}

/** What a refund took back. */
export type PurchaseTakeBack =
  | { status: 'no_grant' }
  | {
      status: 'taken_back'
      /** Frozen points cancelled (the refund came within the window). */
      cancelled: number
      /** Released points deducted from the balance. */
      deducted: number
      /** Released points the balance could not cover (already spent): recorded on the grant. */
      shortfall: number
      /** Membership days taken back (a refund of the whole order). */
      membershipDays: number
    }

/**
 * When a refund becomes `success`, in its transaction, after the order's `refunded_fen` grew: takes
 * back the points' share of `refundedFen / paidFen` not taken back yet (all of them at a full
 * refund), and the membership days at a full refund. Orders without a grant (flagged, or paid
 * before migrations/0035) answer `no_grant`.
 */
export async function takeBackPurchase(
  db: Db,
  r: {
    orderId: number
    refundId: number
    outRefundNo: string
    /** The order's refunded total, this refund included. */
    refundedFen: number
    /** What was paid: refunds are against it. */
    paidFen: number
    now: Date
  },
): Promise<PurchaseTakeBack> {
  const { rows } = await sql<{
    outcome: {
      status: 'no_grant' | 'taken_back'
      cancelled?: number
      deducted?: number
      shortfall?: number
      membership_days?: number
    }
  }>`select quanzi_purchase_refund(${r.orderId}::bigint, ${r.refundId}::bigint,
    ${`refund ${r.outRefundNo}`}::text, ${r.now}::timestamptz, ${r.refundedFen}::integer,
    ${r.paidFen}::integer, ${LEVELS_JSON}::jsonb) as outcome`.execute(db)
  const o = rows[0]!.outcome
  if (o.status === 'no_grant') return { status: 'no_grant' }
  return {
    status: 'taken_back',
    cancelled: o.cancelled ?? 0,
    deducted: o.deducted ?? 0,
    shortfall: o.shortfall ?? 0,
    membershipDays: o.membership_days ?? 0,
  }
}

/**
 * A mini-program member linked to an OA follower (mp-link.ts, in its transaction): its frozen points
 * move as a frozen − entry and a frozen + entry (`idempotencyKey` on both: they are in two accounts),
 * and every grant of its orders — frozen, released or cancelled — follows the orders to the
 * follower, so the release and later refunds reach the follower. Its lifetime moves too (an
 * `mp_link_out` entry of earned −lifetime and an `mp_link_in` of +lifetime, both of delta 0, key
 * `lifetimeKey`; migrations/0082), and the follower's level with it: a purchase released before
 * the 绑定 counts for the follower's level as one released after it. Locks both members in id order.
 */
export async function moveGrants(
  db: Db,
  m: {
    fromMemberId: number
    toMemberId: number
    idempotencyKey: string
    /** The key of the lifetime's move (two entries of delta 0, in two accounts). */
    lifetimeKey: string
    reference: string
    now: Date
    timeZone: string
  },
): Promise<{ frozen: number; grants: number }> {
  const { rows } = await sql<{ moved: { frozen: number; grants: number } }>`
    select quanzi_purchase_grants_move(${m.fromMemberId}::bigint, ${m.toMemberId}::bigint,
      ${m.idempotencyKey}::text, ${m.reference}::text, ${m.now}::timestamptz,
      ${localDay(m.now, m.timeZone)}::date, ${m.lifetimeKey}::text,
      ${LEVELS_JSON}::jsonb) as moved`.execute(db)
  return rows[0]!.moved
}

/** What a release pass did. */
export interface ReleaseSummary {
  /** Members whose due grants were released. */
  members: number
  grants: number
  points: number
  levelUps: number
}

/**
 * Releases every frozen grant whose window has passed (`releases_at <= now`), set-based: each
 * statement claims up to `batch` members with due grants (`for update skip locked`, so processes
 * running at once share the work and a member busy elsewhere waits for the next pass) and releases
 * all of each one's due grants (`quanzi_points_release`). Repeats while batches come back full.
 */
export async function releaseFrozenPoints(
  db: Kysely<Database>,
  o: { now: Date; batch?: number },
): Promise<ReleaseSummary> {
  const batch = o.batch ?? 200
  const summary: ReleaseSummary = { members: 0, grants: 0, points: 0, levelUps: 0 }
  // Bounded: released members are not due any more, so a full batch means there may be more.
  for (let round = 0; round < 100; round++) {
    const { rows } = await sql<{
      outcome: { grants: number; points: number; level: string; previous_level: string }
    }>`with due as materialized (
        select m.id from members m
        where m.id in (select member_id from purchase_grants
          where points_status = 'frozen' and releases_at <= ${o.now}::timestamptz)
        order by m.id
        limit ${batch}
        for update of m skip locked
      )
      select quanzi_points_release(due.id, ${o.now}::timestamptz, ${LEVELS_JSON}::jsonb) as outcome
      from due`.execute(db)
    for (const { outcome } of rows) {
      if (outcome.grants === 0) continue
      summary.members++
      summary.grants += outcome.grants
      summary.points += outcome.points
      if (outcome.level !== outcome.previous_level) summary.levelUps++
    }
    if (rows.length < batch) break
  }
  return summary
}

/** A member's frozen points and when the next of them are released; null when nothing is frozen. */
export async function pendingPoints(
  db: Db,
  memberId: number,
): Promise<{ points: number; nextReleaseAt: Date } | null> {
  const row = await db
    .selectFrom('members')
    .select((eb) => [
      'points_frozen',
      eb
        .selectFrom('purchase_grants')
        .select((g) => g.fn.min('releases_at').as('at'))
        .where('member_id', '=', memberId)
        .where('points_status', '=', 'frozen')
        .where(sql<boolean>`points > points_taken_back`)
        .as('next_release_at'),
    ])
    .where('id', '=', memberId)
    .executeTakeFirst()
  if (!row || row.points_frozen <= 0 || !row.next_release_at) return null
  return { points: row.points_frozen, nextReleaseAt: new Date(row.next_release_at) }
}
