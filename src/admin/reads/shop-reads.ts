/** The shop as an operator sees it: the catalog, orders, points refunds could not take back. */
import type { Kysely } from 'kysely'
import type { Database, OrderStatus } from '../../db/schema.js'
import { ensureDefaultProducts } from '../../shop/catalog.js'
import type { Shop } from '../../shop/maintenance.js'

/** The order statuses an operator may filter by. */
export const ORDER_STATUSES: OrderStatus[] = ['pending', 'paid', 'closed', 'refunded', 'flagged']

/** The shop's products in order of creation (seeded with the defaults). */
export async function listProducts(db: Kysely<Database>, shop: Shop, now: Date) {
  await ensureDefaultProducts(db, shop.settings, now)
  return db
    .selectFrom('products')
    .selectAll()
    .where('appid', '=', shop.settings.appid)
    .orderBy('id')
    .execute()
}

/** The shop's orders, newest first, optionally of one status. */
export async function listOrders(
  db: Kysely<Database>,
  shop: Shop,
  q: { status?: OrderStatus; limit: number },
) {
  let query = db
    .selectFrom('orders')
    .selectAll()
    .where('appid', '=', shop.settings.appid)
    .orderBy('id', 'desc')
    .limit(q.limit)
  if (q.status) query = query.where('status', '=', q.status)
  return query.execute()
}

/**
 * Refunds after release whose points the member had already spent: what could not be taken back,
 * newest first.
 */
export async function pointsShortfalls(db: Kysely<Database>, shop: Shop, limit: number) {
  const rows = await db
    .selectFrom('purchase_grants as g')
    .innerJoin('orders as o', 'o.id', 'g.order_id')
    .innerJoin('members as m', 'm.id', 'g.member_id')
    .select([
      'o.out_trade_no',
      'm.openid',
      'g.points',
      'g.points_taken_back',
      'g.points_shortfall',
      'g.released_at',
      'g.updated_at',
    ])
    .where('o.appid', '=', shop.settings.appid)
    .where('g.points_shortfall', '>', 0)
    .orderBy('g.updated_at', 'desc')
    .orderBy('g.order_id', 'desc')
    .limit(limit)
    .execute()
  return rows.map((r) => ({
    outTradeNo: r.out_trade_no,
    openid: r.openid,
    points: r.points,
    takenBack: r.points_taken_back,
    shortfall: r.points_shortfall,
    releasedAt: r.released_at,
    updatedAt: r.updated_at,
  }))
}
