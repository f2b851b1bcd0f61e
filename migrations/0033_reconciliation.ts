import { type Kysely, sql } from 'kysely'

/**
 * Daily reconciliation (issue #15): one run per merchant, bill date (a day in Asia/Shanghai) and
 * bill kind — re-running a day replaces its lines and mismatches in one transaction. The bill's
 * lines are kept (its fields as JSON, the matching keys as columns) so a later day can tell that a
 * payment or refund it did not find was already in an earlier bill. Mismatches keep their status
 * and note across re-runs of the same day (unique per run, kind and key).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('reconciliation_runs')
    .addColumn('id', 'bigint', (col) => col.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('appid', 'text', (col) => col.notNull())
    .addColumn('mchid', 'text', (col) => col.notNull())
    .addColumn('bill_date', 'text', (col) =>
      col.notNull().check(sql`bill_date ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$'`),
    )
    .addColumn('kind', 'text', (col) => col.notNull().check(sql`kind in ('trade', 'fundflow')`))
    // pending: the bill is still being made (STATEMENT_CREATING); failed: refused (hash, format,
    // HTTP) before anything was recorded; reconciled: lines and mismatches recorded.
    .addColumn('status', 'text', (col) =>
      col.notNull().check(sql`status in ('pending', 'failed', 'reconciled')`),
    )
    .addColumn('hash_value', 'text')
    .addColumn('line_count', 'integer', (col) => col.notNull().defaultTo(0))
    .addColumn('mismatch_count', 'integer', (col) => col.notNull().defaultTo(0))
    // JSON: the summary line against the lines, and the bill's and our totals in fen.
    .addColumn('totals', 'text')
    .addColumn('error', 'text')
    .addColumn('attempts', 'integer', (col) => col.notNull().defaultTo(0))
    .addColumn('fetched_at', 'timestamptz')
    .addColumn('reconciled_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (col) => col.notNull())
    .addColumn('updated_at', 'timestamptz', (col) => col.notNull())
    .addUniqueConstraint('reconciliation_runs_day_key', ['mchid', 'bill_date', 'kind'])
    .execute()

  await db.schema
    .createTable('reconciliation_lines')
    .addColumn('run_id', 'bigint', (col) =>
      col.notNull().references('reconciliation_runs.id').onDelete('cascade'),
    )
    .addColumn('line_no', 'integer', (col) => col.notNull())
    .addColumn('entry', 'text', (col) =>
      col.notNull().check(sql`entry in ('payment', 'refund', 'other', 'income', 'expense')`),
    )
    // As the bill writes it: Beijing time, `yyyy-MM-dd HH:mm:ss`.
    .addColumn('occurred_at', 'text', (col) => col.notNull())
    .addColumn('transaction_id', 'text')
    .addColumn('out_trade_no', 'text')
    .addColumn('refund_id', 'text')
    .addColumn('out_refund_no', 'text')
    .addColumn('amount_fen', 'bigint')
    .addColumn('state', 'text')
    .addColumn('fields', 'text', (col) => col.notNull())
    .addPrimaryKeyConstraint('reconciliation_lines_pkey', ['run_id', 'line_no'])
    .execute()
  await sql`create index reconciliation_lines_payment_idx on reconciliation_lines (out_trade_no)
    where entry = 'payment'`.execute(db)
  await sql`create index reconciliation_lines_refund_idx on reconciliation_lines (out_refund_no)
    where entry = 'refund'`.execute(db)

  await db.schema
    .createTable('reconciliation_mismatches')
    .addColumn('id', 'bigint', (col) => col.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('run_id', 'bigint', (col) =>
      col.notNull().references('reconciliation_runs.id').onDelete('cascade'),
    )
    .addColumn('kind', 'text', (col) =>
      col.notNull().check(sql`kind in ('missing_here', 'amount_differs', 'refund_missing_here',
        'refund_amount_differs', 'missing_there', 'refund_missing_there', 'summary_differs')`),
    )
    // out_trade_no, out_refund_no or the summary column: one mismatch per run, kind and key.
    .addColumn('key', 'text', (col) => col.notNull())
    .addColumn('out_trade_no', 'text')
    .addColumn('transaction_id', 'text')
    .addColumn('out_refund_no', 'text')
    .addColumn('refund_id', 'text')
    .addColumn('their_fen', 'bigint')
    .addColumn('our_fen', 'bigint')
    .addColumn('our_status', 'text')
    .addColumn('detail', 'text', (col) => col.notNull())
    .addColumn('status', 'text', (col) =>
      col.notNull().defaultTo('open').check(sql`status in ('open', 'resolved')`),
    )
    .addColumn('note', 'text')
    .addColumn('resolved_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (col) => col.notNull())
    .addColumn('updated_at', 'timestamptz', (col) => col.notNull())
    .addUniqueConstraint('reconciliation_mismatches_key', ['run_id', 'kind', 'key'])
    .execute()
  await sql`create index reconciliation_mismatches_open_idx on reconciliation_mismatches (id)
    where status = 'open'`.execute(db)
  // Our payments of a bill day (those WeChat Pay's bill must list).
  await sql`create index orders_paid_at_idx on orders (paid_at) where paid_at is not null`.execute(
    db,
  )
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index orders_paid_at_idx`.execute(db)
  await db.schema.dropTable('reconciliation_mismatches').execute()
  await db.schema.dropTable('reconciliation_lines').execute()
  await db.schema.dropTable('reconciliation_runs').execute()
}
