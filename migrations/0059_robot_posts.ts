import { type Kysely, sql } from 'kysely'

/**
 * One row per announcement posted through a group robot: (`source`, `chat_id`), claimed before the
 * robot's webhook is called (src/community/robot-posts.ts), so a retried message that announced —
 * a bridge event handled again after a later step failed — does not post it a second time.
 * `sending` until the webhook answers, then `sent`, or `failed` when no answer came (it may have
 * been posted: never posted again). A post the rate limit held or WeCom refused is not kept: the
 * retry may post it. Pruned with the inbound claims (a week).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create table robot_posts (
    source text not null,
    chat_id text not null,
    status text not null check (status in ('sending', 'sent', 'failed')),
    error text,
    created_at timestamptz not null,
    primary key (source, chat_id)
  )`.execute(db)
  await sql`create index robot_posts_created_idx on robot_posts (created_at)`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table robot_posts`.execute(db)
}
