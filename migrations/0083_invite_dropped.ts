import { type Kysely, sql } from 'kysely'

/**
 * An invite dropped at qualification is kept, marked, instead of deleted (src/community/invites.ts
 * `qualifyInvite`): status `dropped`, with `drop_reason` (`known_before`: the invitee turned out to
 * be a person the community knew under another row) and `dropped_at`. It stays attributed (the
 * analytics days that counted it in `invites.attributed` stay right when rebuilt) but is never
 * pending or qualified, pays no one and is no link of the invite tree. The down deletes dropped
 * invites, as the code before it did.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table invites drop constraint invites_status_check,
    add column drop_reason text, add column dropped_at timestamptz,
    add constraint invites_status_check check (status in ('pending', 'qualified', 'dropped')),
    add constraint invites_dropped_check check ((status = 'dropped')
      = (drop_reason is not null and dropped_at is not null))`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`delete from invites where status = 'dropped'`.execute(db)
  await sql`alter table invites drop constraint invites_dropped_check,
    drop constraint invites_status_check,
    drop column drop_reason, drop column dropped_at,
    add constraint invites_status_check check (status in ('pending', 'qualified'))`.execute(db)
}
