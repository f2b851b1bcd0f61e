/**
 * Daily reconciliation against WeChat Pay's bills (issue #15). For one bill day — a day in
 * Asia/Shanghai, WeChat Pay's day cut — the trade bill (payments succeeded and refunds accepted
 * that day) and the fund-flow bill are fetched through the {@link BillGateway} (hash verified),
 * parsed, and in one transaction their lines are stored and matched with SQL joins:
 *
 * - a payment line whose order we do not have, or do not count as paid → `missing_here`;
 *   whose 订单金额 is not the order's amount → `amount_differs`;
 * - a refund line whose refund we do not have (or gave up sending) → `refund_missing_here`;
 *   whose amount is not ours → `refund_amount_differs`;
 * - an order we count as paid on that day (`paid_at` in the day) that no stored bill lists →
 *   `missing_there`; a refund WeChat Pay accepted, recorded that day, that no bill lists →
 *   `refund_missing_there` (one recorded just before midnight but accepted after it is listed
 *   the next day: that day's run resolves it);
 * - a summary column that is not the sum of the lines → `summary_differs` (both bills).
 *
 * Fund-flow lines are stored and summed; transfers are not matched here. Re-running a day gives
 * the same mismatch set: its lines are replaced, mismatches that no longer hold are deleted, those
 * that still hold keep their status and note. A bill whose hash does not match, or that does not
 * parse, records nothing but a `failed` run (a reconciled day keeps its results); a bill still
 * being made (`STATEMENT_CREATING`) a `pending` run; both are tried again by the next run of the
 * job. New mismatches are logged at warn with the code RECONCILIATION_MISMATCH.
 */
import { type Kysely, type Selectable, sql, type Transaction } from 'kysely'
import { addDays } from '../community/community-time.js'
import type {
  Database,
  ReconciliationLinesTable,
  ReconciliationMismatchesTable,
} from '../db/schema.js'
import type { Logger } from '../logger.js'
import {
  type BillFile,
  checkSummary,
  parseBill,
  type SummaryCheck,
  yuanToFen,
} from '../pay/bill-file.js'
import type { BillGateway, BillKind } from '../pay/gateway.js'
import type { ShopSettings } from './catalog.js'

/** Bill days begin at midnight in Beijing (UTC+8, no daylight saving). */
export const dayStart = (date: string) => new Date(`${date}T00:00:00+08:00`)

/**
 * The newest bill date WeChat Pay has at `now`: yesterday in Beijing once it is 10:00 there
 * (bills are made from 09:00 and fetched after 10:00), else the day before.
 */
export function latestBillDate(now: Date): string {
  const beijing = new Date(now.getTime() + 8 * 3600_000)
  return addDays(beijing.toISOString().slice(0, 10), beijing.getUTCHours() >= 10 ? -1 : -2)
}

/** What reconciling one bill of a day did. */
export type ReconcileOutcome =
  | {
      kind: BillKind
      status: 'reconciled'
      /** No bill that day (NO_STATEMENT_EXIST): reconciled against zero lines. */
      empty: boolean
      lines: number
      mismatches: number
      newMismatches: number
    }
  | { kind: BillKind; status: 'pending' }
  | { kind: BillKind; status: 'failed'; error: string }

type Line = Omit<ReconciliationLinesTable, 'run_id'>

/** A mismatch found, as its row stores it. */
type Found = Omit<
  Selectable<ReconciliationMismatchesTable>,
  'id' | 'run_id' | 'status' | 'note' | 'resolved_at' | 'created_at' | 'updated_at'
>

const PAID_HERE = ['paid', 'refunded', 'flagged'] as const
/**
 * The refunds WeChat Pay accepted — by status alone: one settled by its REFUND.* notification
 * before the request's answer came (or whose answer was lost) may not know its `refund_id`.
 */
const ACCEPTED_REFUND = ['processing', 'success', 'closed', 'abnormal'] as const

/**
 * Reconciles the bills of `date` (`YYYY-MM-DD`, Beijing) — trade and fund flow unless `kinds`
 * says otherwise — and returns one outcome per bill; never throws for a bill's failure.
 */
