/**
 * Rewards: a per-account catalog with stock and per-member limits; redeeming spends points through
 * the ledger and issues a code, cancelling returns them. Locks are always taken member first, then
 * reward, so redemptions and cancellations never deadlock; stock can never go below zero (row lock
 * plus a CHECK constraint). A `cashback` reward also records, in the same transaction, a transfer
 * of its amount to the member's WeChat wallet (src/shop/transfers.ts sends it); a transfer that
 * fails or is cancelled cancels the redemption the same way an operator would. A redemption made
 * for a message carries the message's key (unique per account, like the ledger's idempotency keys):
 * the message handled again — a bridge event or WeCom callback its sender retries after a later
 * step failed — gets the first redemption's answer, and nothing is spent or taken twice.
 */
import { type Kysely, sql, type Transaction } from 'kysely'
import type { Database, Member } from '../db/schema.js'
import { recordTransfer } from '../shop/transfer-bills.js'
import { randomToken } from '../wechat/crypto.js'
import { applyDelta, type LedgerOutcome, withMemberLocked } from './points-ledger.js'

/** The catalog a new account starts with (from the reference operations plan). */
export const DEFAULT_REWARDS = [
  { code: 1, name: '10元优惠券', cost: 100, stock: 1000, per_member_limit: 5 },
  { code: 2, name: '精美礼品', cost: 500, stock: 100, per_member_limit: 1 },
  { code: 3, name: 'VIP 会员 1 个月', cost: 1000, stock: 100, per_member_limit: 3 },
  { code: 4, name: '50元返现', cost: 5000, stock: 50, per_member_limit: 1, cashback_fen: 5000 },
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
    .values(
      DEFAULT_REWARDS.map(({ cashback_fen, ...r }) => ({
        ...r,
        appid,
        created_at: now,
        ...(cashback_fen ? { kind: 'cashback' as const, cashback_fen } : {}),
      })),
    )
    .onConflict((oc) => oc.columns(['appid', 'code']).doNothing())
    .execute()
}

/** The enabled rewards of an account, by code. */
export function listRewards(db: Kysely<Database>, appid: string) {
  return db
    .selectFrom('rewards')
    .select(['id', 'code', 'name', 'cost', 'stock', 'per_member_limit', 'kind', 'cashback_fen'])
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
      /** Cashback rewards: the transfer recorded with the redemption (sent after the commit). */
      cashback?: { amountFen: number; outBillNo: string }
    }
  | { status: 'not_found' }
  /** A cashback reward, but no mini program pays (the shop is not configured). */
  | { status: 'unavailable'; name: string }
  /** A cashback reward, but the member has never signed in to the mini program (no payee). */
  | { status: 'needs_mini_program'; name: string }
  | { status: 'out_of_stock'; name: string }
  | { status: 'limit_reached'; name: string; limit: number }
  | { status: 'insufficient'; name: string; cost: number; balance: number }
  /**
   * The redemption this request made before was cancelled since (its cashback transfer failed, or
   * an operator cancelled it; the points came back): the request's retry is told so.
   */
  | { status: 'cancelled'; name: string; cost: number }

/**
 * Redeems reward `code` for a member. A cashback reward is paid to the member's openid under the
 * mini program (`miniProgram`, the one WeChat Pay's merchant is bound to), so the member must have
 * signed in there once (as this member, or under their unionid). With `requestKey` (what asked for
 * it: a message), a redemption already made under that key is answered again as it was first —
 * same code, balance and cashback bill — and nothing changes; only a redemption is remembered, so
 * a refusal (insufficient, out of stock …) is decided afresh.
 * @example redeem(db, { appid, memberId, code: 1, now, timeZone, requestKey: `msg:oa:${to}:m:${msgId}` })
 */
