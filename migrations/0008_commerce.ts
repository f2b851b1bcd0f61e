import { type Kysely, sql } from 'kysely'

/**
 * The shop behind the mini-program pages: mini-program identities linked to members, the catalog
 * (membership plans, flash sales, group buys), orders with reserved stock, group buys, memberships,
 * WeChat Pay notifications seen (by id) and refunds. Amounts are integer fen.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('mp_users')
    .addColumn('appid', 'text', (col) => col.notNull())
    .addColumn('openid', 'text', (col) => col.notNull())
    .addColumn('unionid', 'text')
    .addColumn('member_id', 'bigint', (col) => col.notNull().references('members.id'))
    .addColumn('created_at', 'timestamptz', (col) => col.notNull())
    .addPrimaryKeyConstraint('mp_users_pkey', ['appid', 'openid'])
    .execute()

  await db.schema
    .createTable('products')
    .addColumn('id', 'bigint', (col) => col.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('appid', 'text', (col) => col.notNull())
    .addColumn('sku', 'text', (col) => col.notNull())
    .addColumn('kind', 'text', (col) =>
      col.notNull().check(sql`kind in ('membership', 'flash_sale', 'group_buy')`),
    )
    .addColumn('name', 'text', (col) => col.notNull())
    .addColumn('price_fen', 'integer', (col) => col.notNull().check(sql`price_fen > 0`))
    // Null = unlimited. Reserved by an order, released when the order closes.
    .addColumn('stock', 'integer', (col) => col.check(sql`stock >= 0`))
    .addColumn('per_member_limit', 'integer', (col) => col.check(sql`per_member_limit > 0`))
    .addColumn('starts_at', 'timestamptz')
    .addColumn('ends_at', 'timestamptz')
    // Membership plans: how long, which tier, and the price members of the tier pay elsewhere (%).
    .addColumn('membership_days', 'integer', (col) => col.check(sql`membership_days > 0`))
    .addColumn('tier', 'text')
    .addColumn('discount_percent', 'integer', (col) =>
      col.check(sql`discount_percent between 1 and 100`),
    )
    // Group buys: participants required, at most, and hours to fill.
    .addColumn('group_size', 'integer', (col) => col.check(sql`group_size >= 2`))
    .addColumn('group_max', 'integer')
    .addColumn('group_hours', 'integer', (col) => col.check(sql`group_hours > 0`))
    .addColumn('enabled', 'boolean', (col) => col.notNull().defaultTo(true))
    .addColumn('created_at', 'timestamptz', (col) => col.notNull())
    .addUniqueConstraint('products_appid_sku_key', ['appid', 'sku'])
    .addCheckConstraint(
      'products_kind_fields',
      sql`(kind <> 'membership' or (membership_days is not null and tier is not null))
        and (kind <> 'group_buy' or (group_size is not null and group_max >= group_size
          and group_hours is not null))`,
    )
    .execute()

  await db.schema
    .createTable('group_buys')
    .addColumn('id', 'bigint', (col) => col.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('appid', 'text', (col) => col.notNull())
    .addColumn('product_id', 'bigint', (col) => col.notNull().references('products.id'))
    .addColumn('leader_member_id', 'bigint', (col) => col.notNull().references('members.id'))
    .addColumn('status', 'text', (col) =>
      col.notNull().check(sql`status in ('open', 'succeeded', 'failed')`),
    )
    .addColumn('size_required', 'integer', (col) => col.notNull())
    .addColumn('size_max', 'integer', (col) => col.notNull())
    // Seats taken by pending or paid orders; paid orders.
    .addColumn('joined', 'integer', (col) => col.notNull().defaultTo(0))
    .addColumn('paid', 'integer', (col) => col.notNull().defaultTo(0))
    .addColumn('expires_at', 'timestamptz', (col) => col.notNull())
    .addColumn('created_at', 'timestamptz', (col) => col.notNull())
    .addColumn('settled_at', 'timestamptz')
    .addCheckConstraint('group_buys_seats', sql`joined between 0 and size_max and paid <= joined`)
    .execute()

  await db.schema
    .createTable('orders')
    .addColumn('id', 'bigint', (col) => col.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('appid', 'text', (col) => col.notNull())
    .addColumn('out_trade_no', 'text', (col) => col.notNull().unique())
    .addColumn('member_id', 'bigint', (col) => col.notNull().references('members.id'))
    .addColumn('mp_openid', 'text', (col) => col.notNull())
    .addColumn('product_id', 'bigint', (col) => col.notNull().references('products.id'))
    .addColumn('kind', 'text', (col) => col.notNull())
    .addColumn('description', 'text', (col) => col.notNull())
    .addColumn('amount_fen', 'integer', (col) => col.notNull().check(sql`amount_fen > 0`))
    .addColumn('status', 'text', (col) =>
      col.notNull().check(sql`status in ('pending', 'paid', 'closed', 'refunded', 'flagged')`),
    )
    // The client's idempotency key: a double tap returns the same order.
    .addColumn('client_key', 'text')
    .addColumn('group_buy_id', 'bigint', (col) => col.references('group_buys.id'))
    .addColumn('prepay_id', 'text')
    .addColumn('transaction_id', 'text', (col) => col.unique())
    .addColumn('refunded_fen', 'integer', (col) => col.notNull().defaultTo(0))
    .addColumn('flag_reason', 'text')
    .addColumn('expires_at', 'timestamptz', (col) => col.notNull())
    .addColumn('created_at', 'timestamptz', (col) => col.notNull())
    .addColumn('paid_at', 'timestamptz')
    .addColumn('closed_at', 'timestamptz')
    .addUniqueConstraint('orders_member_client_key', ['member_id', 'client_key'])
    .addCheckConstraint('orders_refund_cap', sql`refunded_fen between 0 and amount_fen`)
    .execute()
  await db.schema
    .createIndex('orders_pending_expiry_idx')
    .on('orders')
    .column('expires_at')
    .where(sql.ref('status'), '=', 'pending')
    .execute()
  await db.schema
    .createIndex('orders_member_product_idx')
    .on('orders')
    .columns(['member_id', 'product_id'])
    .execute()

  await db.schema
    .createTable('memberships')
    .addColumn('member_id', 'bigint', (col) => col.primaryKey().references('members.id'))
    .addColumn('tier', 'text', (col) => col.notNull())
    .addColumn('discount_percent', 'integer', (col) => col.notNull())
    .addColumn('expires_at', 'timestamptz', (col) => col.notNull())
    .addColumn('updated_at', 'timestamptz', (col) => col.notNull())
    .execute()

  await db.schema
    .createTable('pay_events')
    .addColumn('id', 'text', (col) => col.primaryKey())
    .addColumn('event_type', 'text', (col) => col.notNull())
    .addColumn('reference', 'text')
    .addColumn('outcome', 'text', (col) => col.notNull())
    .addColumn('received_at', 'timestamptz', (col) => col.notNull())
    .execute()

  await db.schema
    .createTable('refunds')
    .addColumn('id', 'bigint', (col) => col.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('order_id', 'bigint', (col) => col.notNull().references('orders.id'))
    .addColumn('out_refund_no', 'text', (col) => col.notNull().unique())
    .addColumn('amount_fen', 'integer', (col) => col.notNull().check(sql`amount_fen > 0`))
    .addColumn('reason', 'text', (col) => col.notNull())
    .addColumn('status', 'text', (col) =>
      col
        .notNull()
        .check(sql`status in ('requested', 'processing', 'success', 'closed', 'abnormal')`),
    )
    .addColumn('refund_id', 'text')
    .addColumn('error', 'text')
    .addColumn('created_at', 'timestamptz', (col) => col.notNull())
    .addColumn('updated_at', 'timestamptz', (col) => col.notNull())
    .execute()
  await db.schema.createIndex('refunds_order_idx').on('refunds').column('order_id').execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of [
    'refunds',
    'pay_events',
    'memberships',
    'orders',
    'group_buys',
    'products',
    'mp_users',
  ])
    await db.schema.dropTable(table).execute()
}
