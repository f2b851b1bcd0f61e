/** The shop's group buys with their progress: seats joined and paid of those needed, the deadline. */
import type { Kysely } from 'kysely'
import type { Database, GroupBuysTable } from '../../db/schema.js'

export type GroupBuyStatus = GroupBuysTable['status']
export const GROUP_BUY_STATUSES: GroupBuyStatus[] = ['open', 'succeeded', 'failed']

/** A page of the account's group buys, newest first, of one status, older than the id `before`. */
export async function pageGroupBuys(
  db: Kysely<Database>,
  appid: string,
  q: { status?: GroupBuyStatus; before?: number; limit: number },
) {
  let query = db
    .selectFrom('group_buys as g')
    .innerJoin('products as p', 'p.id', 'g.product_id')
    .leftJoin('members as m', 'm.id', 'g.leader_member_id')
    .selectAll('g')
    .select([
      'p.sku',
      'p.name as product_name',
      'm.openid as leader_openid',
      'm.appid as leader_appid',
      'm.display_name as leader_name',
    ])
    .where('g.appid', '=', appid)
    .orderBy('g.id', 'desc')
    .limit(q.limit + 1)
  if (q.status) query = query.where('g.status', '=', q.status)
  if (q.before) query = query.where('g.id', '<', q.before)
  const rows = await query.execute()
  return { groupBuys: rows.slice(0, q.limit), more: rows.length > q.limit }
}