export async function reconcileDay(
  db: Kysely<Database>,
  gateway: BillGateway & { mchid: string },
  settings: Pick<ShopSettings, 'appid'>,
  o: { date: string; now: Date; logger: Logger; kinds?: BillKind[]; gzip?: boolean },
): Promise<ReconcileOutcome[]> {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(o.date) || addDays(o.date, 0) !== o.date)
    throw new RangeError(`date: ${o.date} is not a YYYY-MM-DD day`)
  const day = { appid: settings.appid, mchid: gateway.mchid, date: o.date, now: o.now }
  const outcomes: ReconcileOutcome[] = []
  for (const kind of o.kinds ?? (['trade', 'fundflow'] as const)) {
    let bill: { file: BillFile | null; hash: string | null }
    try {
      const location = await gateway.billUrl(kind, o.date, { gzip: o.gzip ?? true })
      if (location.status === 'creating') {
        await markRun(db, day, kind, 'pending', null)
        o.logger.info('bill not ready yet (STATEMENT_CREATING): the next run asks again', {
          billDate: o.date,
          kind,
        })
        outcomes.push({ kind, status: 'pending' })
        continue
      }
      bill =
        location.status === 'none'
          ? { file: null, hash: null }
          : {
              file: parseBill(
                new TextDecoder('utf-8', { fatal: true }).decode(
                  await gateway.downloadBill(location),
                ),
              ),
              hash: location.hashValue,
            }
      const lines = bill.file ? billLines(kind, bill.file) : []
      const checks = bill.file ? checkSummary(bill.file) : []
      const recorded = await record(db, day, kind, { lines, checks, hash: bill.hash })
      for (const m of recorded.added)
        o.logger.warn('reconciliation mismatch', {
          code: 'RECONCILIATION_MISMATCH',
          billDate: o.date,
          bill: kind,
          kind: m.kind,
          key: m.key,
          theirFen: m.their_fen,
          ourFen: m.our_fen,
          ourStatus: m.our_status,
          detail: m.detail,
        })
      outcomes.push({
        kind,
        status: 'reconciled',
        empty: bill.file === null,
        lines: lines.length,
        mismatches: recorded.total,
        newMismatches: recorded.added.length,
      })
    } catch (error) {
      const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error)
      await markRun(db, day, kind, 'failed', message.slice(0, 1000))
      o.logger.warn('reconciliation failed: nothing recorded, the next run tries again', {
        code: 'RECONCILIATION_FAILED',
        billDate: o.date,
        bill: kind,
        error,
      })
      outcomes.push({ kind, status: 'failed', error: message })
    }
  }
  return outcomes
}

type Day = { appid: string; mchid: string; date: string; now: Date }

/** A pending or failed run; a reconciled day keeps its results (only the attempt is counted). */
async function markRun(
  db: Kysely<Database>,
  d: Day,
  kind: BillKind,
  status: 'pending' | 'failed',
  error: string | null,
) {
  await db
    .insertInto('reconciliation_runs')
    .values({
      appid: d.appid,
      mchid: d.mchid,
      bill_date: d.date,
      kind,
      status,
      error,
      attempts: 1,
      created_at: d.now,
      updated_at: d.now,
    })
    .onConflict((oc) =>
      oc.columns(['mchid', 'bill_date', 'kind']).doUpdateSet((eb) => ({
        status: sql`case when reconciliation_runs.status = 'reconciled'
          then reconciliation_runs.status else ${status} end`,
        error,
        attempts: eb('reconciliation_runs.attempts', '+', 1),
        updated_at: d.now,
      })),
    )
    .execute()
}

