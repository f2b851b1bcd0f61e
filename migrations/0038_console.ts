import { type Kysely, sql } from 'kysely'

/**
 * The operator console (issue #17): who may sign in, their sessions, and failed sign-ins.
 *
 *   operators               one row per person: a unique name, a role (owner manages operators,
 *                           operator runs the community, viewer only reads), a self-describing
 *                           password hash (`pbkdf2-sha256$<iterations>$<salt>$<hash>`), a disabled
 *                           flag, and for role operator an optional cap on points granted a day.
 *   console_sessions        a signed-in browser: only the SHA-256 of the cookie's token is kept, with
 *                           the CSRF token its forms carry; refused after an idle gap or an absolute
 *                           age (src/console/sessions.ts), or once revoked.
 *   console_login_failures  failed sign-ins by name and client address, counted over a window to
 *                           refuse guessing (src/console/login-throttle.ts).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create table operators (
    id bigint generated always as identity primary key,
    name text not null unique check (name ~ '^[A-Za-z0-9_.@-]{2,40}$'),
    role text not null check (role in ('owner', 'operator', 'viewer')),
    password_hash text not null,
    disabled boolean not null default false,
    daily_grant_limit integer check (daily_grant_limit >= 0),
    created_at timestamptz not null,
    updated_at timestamptz not null
  )`.execute(db)
  await sql`create table console_sessions (
    id bigint generated always as identity primary key,
    token_hash text not null unique,
    operator_id bigint not null references operators (id),
    csrf_token text not null,
    created_at timestamptz not null,
    last_seen_at timestamptz not null,
    revoked_at timestamptz
  )`.execute(db)
  await sql`create index console_sessions_operator_idx on console_sessions (operator_id)`.execute(
    db,
  )
  await sql`create table console_login_failures (
    id bigint generated always as identity primary key,
    name text not null,
    client_address text not null,
    failed_at timestamptz not null
  )`.execute(db)
  await sql`create index console_login_failures_name_idx
    on console_login_failures (name, failed_at)`.execute(db)
  await sql`create index console_login_failures_address_idx
    on console_login_failures (client_address, failed_at)`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table console_login_failures, console_sessions, operators`.execute(db)
}
