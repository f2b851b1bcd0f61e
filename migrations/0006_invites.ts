import { type Kysely, sql } from 'kysely'

/**
 * Invites: a stable code per member, the member's cached invite QR per campaign, share events (one
 * per member, day and campaign) and attributed invites — one per invitee, ever (`invitee_key`:
 * `u:<unionid>` when known, else `o:<appid>:<openid>`).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('invite_codes')
    .addColumn('member_id', 'bigint', (col) => col.primaryKey().references('members.id'))
    .addColumn('appid', 'text', (col) => col.notNull())
    .addColumn('code', 'text', (col) => col.notNull())
    .addColumn('created_at', 'timestamptz', (col) => col.notNull())
    .addUniqueConstraint('invite_codes_appid_code_key', ['appid', 'code'])
    .execute()

  // `issuing_until` is a lease: the request that sets it calls qrcode/create (no transaction held
  // across the call); the others wait for the row to be filled in.
  await db.schema
    .createTable('invite_qr')
    .addColumn('member_id', 'bigint', (col) => col.notNull().references('members.id'))
    .addColumn('campaign', 'text', (col) => col.notNull().defaultTo(''))
    .addColumn('ticket', 'text')
    .addColumn('url', 'text')
    .addColumn('image_url', 'text')
    .addColumn('expires_at', 'timestamptz', (col) => col.notNull())
    .addColumn('issued_at', 'timestamptz')
    .addColumn('issuing_until', 'timestamptz')
    .addPrimaryKeyConstraint('invite_qr_pkey', ['member_id', 'campaign'])
    .execute()

  await db.schema
    .createTable('invite_shares')
    .addColumn('member_id', 'bigint', (col) => col.notNull().references('members.id'))
    .addColumn('day', 'date', (col) => col.notNull())
    .addColumn('campaign', 'text', (col) => col.notNull().defaultTo(''))
    .addColumn('appid', 'text', (col) => col.notNull())
    .addPrimaryKeyConstraint('invite_shares_pkey', ['member_id', 'day', 'campaign'])
    .execute()
  await db.schema
    .createIndex('invite_shares_appid_day_idx')
    .on('invite_shares')
    .columns(['appid', 'day'])
    .execute()

  await db.schema
    .createTable('invites')
    .addColumn('id', 'bigint', (col) => col.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('appid', 'text', (col) => col.notNull())
    .addColumn('invitee_key', 'text', (col) => col.notNull().unique())
    .addColumn('invitee_member_id', 'bigint', (col) => col.notNull().references('members.id'))
    .addColumn('inviter_member_id', 'bigint', (col) => col.notNull().references('members.id'))
    .addColumn('campaign', 'text', (col) => col.notNull().defaultTo(''))
    .addColumn('source', 'text', (col) =>
      col.notNull().check(sql`source in ('oa_qr', 'group_join')`),
    )
    .addColumn('scene', 'text')
    .addColumn('status', 'text', (col) =>
      col.notNull().check(sql`status in ('pending', 'qualified')`),
    )
    .addColumn('created_at', 'timestamptz', (col) => col.notNull())
    .addColumn('qualified_at', 'timestamptz')
    .addCheckConstraint('invites_not_self', sql`invitee_member_id <> inviter_member_id`)
    .execute()
  await db.schema
    .createIndex('invites_invitee_idx')
    .on('invites')
    .column('invitee_member_id')
    .execute()
  await db.schema
    .createIndex('invites_inviter_idx')
    .on('invites')
    .column('inviter_member_id')
    .execute()
  await db.schema
    .createIndex('invites_appid_created_idx')
    .on('invites')
    .columns(['appid', 'created_at'])
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['invites', 'invite_shares', 'invite_qr', 'invite_codes'])
    await db.schema.dropTable(table).execute()
}
