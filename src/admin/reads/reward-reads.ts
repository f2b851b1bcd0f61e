/**
 * 积分商城 as an operator reads it: redemptions (newest first, or the one a member quotes by
 * code) with their reward, member and cashback transfer; the cashback transfers by state; and
 * how many followers are at each level (the nightly rollup's `members.level`).
 */
import type { Kysely } from 'kysely'
import { dayText } from '../../analytics/series.js'
import { LEVELS } from '../../community/levels.js'
import type { Database, TransferState } from '../../db/schema.js'

/** Every transfer state, in the order a bill moves through them. */
export const TRANSFER_STATES: readonly TransferState[] = [
  'pending',
  'accepted',
  'processing',
  'wait_user_confirm',
  'transfering',
  'canceling',
  'success',
  'fail',
  'cancelled',
]

/** Whether `s` names a transfer state. */
export const isTransferState = (s: string): s is TransferState =>
  (TRANSFER_STATES as readonly string[]).includes(s)

const redemptionRows = (db: Kysely<Database>, appid: string) =>
  db
    .selectFrom('redemptions as r')
    .innerJoin('rewards as w', 'w.id', 'r.reward_id')
    .innerJoin('members as m', 'm.id', 'r.member_id')
    .leftJoin('transfers as x', 'x.redemption_id', 'r.id')
    .select([
      'r.id',
      'r.code',
      'r.cost',
      'r.status',
      'r.created_at',
      'r.cancelled_at',
      'w.code as rewardCode',
      'w.name as rewardName',
      'w.kind as rewardKind',
      'm.openid',
      'm.appid as memberAppid',
      'm.display_name as displayName',
      'x.state as transferState',
    ])
    .where('r.appid', '=', appid)

/** A redemption as the console lists it. */
export type RedemptionRow = Awaited<ReturnType<typeof listRedemptions>>[number]

/** One page of an account's redemptions, newest first, older than redemption `before` if given. */
export function listRedemptions(
  db: Kysely<Database>,
  appid: string,
  page: { limit: number; before?: number },
) {
  let q = redemptionRows(db, appid)
  if (page.before) q = q.where('r.id', '<', page.before)
  return q.orderBy('r.id', 'desc').limit(page.limit).execute()
}

/** The redemption a member quotes: its code exactly (codes are upper case), or undefined. */
export function redemptionByCode(db: Kysely<Database>, appid: string, code: string) {
  return redemptionRows(db, appid)
    .where('r.code', '=', code.trim().toUpperCase())
    .executeTakeFirst()
}

/** Redemption `id` of the account, or undefined. */
export function redemptionById(db: Kysely<Database>, appid: string, id: number) {
  return redemptionRows(db, appid).where('r.id', '=', id).executeTakeFirst()
}

/** The ledger entry that gave a cancelled redemption's points back, if one did. */
export function redemptionRefund(db: Kysely<Database>, appid: string, id: number) {
  return db
    .selectFrom('points_ledger')
    .select(['delta', 'balance_after as balanceAfter', 'created_at'])
    .where('appid', '=', appid)
    .where('idempotency_key', '=', `refund:${id}`)
    .executeTakeFirst()
}

/** One page of an account's cashback transfers, newest first, in one state if asked. */
export function listTransfers(
  db: Kysely<Database>,
  appid: string,
  page: { limit: number; before?: number; state?: TransferState },
) {
  let q = db
    .selectFrom('transfers as x')
    .innerJoin('redemptions as r', 'r.id', 'x.redemption_id')
    .innerJoin('members as m', 'm.id', 'x.member_id')
    .select([
      'x.id',
      'x.out_bill_no as outBillNo',
      'x.amount_fen as amountFen',
      'x.state',
      'x.attempts',
      'x.fail_reason as failReason',
      'x.error',
      'x.created_at',
      'x.updated_at',
      'x.settled_at',
      'r.code as redemptionCode',
      'm.openid',
      'm.appid as memberAppid',
    ])
    .where('x.appid', '=', appid)
  if (page.state) q = q.where('x.state', '=', page.state)
  if (page.before) q = q.where('x.id', '<', page.before)
  return q.orderBy('x.id', 'desc').limit(page.limit).execute()
}

/** Followers per level, every level listed (zero when none), and the day the count is from. */
export interface LevelDistribution {
  /** The last built day of the rollup, or null when counted live (no rollup yet). */
  day: string | null
  counts: { key: (typeof LEVELS)[number]['key']; members: number }[]
}

/**
 * Subscribed followers per level: the last built day's `members.level` rollup, or — before the
 * first nightly build — a live count with the rollup's own definition.
 */
export async function levelDistribution(
  db: Kysely<Database>,
  appid: string,
): Promise<LevelDistribution> {
  const last = await db
    .selectFrom('analytics_daily')
    .select((eb) => eb.fn.max('day').as('day'))
    .where('appid', '=', appid)
    .where('metric', '=', 'members.level')
    .executeTakeFirst()
  let day: string | null = null
  let rows: { level: string; n: number }[]
  if (last?.day) {
    day = dayText(last.day)
    rows = (
      await db
        .selectFrom('analytics_daily')
        .select(['dim', 'value'])
        .where('appid', '=', appid)
        .where('metric', '=', 'members.level')
        .where('day', '=', day)
        .execute()
    ).map((r) => ({ level: r.dim, n: Number(r.value) }))
  } else {
    rows = (
      await db
        .selectFrom('members')
        .select(['level', (eb) => eb.fn.countAll<string>().as('n')])
        .where('appid', '=', appid)
        .where('subscribed', '=', true)
        .groupBy('level')
        .execute()
    ).map((r) => ({ level: r.level, n: Number(r.n) }))
  }
  const by = new Map(rows.map((r) => [r.level, r.n]))
  return { day, counts: LEVELS.map((l) => ({ key: l.key, members: by.get(l.key) ?? 0 })) }
}
