import { type Kysely, sql } from 'kysely'

/**
 * Every enqueued recipient in one outcome of the reports, and a retention for the audit log:
 *
 * - `campaign_rollups.withdrawn_opted_out`, `.cancelled`, `.unknown`: the pruned recipients whose
 *   push was withdrawn unsent because the member opted out (退订) after it was enqueued, cancelled
 *   unsent (the campaign was finished first), or whose outcome is unknown. Rollups written before
 *   counted these nowhere (enqueued, but neither sent nor failed) and their outbox items are gone,
 *   so what they hold apart from sent and failed is counted `unknown`: not sent by us, or not
 *   known to have been.
 * - `push_outbox_campaign_withdrawn_idx`: campaign-lane items cancelled or unknown by when they
 *   settled, so the campaigns family finds a day's by index (as 0039's index does for sent,
 *   failed and skipped ones).
 * - `audit_log_refused_created_idx`, `audit_log_action_created_idx`: audit entries by age, refused
 *   calls apart from the rest, so the nightly retention deletes each kind's old entries by index
 *   (0005's index leads with the account) instead of scanning the table for every batch.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table campaign_rollups
    add column withdrawn_opted_out integer not null default 0,
    add column cancelled integer not null default 0,
    add column unknown integer not null default 0`.execute(db)
  await sql`update campaign_rollups set unknown = greatest(enqueued - sent - failed, 0)`.execute(db)
  await sql`create index push_outbox_campaign_withdrawn_idx on push_outbox (appid, next_attempt_at)
    where lane = 2 and status in ('cancelled', 'unknown')`.execute(db)
  await sql`create index audit_log_refused_created_idx on audit_log (created_at)
    where action = 'refused'`.execute(db)
  await sql`create index audit_log_action_created_idx on audit_log (created_at)
    where action <> 'refused'`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index audit_log_action_created_idx`.execute(db)
  await sql`drop index audit_log_refused_created_idx`.execute(db)
  await sql`drop index push_outbox_campaign_withdrawn_idx`.execute(db)
  await sql`alter table campaign_rollups
    drop column unknown, drop column cancelled, drop column withdrawn_opted_out`.execute(db)
}
