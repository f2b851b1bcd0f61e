/**
 * Rewards: a per-account catalog with stock and per-member limits; redeeming spends points through
 * the ledger and issues a code, cancelling returns them. Locks are always taken member first, then
 * reward, so redemptions and cancellations never deadlock; stock can never go below zero (row lock
 * plus a CHECK constraint).
 */
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.js'
import { randomToken } from '../wechat/crypto.js'
import { applyDelta, withMemberLocked } from './points-ledger.js'

/** The catalog a new account starts with (from the reference operations plan). */
export const DEFAULT_REWARDS = [
  { code: 1, name: '10元优惠券', cost: 100, stock: 1000, per_member_limit: 5 },
  { code: 2, name: '精美礼品', cost: 500, stock: 100, per_member_limit: 1 },
  { code: 3, name: 'VIP 会员 1 个月', cost: 1000, stock: 100, per_member_limit: 3 },
  { code: 4, name: '50元返现', cost: 5000, stock: 50, per_member_limit: 1 },
]

/** Seeds the default catalog for an account that has none (safe to call concurrently). */
export async function ensureDefaultRewards(db: Kysely<Database>, appid: string, now: Date) {
  const any = await db
    .selectFrom('rewards')
    .select('id')
    .where('appid', '=', appid)
    .limit(1)
    .executeTakeFirst()
  if (any) return
  await db
    .insertInto('rewards')
    .values(DEFAULT_REWARDS.map((r) => ({ ...r, appid, created_at: now })))
    .onConflict((oc) => oc.columns(['appid', 'code']).doNothing())
    .execute()
}

/** The enabled rewards of an account, by code. */
export function listRewards(db: Kysely<Database>, appid: string) {
  return db
    .selectFrom('rewards')
    .select(['id', 'code', 'name', 'cost', 'stock', 'per_member_limit'])
    .where('appid', '=', appid)
    .where('enabled', '=', true)
    .orderBy('code')
    .execute()
}

/** What a redemption did. */
export type RedeemResult =
  | {
      status: 'redeemed'
      redemptionId: number
      code: string
      name: string
      cost: number
      balance: number
    }
  | { status: 'not_found' }
  | { status: 'out_of_stock'; name: string }
  | { status: 'limit_reached'; name: string; limit: number }
  | { status: 'insufficient'; name: string; cost: number; balance: number }

/** Redeems reward `code` for a member. */
export async function redeem(
  db: Kysely<Database>,
  q: { appid: string; memberId: number; code: number; now: Date; timeZone: string },
): Promise<RedeemResult> {
  return withMemberLocked(db, q.memberId, async (trx, member) => {
    const reward = await trx
      .selectFrom('rewards')
      .selectAll()
      .where('appid', '=', q.appid)
      .where('code', '=', q.code)
      .where('enabled', '=', true)
      .forUpdate()
      .executeTakeFirst()
    if (!reward) return { status: 'not_found' }
    if (reward.stock !== null && reward.stock <= 0)
      return { status: 'out_of_stock', name: reward.name }
    if (reward.per_member_limit !== null) {
      const { n } = await trx
        .selectFrom('redemptions')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('member_id', '=', member.id)
        .where('reward_id', '=', reward.id)
        .where('status', '=', 'issued')
        .executeTakeFirstOrThrow()
      if (Number(n) >= reward.per_member_limit) {
        return { status: 'limit_reached', name: reward.name, limit: reward.per_member_limit }
      }
    }
    if (member.points_balance < reward.cost) {
      return {
        status: 'insufficient',
        name: reward.name,
        cost: reward.cost,
        balance: member.points_balance,
      }
    }
    const code = randomToken(10).toUpperCase()
    const { id } = await trx
      .insertInto('redemptions')
      .values({
        appid: q.appid,
        member_id: member.id,
        reward_id: reward.id,
        cost: reward.cost,
        code,
        status: 'issued',
        created_at: q.now,
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    const spent = await applyDelta(
      trx,
      member,
      {
        appid: q.appid,
        memberId: member.id,
        rule: 'redeem',
        idempotencyKey: `redeem:${id}`,
        reference: `reward ${reward.code}`,
        now: q.now,
        timeZone: q.timeZone,
      },
      -reward.cost,
    )
    if (spent.status !== 'applied') throw new Error(`redemption ${id}: ledger said ${spent.status}`)
    if (reward.stock !== null) {
      await trx
        .updateTable('rewards')
        .set({ stock: reward.stock - 1 })
        .where('id', '=', reward.id)
        .execute()
    }
    return {
      status: 'redeemed',
      redemptionId: id,
      code,
      name: reward.name,
      cost: reward.cost,
      balance: spent.balance,
    }
  })
}

/** Cancels an issued redemption: the points come back (not as earnings) and the stock is restored. */
export async function cancelRedemption(
  db: Kysely<Database>,
  q: { appid: string; redemptionId: number; now: Date; timeZone: string },
): Promise<'cancelled' | 'not_found' | 'already_cancelled'> {
  const found = await db
    .selectFrom('redemptions')
    .select('member_id')
    .where('appid', '=', q.appid)
    .where('id', '=', q.redemptionId)
    .executeTakeFirst()
  if (!found) return 'not_found'
  return withMemberLocked(db, found.member_id, async (trx, member) => {
    const r = await trx
      .updateTable('redemptions')
      .set({ status: 'cancelled', cancelled_at: q.now })
      .where('id', '=', q.redemptionId)
      .where('status', '=', 'issued')
      .returning(['reward_id', 'cost'])
      .executeTakeFirst()
    if (!r) return 'already_cancelled'
    await applyDelta(
      trx,
      member,
      {
        appid: q.appid,
        memberId: member.id,
        rule: 'redeem_refund',
        idempotencyKey: `refund:${q.redemptionId}`,
        reference: `redemption ${q.redemptionId}`,
        now: q.now,
        timeZone: q.timeZone,
        earned: false,
      },
      r.cost,
    )
    await trx
      .updateTable('rewards')
      .set((eb) => ({ stock: eb('stock', '+', 1) }))
      .where('id', '=', r.reward_id)
      .where('stock', 'is not', null)
      .execute()
    return 'cancelled'
  })
}
