import { type Kysely, sql } from 'kysely'

/**
 * Campaigns whose costs do not grow with their history (issue #14):
 * - `campaign_runs.cursor`: the last member id a run has walked (keyset pagination; a process
 *   taking over a crashed run continues from there). Status `stopped`: the campaign was finished
 *   while the run was enqueuing. `pruned_at`: a one-shot run whose recipients were rolled up (a
 *   cron run's row is deleted instead).
 * - `campaign_rollups`: the counts of pruned recipients per (campaign, slot, variant), so reports
 *   are the same before and after retention.
 * - `campaign_watermarks`: how far conversions were marked (members active since then are checked).
 * - Open recipients (enqueued, not converted) by (member, enqueued_at); members by their last
 *   activity and purchase: conversion marking touches only members active since the last mark.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table campaign_runs
    add column cursor bigint not null default 0,
    add column pruned_at timestamptz`.execute(db)
  // A run still enqueuing under the old code (which also walked in member-id order, a batch per
  // transaction) continues after the last member it recorded.
  await sql`update campaign_runs r set cursor = coalesce((select max(x.member_id)
      from campaign_recipients x where x.campaign_id = r.campaign_id and x.slot = r.slot), 0)
    where r.status = 'enqueuing'`.execute(db)
  await sql`alter table campaign_runs drop constraint if exists campaign_runs_status_check`.execute(
    db,
  )
  await sql`alter table campaign_runs add constraint campaign_runs_status_check
    check (status in ('enqueuing', 'enqueued', 'stopped'))`.execute(db)
  await sql`create index campaign_runs_slot_idx on campaign_runs (slot) where pruned_at is null`.execute(
    db,
  )

  await db.schema
    .createTable('campaign_rollups')
    .addColumn('campaign_id', 'bigint', (col) => col.notNull().references('campaigns.id'))
    .addColumn('slot', 'timestamptz', (col) => col.notNull())
    .addColumn('variant', 'text', (col) => col.notNull())
    .addColumn('audience', 'integer', (col) => col.notNull())
    .addColumn('enqueued', 'integer', (col) => col.notNull())
    .addColumn('capped', 'integer', (col) => col.notNull())
    .addColumn('opted_out', 'integer', (col) => col.notNull())
    .addColumn('unreachable', 'integer', (col) => col.notNull())
    .addColumn('sent', 'integer', (col) => col.notNull())
    .addColumn('failed', 'integer', (col) => col.notNull())
    .addColumn('delivered', 'integer', (col) => col.notNull())
    .addColumn('clicked', 'integer', (col) => col.notNull())
    .addColumn('converted', 'integer', (col) => col.notNull())
    .addPrimaryKeyConstraint('campaign_rollups_pkey', ['campaign_id', 'slot', 'variant'])
    .execute()

  await db.schema
    .createTable('campaign_watermarks')
    .addColumn('name', 'text', (col) => col.primaryKey())
    .addColumn('marked_at', 'timestamptz', (col) => col.notNull())
    .execute()

  await sql`drop index campaign_recipients_open_idx`.execute(db)
  await sql`create index campaign_recipients_open_idx on campaign_recipients (member_id, enqueued_at)
    where outcome = 'enqueued' and converted_at is null`.execute(db)
  await sql`create index members_last_active_idx on members (last_active_at)`.execute(db)
  await sql`create index members_last_purchased_idx on members (last_purchased_at)
    where last_purchased_at is not null`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index members_last_purchased_idx`.execute(db)
  await sql`drop index members_last_active_idx`.execute(db)
  await sql`drop index campaign_recipients_open_idx`.execute(db)
  await sql`create index campaign_recipients_open_idx on campaign_recipients (member_id)
    where converted_at is null`.execute(db)
  await db.schema.dropTable('campaign_watermarks').execute()
  await db.schema.dropTable('campaign_rollups').execute()
  await sql`drop index campaign_runs_slot_idx`.execute(db)
  await sql`update campaign_runs set status = 'enqueued' where status = 'stopped'`.execute(db)
  await sql`alter table campaign_runs drop constraint campaign_runs_status_check`.execute(db)
  await sql`alter table campaign_runs add constraint campaign_runs_status_check
    check (status in ('enqueuing', 'enqueued'))`.execute(db)
  await sql`alter table campaign_runs drop column pruned_at, drop column cursor`.execute(db)
}
