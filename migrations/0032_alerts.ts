import { type Kysely, sql } from 'kysely'

/**
 * Alerts (issue #16 item 5), evaluated every minute by the `alerts` job (src/analytics/alerts.ts):
 *
 *   alert_settings  per account, the operator's overrides of the rules' defaults (JSON, validated
 *                   by the operator API and again when read); the defaults live in code.
 *   alerts          one row per episode: opened when a rule's figure crosses its threshold, closed
 *                   when it recovers. The partial unique index on (appid, rule, dim) where open IS
 *                   the episode: several evaluators at once open it once. `last_notified_at` is
 *                   moved by a conditional update, so repeats are at most one per interval however
 *                   many instances evaluate.
 *   alert_samples   figures the evaluator records each minute to compare with later (today's active
 *                   members so far, read a week later as "the same time last week"), kept 8 days.
 *   traffic_counts  per account and minute, what no table keeps: pushes the webhook refused and
 *                   outbox sends by result, added by each process every few seconds
 *                   (src/analytics/traffic-counter.ts), kept 2 days.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create table alert_settings (
    appid text primary key,
    settings text not null,
    updated_at timestamptz not null
  )`.execute(db)
  await sql`create table alerts (
    id bigserial primary key,
    appid text not null,
    rule text not null,
    dim text not null default '',
    status text not null check (status in ('open', 'closed')),
    opened_at timestamptz not null,
    last_notified_at timestamptz,
    notifications integer not null default 0,
    closed_at timestamptz,
    value double precision not null,
    threshold double precision not null,
    message text not null,
    evaluated_at timestamptz not null,
    delivery text
  )`.execute(db)
  await sql`create unique index alerts_open_key on alerts (appid, rule, dim)
    where status = 'open'`.execute(db)
  await sql`create index alerts_recent_idx on alerts (appid, opened_at)`.execute(db)
  await sql`create table alert_samples (
    appid text not null,
    metric text not null,
    at timestamptz not null,
    value double precision not null,
    primary key (appid, metric, at)
  )`.execute(db)
  await sql`create table traffic_counts (
    appid text not null,
    minute timestamptz not null,
    name text not null check (name in ('push_refused', 'send_sent', 'send_failed')),
    n bigint not null,
    primary key (appid, minute, name)
  )`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table traffic_counts, alert_samples, alerts, alert_settings`.execute(db)
}
