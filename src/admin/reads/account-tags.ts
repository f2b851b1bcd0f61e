/** The WeChat tags an account has set through us (member_tags): what the console offers to pick. */
import type { Kysely } from 'kysely'
import { sql } from 'kysely'
import type { Database } from '../../db/schema.js'

/** WeChat allows at most 100 tags per account. */
export const ACCOUNT_TAGS_MAX = 100

/**
 * The account's tag ids in use here, smallest first (at most {@link ACCOUNT_TAGS_MAX}). Walks the
 * distinct tag ids on `member_tags_tagid_idx` one index probe each (a loose index scan), so it
 * costs the same with a million tagged members as with ten.
 */
export async function accountTags(db: Kysely<Database>, appid: string): Promise<number[]> {
  const { rows } = await sql<{ tagid: number }>`
    with recursive tags(tagid, n) as (
      (select tagid, 1 from member_tags order by tagid limit 1)
      union all
      select (select x.tagid from member_tags x where x.tagid > tags.tagid order by x.tagid limit 1),
        tags.n + 1
      from tags where tags.tagid is not null and tags.n < ${ACCOUNT_TAGS_MAX * 10}
    )
    select tags.tagid from tags
    where tags.tagid is not null and exists (
      select 1 from member_tags t join members m on m.id = t.member_id
      where t.tagid = tags.tagid and m.appid = ${appid})
    order by tags.tagid
    limit ${ACCOUNT_TAGS_MAX}`.execute(db)
  return rows.map((r) => Number(r.tagid))
}
