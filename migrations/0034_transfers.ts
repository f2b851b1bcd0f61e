import { type Kysely, sql } from 'kysely'

/**
 * Cashback rewards paid for real (issue #15): a reward's `kind` is `code` (a code to show) or
 * `cashback` (`cashback_fen` paid to the member's WeChat wallet through WeChat Pay's merchant
 * transfer, 商家转账 2025). The default catalog's 50元返现 becomes a 5000-fen cashback. Each
 * cashback redemption has one `transfers` row, written in the redemption's transaction: its
 * `out_bill_no` never changes, `request_body` is frozen at the first send (every retry sends the
 * same bytes), and `state` follows WeChat Pay's bill (lower case) after a local `pending`.
 * `attempts` / `next_attempt_at` drive the send queue and the polls; `accepted_at` starts the
 * member's 24-hour confirmation window.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table rewards
    add column kind text not null default 'code' check (kind in ('code', 'cashback')),
    add column cashback_fen integer check (cashback_fen between 10 and 199999)`.execute(db)
  await sql`alter table rewards add constraint rewards_cashback_amount
    check ((kind = 'cashback') = (cashback_fen is not null))`.execute(db)
  // The default catalog's cashback reward, wherever it was seeded.
  await sql`update rewards set kind = 'cashback', cashback_fen = 5000
    where code = 4 and name = '50元返现' and kind = 'code'`.execute(db)

  await db.schema
    .createTable('transfers')
    .addColumn('id', 'bigint', (col) => col.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('appid', 'text', (col) => col.notNull())
    .addColumn('member_id', 'bigint', (col) => col.notNull().references('members.id'))
    .addColumn('redemption_id', 'bigint', (col) =>
      col.notNull().unique().references('redemptions.id'),
    )
    .addColumn('out_bill_no', 'text', (col) =>
      col.notNull().unique().check(sql`out_bill_no ~ '^[A-Za-z0-9]{1,32}$'`),
    )
    // The mini program the bill is made for, and the member's openid under it (the payee).
    .addColumn('pay_appid', 'text', (col) => col.notNull())
    .addColumn('openid', 'text', (col) => col.notNull())
    .addColumn('amount_fen', 'integer', (col) =>
      col.notNull().check(sql`amount_fen between 10 and 199999`),
    )
    .addColumn('state', 'text', (col) =>
      col.notNull().check(
        sql`state in ('pending', 'accepted', 'processing', 'wait_user_confirm', 'transfering',
            'canceling', 'success', 'fail', 'cancelled')`,
      ),
    )
    .addColumn('request_body', 'text')
    .addColumn('package_info', 'text')
    .addColumn('transfer_bill_no', 'text')
    .addColumn('fail_reason', 'text')
    .addColumn('error', 'text')
    .addColumn('attempts', 'integer', (col) => col.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'timestamptz')
    .addColumn('queried_at', 'timestamptz')
    .addColumn('accepted_at', 'timestamptz')
    .addColumn('settled_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (col) => col.notNull())
    .addColumn('updated_at', 'timestamptz', (col) => col.notNull())
    .execute()
  await sql`create index transfers_open_idx on transfers (next_attempt_at)
    where state not in ('success', 'fail', 'cancelled')`.execute(db)
  await sql`create index transfers_member_idx on transfers (member_id, created_at)`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('transfers').execute()
  await sql`alter table rewards drop constraint rewards_cashback_amount,
    drop column kind, drop column cashback_fen`.execute(db)
}
