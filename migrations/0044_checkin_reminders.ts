import { type Kysely, sql } from 'kysely'

/**
 * Check-in reminders (issue #19, part 3): one row per member who opted in (`提醒`, a subscribe-message
 * authorisation in the OA or the mini program).
 *
 * - `minute_of_day`: the chosen time in community minutes after midnight (default 20:00).
 * - `next_at`: the next instant the reminder is due. The `checkin-reminders` job takes due rows
 *   (`enabled and next_at <= slot`, `FOR UPDATE SKIP LOCKED`) and moves `next_at` to the next
 *   occurrence in the same statement, so a row is decided once per day whatever the number of job
 *   instances; the partial index keeps the selection an index range however many members opted in.
 * - `reminded_on`: the community day of the last reminder enqueued (at most one a day).
 * - `oa_template_id` / `oa_credits`: the OA subscribe-message (订阅通知) template the member accepted
 *   and how many one-time sends are left (each accept adds one; a send through it takes one).
 * - `mp_openid` / `mp_template_id` / `mp_credits`: the same for the mini program's authorisation
 *   (`wx.requestSubscribeMessage`), recorded through `POST /api/mp/reminders`.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create table checkin_reminders (
    member_id bigint primary key references members (id) on delete cascade,
    appid text not null,
    enabled boolean not null default true,
    minute_of_day smallint not null check (minute_of_day between 0 and 1439),
    next_at timestamptz not null,
    reminded_on date,
    oa_template_id text,
    oa_credits integer not null default 0 check (oa_credits >= 0),
    mp_openid text,
    mp_template_id text,
    mp_credits integer not null default 0 check (mp_credits >= 0),
    created_at timestamptz not null,
    updated_at timestamptz not null
  )`.execute(db)
  await sql`create index checkin_reminders_due_idx on checkin_reminders (next_at)
    where enabled`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table checkin_reminders`.execute(db)
}
