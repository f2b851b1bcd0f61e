/** Members placed in a lifecycle segment as a recompute leaves them (`member_segments` rows). */
import type { Kysely } from 'kysely'
import type { Database, Segment } from '../src/db/schema.js'

/** Puts the account's members `ids` in `segment` (since `since`), replacing a segment they had. */
export async function placeInSegment(
  db: Kysely<Database>,
  appid: string,
  ids: readonly number[],
  segment: Segment,
  since: Date = new Date('2026-01-01T00:00:00Z'),
): Promise<void> {
  if (ids.length === 0) return
  await db
    .insertInto('member_segments')
    .values(ids.map((member_id) => ({ member_id, appid, segment, since })))
    .onConflict((oc) => oc.column('member_id').doUpdateSet({ segment, since }))
    .execute()
}
