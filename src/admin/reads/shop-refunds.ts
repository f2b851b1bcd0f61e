/**
 * Refunds and where each stands in the refund queue (migrations 0025, 0029): waiting to be sent,
 * retrying after WeChat Pay refused (attempts, next try, last error), accepted and polled until
 * settled, settled, or needing an operator (failed after every try, or abnormal).
 */
import type { Kysely, Selectable } from 'kysely'
import type { Database, RefundsTable } from '../../db/schema.js'

type Refund = Selectable<RefundsTable>

/** Where a refund stands in the queue. */
export type RefundQueueState =
  | 'queued'
  | 'retrying'
  | 'processing'
  | 'success'
  | 'closed'
  | 'failed'
  | 'abnormal'

/** The queue state of a refund row. */
export function refundQueueState(r: Pick<Refund, 'status' | 'attempts'>): RefundQueueState {
  if (r.status === 'requested') return r.attempts > 0 ? 'retrying' : 'queued'
  return r.status
}

/** The filters of the refund list, each a set of statuses. */
export const REFUND_VIEWS = {
  all: undefined,
  open: ['requested', 'processing'],
  attention: ['failed', 'abnormal'],
  done: ['success', 'closed'],
} as const satisfies Record<string, readonly Refund['status'][] | undefined>

export type RefundView = keyof typeof REFUND_VIEWS

/** A page of the account's refunds, newest first, older than the id `before`. */
export async function pageRefunds(
  db: Kysely<Database>,
  appid: string,
  q: { view: RefundView; before?: number; limit: number },
) {
  let query = db
    .selectFrom('refunds as r')
    .innerJoin('orders as o', 'o.id', 'r.order_id')
    .selectAll('r')
    .select(['o.out_trade_no', 'o.amount_fen as order_fen'])
    .where('o.appid', '=', appid)
    .orderBy('r.id', 'desc')
    .limit(q.limit + 1)
  const statuses = REFUND_VIEWS[q.view]
  if (statuses) query = query.where('r.status', 'in', statuses)
  if (q.before) query = query.where('r.id', '<', q.before)
  const rows = await query.execute()
  return {
    refunds: rows.slice(0, q.limit).map((r) => ({ ...r, state: refundQueueState(r) })),
    more: rows.length > q.limit,
  }
}

/** How many of the account's refunds are in each status (the queue at a glance). */
export async function refundCounts(db: Kysely<Database>, appid: string) {
  const rows = await db
    .selectFrom('refunds as r')
    .innerJoin('orders as o', 'o.id', 'r.order_id')
    .select(['r.status', (eb) => eb.fn.countAll<number>().as('n')])
    .where('o.appid', '=', appid)
    .groupBy('r.status')
    .execute()
  return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)])) as Partial<
    Record<Refund['status'], number>
  >
}
