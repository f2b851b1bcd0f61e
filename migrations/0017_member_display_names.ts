import { type Kysely, sql } from 'kysely'

/**
 * Members' display names (`昵称`), shown in the ranking and in 我的. Checked in code first
 * (src/community/display-names.ts); the constraint keeps the length and the one-line rule.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('members')
    .addColumn('display_name', 'text', (col) =>
      col.check(sql`char_length(display_name) between 1 and 16 and display_name !~ '[[:cntrl:]]'`),
    )
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('members').dropColumn('display_name').execute()
}
