/**
 * What the console's member page shows besides the ledger (the member found by account-members.ts):
 * their tags, recent orders, activity sign-ups and segment history — each bounded, newest first.
 */
import type { Kysely } from 'kysely'
import type { Database, Member } from '../../db/schema.js'

/** How many rows each list of the profile holds at most. */
export const PROFILE_LIST_MAX = 20

/**
 * The member's WeChat tag ids, last {@link PROFILE_LIST_MAX} orders (with the product's
 * description), activity sign-ups (with the activity's name), the current segment (undefined before
 * the first recompute) and segment changes.
 */
export async function memberProfile(db: Kysely<Database>, member: Member) {
  const [tags, orders, signups, segments, segment] = await Promise.all([
    db
      .selectFrom('member_tags')
      .select(['tagid', 'tagged_at'])
      .where('member_id', '=', member.id)
      .orderBy('tagid')
      .execute(),
    db
      .selectFrom('orders')
      .select([
        'out_trade_no',
        'description',
        'kind',
        'amount_fen',
        'refunded_fen',
        'status',
        'created_at',
        'paid_at',
      ])
      .where('member_id', '=', member.id)
      .orderBy('id', 'desc')
      .limit(PROFILE_LIST_MAX)
      .execute(),
    db
      .selectFrom('activity_signups as s')
      .innerJoin('activities as a', 'a.id', 's.activity_id')
      .select(['a.name', 's.period', 's.status', 's.created_at'])
      .where('s.member_id', '=', member.id)
      .orderBy('s.created_at', 'desc')
      .limit(PROFILE_LIST_MAX)
      .execute(),
    db
      .selectFrom('segment_transitions')
      .select(['from_segment', 'to_segment', 'at'])
      .where('member_id', '=', member.id)
      .orderBy('id', 'desc')
      .limit(PROFILE_LIST_MAX)
      .execute(),
    db
      .selectFrom('member_segments')
      .select(['segment', 'since'])
      .where('member_id', '=', member.id)
      .executeTakeFirst(),
  ])
  return { tags, orders, signups, segments, segment }
}
