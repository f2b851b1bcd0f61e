import { type Kysely, sql } from 'kysely'

/**
 * Campaigns: template pushes to an audience on a schedule (cron or one-shot), optionally split into
 * A/B variants; one row per run (slot) and per recipient, with tracked-link clicks and conversions.
 * Members gain the marketing opt-out (退订 / 订阅) and the time of their last campaign push (the
 * frequency cap).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('members')
    .addColumn('marketing_opt_out', 'boolean', (col) => col.notNull().defaultTo(false))
    .addColumn('last_campaign_at', 'timestamptz')
    .execute()

  await db.schema
    .createTable('campaigns')
    .addColumn('id', 'bigint', (col) => col.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('appid', 'text', (col) => col.notNull())
    .addColumn('name', 'text', (col) => col.notNull())
    .addColumn('status', 'text', (col) =>
      col.notNull().check(sql`status in ('draft', 'scheduled', 'running', 'paused', 'finished')`),
    )
    // {segment?, tag?, group?} or {} for everyone.
    .addColumn('audience', 'text', (col) => col.notNull())
    // [{key, weight, template: {template_id, data, url?, miniprogram?}}]
    .addColumn('variants', 'text', (col) => col.notNull())
    .addColumn('schedule_cron', 'text')
    .addColumn('run_at', 'timestamptz')
    .addColumn('conversion_days', 'integer', (col) => col.notNull().defaultTo(7))
    .addColumn('created_at', 'timestamptz', (col) => col.notNull())
    .addColumn('updated_at', 'timestamptz', (col) => col.notNull())
    .addCheckConstraint('campaigns_schedule', sql`(schedule_cron is null) <> (run_at is null)`)
    .execute()

  await db.schema
    .createTable('campaign_runs')
    .addColumn('campaign_id', 'bigint', (col) => col.notNull().references('campaigns.id'))
    .addColumn('slot', 'timestamptz', (col) => col.notNull())
    .addColumn('status', 'text', (col) =>
      col.notNull().check(sql`status in ('enqueuing', 'enqueued')`),
    )
    // A crashed enqueuer's run is continued by the next one after this.
    .addColumn('lease_until', 'timestamptz', (col) => col.notNull())
    .addColumn('created_at', 'timestamptz', (col) => col.notNull())
    .addColumn('finished_at', 'timestamptz')
    .addPrimaryKeyConstraint('campaign_runs_pkey', ['campaign_id', 'slot'])
    .execute()

  await db.schema
    .createTable('campaign_recipients')
    .addColumn('campaign_id', 'bigint', (col) => col.notNull().references('campaigns.id'))
    .addColumn('slot', 'timestamptz', (col) => col.notNull())
    .addColumn('member_id', 'bigint', (col) => col.notNull().references('members.id'))
    .addColumn('variant', 'text', (col) => col.notNull())
    // enqueued, or why not: capped (frequency cap), opted_out, unreachable
    .addColumn('outcome', 'text', (col) =>
      col.notNull().check(sql`outcome in ('enqueued', 'capped', 'opted_out', 'unreachable')`),
    )
    .addColumn('outbox_source', 'text')
    .addColumn('link_code', 'text', (col) => col.unique())
    .addColumn('target_url', 'text')
    .addColumn('enqueued_at', 'timestamptz', (col) => col.notNull())
    .addColumn('clicks', 'integer', (col) => col.notNull().defaultTo(0))
    .addColumn('clicked_at', 'timestamptz')
    .addColumn('converted_at', 'timestamptz')
    .addPrimaryKeyConstraint('campaign_recipients_pkey', ['campaign_id', 'slot', 'member_id'])
    .execute()
  await db.schema
    .createIndex('campaign_recipients_open_idx')
    .on('campaign_recipients')
    .column('member_id')
    .where(sql.ref('converted_at'), 'is', null)
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['campaign_recipients', 'campaign_runs', 'campaigns'])
    await db.schema.dropTable(table).execute()
  await db.schema
    .alterTable('members')
    .dropColumn('last_campaign_at')
    .dropColumn('marketing_opt_out')
    .execute()
}
