import { type Kysely, sql } from 'kysely'

/**
 * The outbox, reworked (issue #14):
 * - `lane`: 0 replies and follow-ups, 1 transactional notices, 2 campaigns — claimed in that order.
 * - One due column: a `sending` row's `next_attempt_at` is its lease's end, so "due" is one indexed
 *   range (`status in (pending, sending) and next_attempt_at <= now`) per lane; `lease_until` goes.
 * - `claim_token` names the claim holding a `sending` row (results and lease renewals check it).
 * - `attempt_started_at`: a send is in flight; a row taken over with it set was maybe delivered.
 * - `first_attempt_at`: when the first attempt began (templates' `client_msg_id` lasts ≈ 10 min).
 * - `fallback`: `{kind, payload}` sent instead when the customer-service window is closed.
 * - New statuses: `held` (campaign paused), `cancelled` (campaign stopped), `unknown` (the request
 *   was written and no answer came: not resent when that could deliver twice).
 * - `outbox_pauses`: a quota error pauses one API (template, custom, subscribe, mass) of an account.
 * - `push_receipts`: delivery receipts, kept even when they arrive before the send's msgid is stored.
 * - `cs_window_sends`: customer-service messages sent in a member's current window (5 per 48 h).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table push_outbox
    add column lane smallint not null default 1 check (lane in (0, 1, 2)),
    add column claim_token text,
    add column attempt_started_at timestamptz,
    add column first_attempt_at timestamptz,
    add column fallback text`.execute(db)
  await sql`alter table push_outbox drop constraint if exists push_outbox_status_check`.execute(db)
  await sql`alter table push_outbox add constraint push_outbox_status_check check (status in
    ('pending', 'sending', 'sent', 'failed', 'skipped', 'held', 'cancelled', 'unknown'))`.execute(
    db,
  )
  // Rows a dispatcher of the old code held may have been sent (it stored results per batch):
  // marked as attempted, so a customer-service message is not sent again.
  await sql`update push_outbox set next_attempt_at = coalesce(lease_until, now()),
      attempt_started_at = coalesce(lease_until - interval '60 seconds', now())
    where status = 'sending'`.execute(db)
  await sql`update push_outbox set lane = 0 where source like 'reply:%'`.execute(db)
  await sql`update push_outbox set lane = 2 where source like 'campaign:%'`.execute(db)
  await sql`alter table push_outbox drop column lease_until`.execute(db)
  await sql`drop index push_outbox_due_idx`.execute(db)
  await sql`create index push_outbox_due_idx on push_outbox (appid, lane, next_attempt_at)
    where status in ('pending', 'sending')`.execute(db)
  // Finished rows by age, for retention.
  await sql`create index push_outbox_created_idx on push_outbox (created_at)`.execute(db)
  await sql`update rate_buckets set paused_until = null`.execute(db)

  await db.schema
    .createTable('outbox_pauses')
    .addColumn('appid', 'text', (col) => col.notNull())
    .addColumn('api', 'text', (col) =>
      col.notNull().check(sql`api in ('template', 'custom', 'subscribe', 'mass')`),
    )
    .addColumn('paused_until', 'timestamptz', (col) => col.notNull())
    .addColumn('errcode', 'integer', (col) => col.notNull())
    .addColumn('recorded_at', 'timestamptz', (col) => col.notNull())
    .addPrimaryKeyConstraint('outbox_pauses_pkey', ['appid', 'api'])
    .execute()

  await db.schema
    .createTable('push_receipts')
    .addColumn('appid', 'text', (col) => col.notNull())
    .addColumn('msgid', 'text', (col) => col.notNull())
    .addColumn('status', 'text', (col) => col.notNull())
    .addColumn('received_at', 'timestamptz', (col) => col.notNull())
    .addPrimaryKeyConstraint('push_receipts_pkey', ['appid', 'msgid'])
    .execute()
  await db.schema
    .createIndex('push_receipts_received_idx')
    .on('push_receipts')
    .column('received_at')
    .execute()

  await db.schema
    .createTable('cs_window_sends')
    .addColumn('appid', 'text', (col) => col.notNull())
    .addColumn('openid', 'text', (col) => col.notNull())
    .addColumn('window_opened_at', 'timestamptz', (col) => col.notNull())
    .addColumn('sent', 'integer', (col) => col.notNull())
    .addPrimaryKeyConstraint('cs_window_sends_pkey', ['appid', 'openid'])
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of ['cs_window_sends', 'push_receipts', 'outbox_pauses'])
    await db.schema.dropTable(t).execute()
  await sql`drop index push_outbox_created_idx`.execute(db)
  await sql`drop index push_outbox_due_idx`.execute(db)
  await sql`alter table push_outbox add column lease_until timestamptz`.execute(db)
  await sql`update push_outbox set lease_until = next_attempt_at where status = 'sending'`.execute(
    db,
  )
  await sql`update push_outbox set status = 'failed' where status in ('held', 'cancelled', 'unknown')`.execute(
    db,
  )
  await sql`alter table push_outbox drop constraint push_outbox_status_check`.execute(db)
  await sql`alter table push_outbox add constraint push_outbox_status_check check (status in
    ('pending', 'sending', 'sent', 'failed', 'skipped'))`.execute(db)
  await sql`alter table push_outbox drop column lane, drop column claim_token,
    drop column attempt_started_at, drop column first_attempt_at, drop column fallback`.execute(db)
  await sql`create index push_outbox_due_idx on push_outbox (appid, next_attempt_at)
    where status in ('pending', 'sending')`.execute(db)
}
