/**
 * The operator's view of reconciliation (GET …/shop/reconciliation): a day's runs — status, line
 * counts, the summary checks, the bill's totals against ours — with its mismatches; and the open
 * mismatches of every day. Amounts in fen.
 */
import type { Kysely, Selectable } from 'kysely'
import type { Database, ReconciliationMismatchesTable } from '../db/schema.js'

/** A mismatch as the operator API shows it. */
export function mismatchView(
  m: Selectable<ReconciliationMismatchesTable> & { bill_date?: string },
) {
  return {
    id: m.id,
    ...(m.bill_date !== undefined ? { billDate: m.bill_date } : {}),
    kind: m.kind,
    outTradeNo: m.out_trade_no,
    transactionId: m.transaction_id,
    outRefundNo: m.out_refund_no,
    refundId: m.refund_id,
    theirFen: m.their_fen,
    ourFen: m.our_fen,
    ourStatus: m.our_status,
    detail: m.detail,
    status: m.status,
    note: m.note,
    resolvedAt: m.resolved_at,
    firstSeenAt: m.created_at,
  }
}

/** The runs of `date` (trade, fund flow) and their mismatches, open first. */
export async function reconciliationReport(
  db: Kysely<Database>,
  o: { mchid: string; date: string },
) {
  const runs = await db
    .selectFrom('reconciliation_runs')
    .selectAll()
    .where('mchid', '=', o.mchid)
    .where('bill_date', '=', o.date)
    .orderBy('kind', 'desc') // trade, then fundflow
    .execute()
  const mismatches =
    runs.length === 0
      ? []
      : await db
          .selectFrom('reconciliation_mismatches')
          .selectAll()
          .where(
            'run_id',
            'in',
            runs.map((r) => r.id),
          )
          .orderBy('status')
          .orderBy('id')
          .execute()
  return {
    date: o.date,
    runs: runs.map((r) => ({
      kind: r.kind,
      status: r.status,
      lines: r.line_count,
      mismatches: r.mismatch_count,
      open: mismatches.filter((m) => m.run_id === r.id && m.status === 'open').length,
      totals: r.totals ? (JSON.parse(r.totals) as unknown) : null,
      hash: r.hash_value,
      error: r.error,
      attempts: r.attempts,
      fetchedAt: r.fetched_at,
      reconciledAt: r.reconciled_at,
    })),
    mismatches: mismatches.map(mismatchView),
  }
}

/** Mismatches of every day, newest first: the open ones by default. */
export async function listMismatches(
  db: Kysely<Database>,
  o: { mchid: string; status?: 'open' | 'resolved'; limit: number },
) {
  let q = db
    .selectFrom('reconciliation_mismatches as m')
    .innerJoin('reconciliation_runs as r', 'r.id', 'm.run_id')
    .selectAll('m')
    .select('r.bill_date')
    .where('r.mchid', '=', o.mchid)
    .orderBy('m.id', 'desc')
    .limit(o.limit)
  if (o.status) q = q.where('m.status', '=', o.status)
  return (await q.execute()).map(mismatchView)
}