/** The lines of a parsed bill with their matching keys; columns are found by header name. */
export function billLines(kind: BillKind, bill: BillFile): Line[] {
  const need = (names: string[]) => {
    const missing = names.filter((n) => !bill.header.includes(n))
    if (missing.length > 0) throw new Error(`the ${kind} bill has no column ${missing.join(', ')}`)
  }
  /** The first of `names` the bill has, as fen. */
  const fen = (row: Record<string, string>, names: string[]) => {
    const name = names.find((n) => n in row && row[n]!.trim() !== '')
    return name === undefined ? null : yuanToFen(row[name]!)
  }
  const text = (v: string | undefined) => (v === undefined || v === '' || v === '0' ? null : v)
  if (kind === 'trade') {
    need(['交易时间', '商户订单号', '交易状态'])
    return bill.rows.map((row, i) => {
      const state = row.交易状态!
      const refund = state === 'REFUND'
      return {
        line_no: i + 1,
        entry: refund ? 'refund' : state === 'SUCCESS' ? 'payment' : 'other',
        occurred_at: row.交易时间!,
        transaction_id: text(row.微信订单号),
        out_trade_no: text(row.商户订单号),
        refund_id: refund ? text(row.微信退款单号) : null,
        out_refund_no: refund ? text(row.商户退款单号) : null,
        // 订单金额 is what the payer was charged (amount.total); the early format has 总金额.
        amount_fen: refund
          ? fen(row, ['申请退款金额', '退款金额'])
          : fen(row, ['订单金额', '应结订单金额', '总金额']),
        state: refund ? (row.退款状态 ?? state) : state,
        fields: JSON.stringify(row),
      }
    })
  }
  need(['记账时间', '收支类型', '收支金额(元)'])
  return bill.rows.map((row, i) => ({
    line_no: i + 1,
    entry: row.收支类型 === '收入' ? 'income' : row.收支类型 === '支出' ? 'expense' : 'other',
    occurred_at: row.记账时间!,
    transaction_id: text(row.微信支付业务单号),
    out_trade_no: null,
    refund_id: null,
    out_refund_no: null,
    amount_fen: yuanToFen(row['收支金额(元)']!),
    state: row.业务类型 ?? null,
    fields: JSON.stringify(row),
  }))
}

/**
 * Stores a bill's lines and its mismatches in one transaction (the run row, locked first,
 * serialises two reconciliations of the same day). Returns the mismatches found for the first time.
 */
async function record(
  db: Kysely<Database>,
  d: Day,
  kind: BillKind,
  bill: { lines: Line[]; checks: SummaryCheck[]; hash: string | null },
): Promise<{ total: number; added: Found[] }> {
  return db.transaction().execute(async (trx) => {
    const run = await trx
      .insertInto('reconciliation_runs')
      .values({
        appid: d.appid,
        mchid: d.mchid,
        bill_date: d.date,
        kind,
        status: 'reconciled',
        hash_value: bill.hash,
        line_count: bill.lines.length,
        attempts: 1,
        fetched_at: d.now,
        reconciled_at: d.now,
        created_at: d.now,
        updated_at: d.now,
      })
      .onConflict((oc) =>
        oc.columns(['mchid', 'bill_date', 'kind']).doUpdateSet((eb) => ({
          status: 'reconciled',
          hash_value: bill.hash,
          line_count: bill.lines.length,
          error: null,
          attempts: eb('reconciliation_runs.attempts', '+', 1),
          fetched_at: d.now,
          reconciled_at: d.now,
          updated_at: d.now,
        })),
      )
      .returning('id')
      .executeTakeFirstOrThrow()
    await trx.deleteFrom('reconciliation_lines').where('run_id', '=', run.id).execute()
    for (let i = 0; i < bill.lines.length; i += 500)
      await trx
        .insertInto('reconciliation_lines')
        .values(bill.lines.slice(i, i + 500).map((l) => ({ ...l, run_id: run.id })))
        .execute()

    const found = [
      ...summaryMismatches(bill.checks),
      ...(kind === 'trade' ? await matchTrade(trx, d, run.id) : []),
    ]
    const unique = new Map(found.map((f) => [`${f.kind}\n${f.key}`, f]))
    const before = await trx
      .selectFrom('reconciliation_mismatches')
      .select(['id', 'kind', 'key'])
      .where('run_id', '=', run.id)
      .execute()
    const gone = before.filter((b) => !unique.has(`${b.kind}\n${b.key}`)).map((b) => b.id)
    if (gone.length > 0)
      await trx.deleteFrom('reconciliation_mismatches').where('id', 'in', gone).execute()
    const known = new Set(before.map((b) => `${b.kind}\n${b.key}`))
    const rows = [...unique.values()]
    for (let i = 0; i < rows.length; i += 500)
      await trx
        .insertInto('reconciliation_mismatches')
        .values(
          rows
            .slice(i, i + 500)
            .map((f) => ({ ...f, run_id: run.id, created_at: d.now, updated_at: d.now })),
        )
        .onConflict((oc) =>
          oc.columns(['run_id', 'kind', 'key']).doUpdateSet((eb) => ({
            out_trade_no: eb.ref('excluded.out_trade_no'),
            transaction_id: eb.ref('excluded.transaction_id'),
            out_refund_no: eb.ref('excluded.out_refund_no'),
            refund_id: eb.ref('excluded.refund_id'),
            their_fen: eb.ref('excluded.their_fen'),
            our_fen: eb.ref('excluded.our_fen'),
            our_status: eb.ref('excluded.our_status'),
            detail: eb.ref('excluded.detail'),
            updated_at: d.now,
          })),
        )
        .execute()

    if (kind === 'trade') {
      // What earlier days did not find in their bill and this bill lists: found after all.
      await trx
        .updateTable('reconciliation_mismatches')
        .set({ status: 'resolved', note: `listed in the bill of ${d.date}`, resolved_at: d.now })
        .where('status', '=', 'open')
        .where('run_id', '<>', run.id)
        .where('run_id', 'in', (eb) =>
          eb
            .selectFrom('reconciliation_runs')
            .select('id')
            .where('mchid', '=', d.mchid)
            .where('kind', '=', 'trade'),
        )
        .where((eb) =>
          eb.or([
            eb.and([
              eb('kind', '=', 'missing_there'),
              eb('key', 'in', lineKeys(trx, run.id, 'payment', 'out_trade_no')),
            ]),
            eb.and([
              eb('kind', '=', 'refund_missing_there'),
              eb('key', 'in', lineKeys(trx, run.id, 'refund', 'out_refund_no')),
            ]),
          ]),
        )
        .execute()
    }
    const totals = {
      summary: bill.checks,
      bill: billTotals(kind, bill.lines),
      ...(kind === 'trade' ? { ours: await ourTotals(trx, d) } : {}),
    }
    await trx
      .updateTable('reconciliation_runs')
      .set({ mismatch_count: unique.size, totals: JSON.stringify(totals) })
      .where('id', '=', run.id)
      .execute()
    return { total: unique.size, added: rows.filter((f) => !known.has(`${f.kind}\n${f.key}`)) }
  })
}

