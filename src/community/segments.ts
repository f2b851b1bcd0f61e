/**
 * Lifecycle segments (the operations plan's lifecycle), recomputed in one set-based statement (no
 * rows through the application) that moves only the members whose segment changed, stamps when
 * they entered it and records each move in `segment_transitions`. First match wins:
 *
 *   churned   unfollowed: not subscribed, and known to have followed once (a follow or unfollow
 *             event, or a message — only followers can write to an account). However it was
 *             learnt: an unfollow event, or a 43004 "not following" from the API.
 *   dormant   no activity for `dormantDays` (90) or more
 *   at_risk   no activity for `atRiskDays` (30) or more — buyers too
 *   new       followed at most `newDays` (7) ago (`subscribed_at`, the latest follow; else
 *             `first_seen_at`)
 *   loyal     repeat purchases (`loyalPurchases`, 2, or more) or sustained activity: a running
 *             check-in streak of `loyalStreakDays` (14) or more, i.e. a check-in today or
 *             yesterday (community days) that long; 0 turns the streak rule off
 *   active    activity within `activeDays` (7) — and, as no stage lies between active and at_risk,
 *             also members quiet for longer but less than `atRiskDays`: they are not at risk yet
 *
 * "Activity" is `last_active_at` (any member action), or `first_seen_at` for members who never
 * acted. Members never known to follow (WeCom contacts, mini-program users) are never churned; the
 * other rules apply to them. The thresholds come from configuration (SEGMENT_*).
 */
import { type Kysely, sql } from 'kysely'
import type { Database, Segment } from '../db/schema.js'
import { addDays, localDay } from './community-time.js'

export interface SegmentThresholds {
  /** dormant: no activity for at least this many days. */
  dormantDays: number
  /** at_risk: no activity for at least this many days (less than `dormantDays`). */
  atRiskDays: number
  /** new: followed at most this many days ago. */
  newDays: number
  /** active: activity within this many days (at most `atRiskDays`). */
  activeDays: number
  /** loyal: at least this many paid orders. */
  loyalPurchases: number
  /** loyal: a running check-in streak of at least this many days; 0 = purchases only. */
  loyalStreakDays: number
}

export const DEFAULT_SEGMENT_THRESHOLDS: SegmentThresholds = {
  dormantDays: 90,
  atRiskDays: 30,
  newDays: 7,
  activeDays: 7,
  loyalPurchases: 2,
  loyalStreakDays: 14,
}

export const SEGMENTS: readonly Segment[] = [
  'new',
  'active',
  'loyal',
  'at_risk',
  'dormant',
  'churned',
]

/** The segment expression for `now` over `members` (SQL; one evaluation per member). */
function segmentCase(now: Date, t: SegmentThresholds, timeZone: string) {
  const ago = (days: number) => sql`${now}::timestamptz - make_interval(days => ${days})`
  const activity = sql`coalesce(members.last_active_at, members.first_seen_at)`
  const yesterday = addDays(localDay(now, timeZone), -1)
  const streak =
    t.loyalStreakDays > 0
      ? sql`or exists (select 1 from checkins c where c.member_id = members.id
          and c.day >= ${yesterday}::date and c.streak >= ${t.loyalStreakDays})`
      : sql``
  return sql<Segment>`case
    when not members.subscribed and (members.subscribed_at is not null
      or members.unsubscribed_at is not null or members.last_inbound_at is not null) then 'churned'
    when ${activity} <= ${ago(t.dormantDays)} then 'dormant'
    when ${activity} <= ${ago(t.atRiskDays)} then 'at_risk'
    when coalesce(members.subscribed_at, members.first_seen_at) >= ${ago(t.newDays)} then 'new'
    when members.purchase_count >= ${t.loyalPurchases} ${streak} then 'loyal'
    when ${activity} >= ${ago(t.activeDays)} then 'active'
    -- quiet for activeDays to atRiskDays: no stage of its own, not at risk yet
    else 'active'
  end`
}

/**
 * Recomputes every member's segment (all accounts, or one; all members, or the id range `ids`);
 * returns how many changed. Members whose segment is unchanged are not written; each change is
 * recorded in `segment_transitions` by the same statement. Recomputes run one at a time (a
 * transaction-scoped advisory lock), so each transition's `from_segment` is the segment the member
 * really left. Given a transaction, runs in it (a chunk of the job, with its cursor).
 * @example await recomputeSegments(db, { now: clock.now(), thresholds: config.segments, timeZone })
 */
export async function recomputeSegments(
  db: Kysely<Database>,
  o: {
    now: Date
    thresholds: SegmentThresholds
    timeZone: string
    appid?: string
    /** Only members with `after < id <= through` (no upper bound when `through` is null). */
    ids?: { after: number; through: number | null }
  },
): Promise<number> {
  const where = [
    ...(o.appid ? [sql`members.appid = ${o.appid}`] : []),
    ...(o.ids ? [sql`members.id > ${o.ids.after}`] : []),
    ...(o.ids?.through != null ? [sql`members.id <= ${o.ids.through}`] : []),
  ]
  const recompute = async (trx: Kysely<Database>) => {
    // Taken before the statement's snapshot: a concurrent recompute has committed by then.
    await sql`select pg_advisory_xact_lock(hashtext('quanzi:recompute-segments'))`.execute(trx)
    const { rows } = await sql<{ changed: number }>`
      with computed as (
        select members.id, members.appid, members.segment as previous,
          ${segmentCase(o.now, o.thresholds, o.timeZone)} as segment
        from members
        ${where.length > 0 ? sql`where ${sql.join(where, sql` and `)}` : sql``}
      ), changed as (
        update members m set segment = c.segment, segment_since = ${o.now}
        from computed c
        where m.id = c.id and m.segment is distinct from c.segment
        returning m.id, m.appid, c.previous, c.segment
      ), recorded as (
        insert into segment_transitions (appid, member_id, from_segment, to_segment, at)
        select appid, id, previous, segment, ${o.now} from changed
      )
      select count(*)::int as changed from changed`.execute(trx)
    return rows[0]!.changed
  }
  return db.isTransaction ? recompute(db) : db.transaction().execute(recompute)
}

/** Members per segment of an account (null: not computed yet). */
export async function segmentCounts(db: Kysely<Database>, appid: string) {
  const rows = await db
    .selectFrom('members')
    .select(['segment', (eb) => eb.fn.countAll<number>().as('n')])
    .where('appid', '=', appid)
    .groupBy('segment')
    .execute()
  const counts: Record<string, number> = Object.fromEntries(SEGMENTS.map((s) => [s, 0]))
  for (const r of rows) counts[r.segment ?? 'uncomputed'] = Number(r.n)
  return counts
}
