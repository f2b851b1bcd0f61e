/**
 * The sold-out fast path of order creation. In a flash sale's rush nearly every request comes after
 * the last unit went: the slow path (orders.ts, `reserveOrder`) answers each of them `sold_out`
 * only after a transaction that locks the buyer's link and member row. Here one read, outside any
 * transaction and taking no lock, answers the same — but only when what it read proves that the
 * slow path, run on the same data, would answer exactly that.
 *
 * The slow path refuses, in this order: a client key already used (→ the buyer's order back, or
 * `client_key_reused`), no such product, not on sale (disabled, not started, ended), the
 * per-member limit reached, then `sold_out` when no unit is left. So the read proves `sold_out`
 * only when, for the member the mini-program user is linked to now (their mp_users row, else the
 * session's member — as `linkedMemberId`), the member exists, the product's stock is 0, it is on
 * sale at `now`, the buyer holds fewer pending or paid orders of it than its limit, and no order of
 * theirs carries the client key. Anything else — a unit left, a retry with a key that names an
 * order, a window not open — goes to the slow path, which stays the authority.
 *
 * One statement sees one snapshot, and everything it reads changes together: an order takes its
 * unit in the transaction that inserts it, a close gives it back in the one that closes it, and a
 * 绑定 moves the link with the orders. So a retry of the buyer who took the last unit sees their
 * order (→ slow path) or the unit still there (→ slow path), never the stock gone without the
 * order; and a unit given back is seen as stock (→ slow path). The answer is the slow path's at
 * the instant of the snapshot, which lies within the request.
 */
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.js'
import { onSale, type ShopSettings } from './catalog.js'

/** The order request the fast path reads for (createOrder's). */
export interface SoldOutQuestion {
  /** The member the session read; the user's link row, when there is one, says who buys. */
  memberId: number
  mpOpenid: string
  sku: string
  clientKey?: string
  now: Date
}

/**
 * True when one read proves that creating this order would be refused `sold_out`; false when it
 * proves nothing (ask the slow path).
 * @example if (await provenSoldOut(db, shop.settings, request)) return { status: 'sold_out' }
 */
export async function provenSoldOut(
  db: Kysely<Database>,
  s: Pick<ShopSettings, 'appid' | 'mpAppid'>,
  r: SoldOutQuestion,
): Promise<boolean> {
  const row = await db
    .with('buyer', (qb) =>
      qb.selectNoFrom((eb) =>
        eb.fn
          .coalesce(
            eb
              .selectFrom('mp_users')
              .select('member_id')
              .where('appid', '=', s.mpAppid)
              .where('openid', '=', r.mpOpenid),
            eb.val(r.memberId),
          )
          .as('id'),
      ),
    )
    .selectFrom(['products', 'buyer'])
    .selectAll('products')
    .select((eb) => [
      eb
        .exists(
          eb.selectFrom('members').select('members.id').whereRef('members.id', '=', 'buyer.id'),
        )
        .as('member_found'),
      eb
        .selectFrom('orders')
        .select((o) => o.fn.countAll<number>().as('n'))
        .whereRef('orders.member_id', '=', 'buyer.id')
        .whereRef('orders.product_id', '=', 'products.id')
        .where('orders.status', 'in', ['pending', 'paid'])
        .as('held'),
      r.clientKey === undefined
        ? eb.lit(false).as('keyed')
        : eb
            .exists(
              eb
                .selectFrom('orders')
                .select('orders.id')
                .whereRef('orders.member_id', '=', 'buyer.id')
                .where('orders.client_key', '=', r.clientKey),
            )
            .as('keyed'),
    ])
    .where('products.appid', '=', s.appid)
    .where('products.sku', '=', r.sku)
    .where('products.stock', '=', 0)
    .executeTakeFirst()
  if (!row?.member_found || row.keyed) return false
  if (onSale(row, r.now) !== 'ok') return false
  return row.per_member_limit === null || Number(row.held) < row.per_member_limit
}