const lineKeys = (
  trx: Transaction<Database>,
  runId: number,
  entry: 'payment' | 'refund',
  column: 'out_trade_no' | 'out_refund_no',
) =>
  trx
    .selectFrom('reconciliation_lines')
    .select(column)
    .where('run_id', '=', runId)
    .where('entry', '=', entry)
    .where(column, 'is not', null)
    .$castTo<{ key: string }>()

function summaryMismatches(checks: SummaryCheck[]): Found[] {
  const asFen = (v: string) => {
    try {
      return /^-?\d+\.\d+$/.test(v) ? yuanToFen(v) : null
    } catch {
      return null
    }
  }
  return checks
    .filter((c) => !c.ok)
    .map((c) => ({
      kind: 'summary_differs' as const,
      key: c.column,
      out_trade_no: null,
      transaction_id: null,
      out_refund_no: null,
      refund_id: null,
      their_fen: asFen(c.bill),
      our_fen: asFen(c.lines),
      our_status: null,
      detail: `${c.column}: the summary line says ${c.bill}, its lines add up to ${c.lines}`,
    }))
}

/** The trade bill's lines against our orders and refunds (set-based: one query each). */
async function matchTrade(trx: Transaction<Database>, d: Day, runId: number): Promise<Found[]> {
  const start = dayStart(d.date)
  const end = new Date(start.getTime() + 86_400_000)
  const listed = (entry: 'payment' | 'refund', column: 'out_trade_no' | 'out_refund_no') =>
    sql<boolean>`exists (select 1 from reconciliation_lines l
      join reconciliation_runs u on u.id = l.run_id
      where l.entry = ${entry} and l.${sql.ref(column)} = ${sql.ref(
        column === 'out_trade_no' ? 'o.out_trade_no' : 'r.out_refund_no',
      )} and u.mchid = ${d.mchid})`

  const payments = await trx
    .selectFrom('reconciliation_lines as l')
    .leftJoin('orders as o', 'o.out_trade_no', 'l.out_trade_no')
    .select([
      'l.out_trade_no',
      'l.transaction_id',
      'l.amount_fen as their_fen',
      'o.amount_fen as our_fen',
      'o.status as our_status',
    ])
    .where('l.run_id', '=', runId)
    .where('l.entry', '=', 'payment')
    .where((eb) =>
      eb.or([
        eb('o.id', 'is', null),
        eb('o.status', 'not in', PAID_HERE),
        eb('o.amount_fen', '<>', eb.ref('l.amount_fen')),
      ]),
    )
    .orderBy('l.line_no')
    .execute()
  const refunds = await trx
    .selectFrom('reconciliation_lines as l')
    .leftJoin('refunds as r', 'r.out_refund_no', 'l.out_refund_no')
    .leftJoin('orders as o', 'o.id', 'r.order_id')
    .select([
      'l.out_refund_no',
      'l.refund_id',
      'l.out_trade_no',
      'l.amount_fen as their_fen',
      'r.amount_fen as our_fen',
      'r.status as our_status',
      'o.out_trade_no as our_trade_no',
    ])
    .where('l.run_id', '=', runId)
    .where('l.entry', '=', 'refund')
    .where((eb) =>
      eb.or([
        eb('r.id', 'is', null),
        eb('r.status', '=', 'failed'),
        sql<boolean>`o.out_trade_no is distinct from l.out_trade_no`,
        eb('r.amount_fen', '<>', eb.ref('l.amount_fen')),
      ]),
    )
    .orderBy('l.line_no')
    .execute()
  const unlisted = await trx
    .selectFrom('orders as o')
    .select(['o.out_trade_no', 'o.transaction_id', 'o.amount_fen', 'o.status'])
    .where('o.appid', '=', d.appid)
    .where('o.paid_at', '>=', start)
    .where('o.paid_at', '<', end)
    .where('o.transaction_id', 'is not', null)
    .where('o.status', 'in', PAID_HERE)
    .where(sql<boolean>`not ${listed('payment', 'out_trade_no')}`)
    .orderBy('o.id')
    .execute()
  const unlistedRefunds = await trx
    .selectFrom('refunds as r')
    .innerJoin('orders as o', 'o.id', 'r.order_id')
    .select(['r.out_refund_no', 'r.refund_id', 'o.out_trade_no', 'r.amount_fen', 'r.status'])
    .where('o.appid', '=', d.appid)
    .where('r.created_at', '>=', start)
    .where('r.created_at', '<', end)
    .where('r.status', 'in', ACCEPTED_REFUND)
    .where(sql<boolean>`not ${listed('refund', 'out_refund_no')}`)
    .orderBy('r.id')
    .execute()

  const none = { out_refund_no: null, refund_id: null }
  return [
    ...payments.map((p): Found => {
      const here = p.our_status !== null && (PAID_HERE as readonly string[]).includes(p.our_status)
      return {
        kind: here ? 'amount_differs' : 'missing_here',
        key: p.out_trade_no ?? `line:${p.transaction_id}`,
        out_trade_no: p.out_trade_no,
        transaction_id: p.transaction_id,
        ...none,
        their_fen: p.their_fen,
        our_fen: p.our_fen,
        our_status: p.our_status,
        detail: here
          ? `WeChat Pay took ${p.their_fen} fen, the order is for ${p.our_fen} fen`
          : p.our_status === null
            ? 'paid at WeChat Pay, no such order here'
            : `paid at WeChat Pay, the order here is ${p.our_status}`,
      }
    }),
    ...refunds.map((r): Found => {
      const here =
        r.our_status !== null && r.our_status !== 'failed' && r.our_trade_no === r.out_trade_no
      return {
        kind: here ? 'refund_amount_differs' : 'refund_missing_here',
        key: r.out_refund_no ?? `line:${r.refund_id}`,
        out_trade_no: r.out_trade_no,
        transaction_id: null,
        out_refund_no: r.out_refund_no,
        refund_id: r.refund_id,
        their_fen: r.their_fen,
        our_fen: r.our_fen,
        our_status: r.our_status,
        detail: here
          ? `WeChat Pay refunded ${r.their_fen} fen, the refund here is ${r.our_fen} fen`
          : r.our_status === null
            ? 'refunded at WeChat Pay, no such refund here'
            : r.our_status === 'failed'
              ? 'refunded at WeChat Pay, given up here (failed)'
              : `refunded at WeChat Pay for order ${r.out_trade_no}, here for ${r.our_trade_no}`,
      }
    }),
    ...unlisted.map(
      (o): Found => ({
        kind: 'missing_there',
        key: o.out_trade_no,
        out_trade_no: o.out_trade_no,
        transaction_id: o.transaction_id,
        ...none,
        their_fen: null,
        our_fen: o.amount_fen,
        our_status: o.status,
        detail: 'paid here that day, in no WeChat Pay bill',
      }),
    ),
    ...unlistedRefunds.map(
      (r): Found => ({
        kind: 'refund_missing_there',
        key: r.out_refund_no,
        out_trade_no: r.out_trade_no,
        transaction_id: null,
        out_refund_no: r.out_refund_no,
        refund_id: r.refund_id,
        their_fen: null,
        our_fen: r.amount_fen,
        our_status: r.status,
        detail: 'accepted by WeChat Pay, recorded here that day, in no WeChat Pay bill',
      }),
    ),
  ]
}