export async function redeem(
  db: Kysely<Database>,
  q: {
    appid: string
    memberId: number
    code: number
    now: Date
    timeZone: string
    miniProgram?: { appid: string }
    /** Unique per account: the redemption made for one request (a message) is made once. */
    requestKey?: string
  },
): Promise<RedeemResult> {
  return withMemberLocked(db, q.memberId, async (trx, member) => {
    // The member's lock orders attempts for one message: a later one sees the earlier one's row.
    const made = q.requestKey && (await redeemedFor(trx, member, q.appid, q.requestKey))
    if (made) return made
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
    let payee: { appid: string; openid: string } | undefined
    if (reward.kind === 'cashback') {
      if (!q.miniProgram) return { status: 'unavailable', name: reward.name }
      // The member's own sign-in, else one under their unionid (the same person, not merged
      // because the follower's unionid was learnt after that sign-in).
      const unionid = member.unionid
      const mp = await trx
        .selectFrom('mp_users')
        .select('openid')
        .where('appid', '=', q.miniProgram.appid)
        .where((eb) =>
          unionid
            ? eb.or([eb('member_id', '=', member.id), eb('unionid', '=', unionid)])
            : eb('member_id', '=', member.id),
        )
        .orderBy((eb) => eb.case().when('member_id', '=', member.id).then(0).else(1).end())
        .orderBy('created_at')
        .limit(1)
        .executeTakeFirst()
      if (!mp) return { status: 'needs_mini_program', name: reward.name }
      payee = { appid: q.miniProgram.appid, openid: mp.openid }
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
        request_key: q.requestKey ?? null,
        stock_taken: reward.stock !== null,
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
    // Recorded with the spend, no network inside: the transfer queue sends it after the commit.
    const cashback =
      payee && reward.cashback_fen !== null
        ? {
            amountFen: reward.cashback_fen,
            outBillNo: await recordTransfer(trx, {
              appid: q.appid,
              memberId: member.id,
              redemptionId: id,
              payAppid: payee.appid,
              openid: payee.openid,
              amountFen: reward.cashback_fen,
              now: q.now,
            }),
          }
        : undefined
    return {
      status: 'redeemed',
      redemptionId: id,
      code,
      name: reward.name,
      cost: reward.cost,
      balance: spent.balance,
      ...(cashback ? { cashback } : {}),
    }
  })
}

/**
 * The answer of the redemption made under `requestKey`, as {@link redeem} first gave it (the
 * balance its ledger entry left, its cashback bill), or undefined when none was.
 */
async function redeemedFor(
  trx: Transaction<Database>,
  member: Member,
  appid: string,
  requestKey: string,
): Promise<RedeemResult | undefined> {
  const row = await trx
    .selectFrom('redemptions as r')
    .innerJoin('rewards as w', 'w.id', 'r.reward_id')
    .leftJoin('points_ledger as l', (j) =>
      j
        .onRef('l.appid', '=', 'r.appid')
        .on('l.idempotency_key', '=', sql<string>`'redeem:' || r.id`),
    )
    .leftJoin('transfers as t', 't.redemption_id', 'r.id')
    .select([
      'r.id',
      'r.status',
      'r.code',
      'r.cost',
      'w.name',
      'l.balance_after',
      't.amount_fen',
      't.out_bill_no',
    ])
    .where('r.appid', '=', appid)
    .where('r.request_key', '=', requestKey)
    .executeTakeFirst()
  if (!row) return undefined
  if (row.status === 'cancelled') return { status: 'cancelled', name: row.name, cost: row.cost }
  return {
    status: 'redeemed',
    redemptionId: row.id,
    code: row.code,
    name: row.name,
    cost: row.cost,
    balance: row.balance_after ?? member.points_balance,
    ...(row.amount_fen !== null && row.out_bill_no !== null
      ? { cashback: { amountFen: row.amount_fen, outBillNo: row.out_bill_no } }
      : {}),
  }
}

/**
 * Cancels an issued redemption: the points come back (not as earnings) and the stock is restored.
 * A cashback whose transfer may still pay out is not cancelled here (`transfer_in_progress`: cancel
 * the transfer, src/shop/transfers.ts, and its end cancels the redemption), nor one paid out.
 */
export async function cancelRedemption(
  db: Kysely<Database>,
  q: { appid: string; redemptionId: number; now: Date; timeZone: string },
): Promise<'cancelled' | 'not_found' | 'already_cancelled' | 'transfer_in_progress' | 'paid_out'> {
  const found = await db
    .selectFrom('redemptions')
    .select('member_id')
    .where('appid', '=', q.appid)
    .where('id', '=', q.redemptionId)
    .executeTakeFirst()
  if (!found) return 'not_found'
  return withMemberLocked(db, found.member_id, async (trx, member) => {
    const transfer = await trx
      .selectFrom('transfers')
      .select('state')
      .where('redemption_id', '=', q.redemptionId)
      .executeTakeFirst()
    if (transfer?.state === 'success') return 'paid_out'
    if (transfer && transfer.state !== 'fail' && transfer.state !== 'cancelled')
      return 'transfer_in_progress'
    return (await returnRedemption(trx, member, q)) ? 'cancelled' : 'already_cancelled'
  })
}

/**
 * The cancellation itself, inside the caller's transaction with the member locked: issued →
 * cancelled, the points back through the ledger (key `refund:<redemption id>`, so once ever) into
 * the lots they were spent from ({@link backToLots}), the unit of stock it took restored
 * (`stock_taken`: once, with the status change). Null when the redemption was not issued (already
 * cancelled).
 */
export async function returnRedemption(
  trx: Transaction<Database>,
  member: Member,
  q: { appid: string; redemptionId: number; now: Date; timeZone: string },
): Promise<LedgerOutcome | null> {
  const r = await trx
    .updateTable('redemptions')
    .set({ status: 'cancelled', cancelled_at: q.now })
    .where('id', '=', q.redemptionId)
    .where('status', '=', 'issued')
    .returning(['reward_id', 'cost', 'stock_taken'])
    .executeTakeFirst()
  if (!r) return null
  const back = await applyDelta(
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
  if (back.status === 'applied') await backToLots(trx, q.appid, q.redemptionId)
  // Only a unit it took (a reward redeemed while unlimited, limited since, gets none it never gave).
  if (r.stock_taken)
    await trx
      .updateTable('rewards')
      .set((eb) => ({ stock: eb('stock', '+', 1) }))
      .where('id', '=', r.reward_id)
      .where('stock', 'is not', null)
      .execute()
  return back
}

/**
 * Points a cancelled redemption gave back keep the expiry they had: the lots the spend took them from
 * (`points_lot_uses`, recorded by the lots trigger: migrations/0082) get them back, and the lot the
 * refund entry made gives them up — Σ lots' remaining stays the balance. Otherwise returning points
 * would start their expiry over (redeem before they expire, cancel, repeat). A lot past its expiry
 * meanwhile expires at the next run of the job, as it would have. A redemption from before
 * migrations/0082 has no record: its points stay a new lot. Inside the caller's transaction, the
 * member locked.
 */
async function backToLots(trx: Transaction<Database>, appid: string, redemptionId: number) {
  await sql`with spend as (
      select id from points_ledger where appid = ${appid} and idempotency_key = ${`redeem:${redemptionId}`}
    ), uses as (
      delete from points_lot_uses u using spend where u.spend_id = spend.id
      returning u.lot_id, u.points
    ), restored as (
      update points_lots p set remaining = p.remaining + uses.points
      from uses where p.ledger_id = uses.lot_id
      returning uses.points
    )
    update points_lots set remaining = remaining - (select coalesce(sum(points), 0) from restored)
    where ledger_id = (select id from points_ledger
      where appid = ${appid} and idempotency_key = ${`refund:${redemptionId}`})`.execute(trx)
}