/** Counts and sums of a bill's lines by entry, in fen. */
function billTotals(kind: BillKind, lines: Line[]) {
  const of = (entry: Line['entry']) => {
    const picked = lines.filter((l) => l.entry === entry)
    return { count: picked.length, fen: picked.reduce((n, l) => n + (l.amount_fen ?? 0), 0) }
  }
  return kind === 'trade'
    ? { payments: of('payment'), refunds: of('refund'), other: of('other') }
    : { income: of('income'), expense: of('expense'), other: of('other') }
}

/** Our payments and accepted refunds of the day, as the bill should total them. */
async function ourTotals(trx: Transaction<Database>, d: Day) {
  const start = dayStart(d.date)
  const end = new Date(start.getTime() + 86_400_000)
  const paid = await trx
    .selectFrom('orders')
    .select((eb) => [
      eb.fn.countAll<number>().as('count'),
      eb.fn.coalesce(eb.fn.sum<number>('amount_fen'), eb.lit(0)).as('fen'),
    ])
    .where('appid', '=', d.appid)
    .where('paid_at', '>=', start)
    .where('paid_at', '<', end)
    .where('transaction_id', 'is not', null)
    .where('status', 'in', PAID_HERE)
    .executeTakeFirstOrThrow()
  const refunded = await trx
    .selectFrom('refunds as r')
    .innerJoin('orders as o', 'o.id', 'r.order_id')
    .select((eb) => [
      eb.fn.countAll<number>().as('count'),
      eb.fn.coalesce(eb.fn.sum<number>('r.amount_fen'), eb.lit(0)).as('fen'),
    ])
    .where('o.appid', '=', d.appid)
    .where('r.created_at', '>=', start)
    .where('r.created_at', '<', end)
    .where('r.status', 'in', ACCEPTED_REFUND)
    .executeTakeFirstOrThrow()
  const n = (v: unknown) => Number(v)
  return {
    payments: { count: n(paid.count), fen: n(paid.fen) },
    refunds: { count: n(refunded.count), fen: n(refunded.fen) },
  }
}

/**
 * The bill days the job should reconcile at `now`: the newest WeChat Pay has, and the days of the
 * `lookbackDays` before it not reconciled yet (pending, failed, or missed while nothing ran) —
 * but none before the first day ever reconciled, so a new installation starts from yesterday.
 */
export async function billDatesDue(
  db: Kysely<Database>,
  mchid: string,
  now: Date,
  lookbackDays = 7,
): Promise<{ date: string; kinds: BillKind[] }[]> {
  const latest = latestBillDate(now)
  const from = addDays(latest, -(lookbackDays - 1))
  const [runs, first] = await Promise.all([
    db
      .selectFrom('reconciliation_runs')
      .select(['bill_date', 'kind', 'status'])
      .where('mchid', '=', mchid)
      .where('bill_date', '>=', from)
      .where('bill_date', '<=', latest)
      .execute(),
    db
      .selectFrom('reconciliation_runs')
      .select((eb) => eb.fn.min('bill_date').as('date'))
      .where('mchid', '=', mchid)
      .executeTakeFirst(),
  ])
  const done = new Set(
    runs.filter((r) => r.status === 'reconciled').map((r) => `${r.bill_date} ${r.kind}`),
  )
  const due: { date: string; kinds: BillKind[] }[] = []
  for (let date = from; date <= latest; date = addDays(date, 1)) {
    if (date !== latest && (!first?.date || date < first.date)) continue
    const kinds = (['trade', 'fundflow'] as const).filter((k) => !done.has(`${date} ${k}`))
    if (kinds.length > 0) due.push({ date, kinds })
  }
  return due
}
