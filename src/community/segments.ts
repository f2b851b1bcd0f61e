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
import { type Kysely, type RawBuilder, sql } from 'kysely'
import { noJit } from '../db/keyed-joins.js'
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

/** The segment expression for `now` over `members m` (SQL; one evaluation per member). */
function segmentCase(now: Date, t: SegmentThresholds, timeZone: string) {
  const ago = (days: number) => sql`${now}::timestamptz - make_interval(days => ${days})`
  const activity = sql`coalesce(m.last_active_at, m.first_seen_at)`
  const yesterday = addDays(localDay(now, timeZone), -1)
  const streak =
    t.loyalStreakDays > 0
      ? sql`or exists (select 1 from checkins c where c.member_id = m.id
          and c.day >= ${yesterday}::date and c.streak >= ${t.loyalStreakDays})`
      : sql``
  return sql<Segment>`case
    when not m.subscribed and (m.subscribed_at is not null
      or m.unsubscribed_at is not null or m.last_inbound_at is not null) then 'churned'
    when ${activity} <= ${ago(t.dormantDays)} then 'dormant'
    when ${activity} <= ${ago(t.atRiskDays)} then 'at_risk'
    when coalesce(m.subscribed_at, m.first_seen_at) >= ${ago(t.newDays)} then 'new'
    when m.purchase_count >= ${t.loyalPurchases} ${streak} then 'loyal'
    when ${activity} >= ${ago(t.activeDays)} then 'active'
    -- quiet for activeDays to atRiskDays: no stage of its own, not at risk yet
    else 'active'
  end`
}

/**
 * Waits for the recomputes in progress and holds the next ones off until `trx` ends (a
 * transaction-scoped advisory lock): what they committed is visible to the statements after it.
 */
export async function lockSegmentRecomputes(trx: Kysely<Database>): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtext('quanzi:recompute-segments'))`.execute(trx)
}

/**
 * Recomputes every member's segment (all accounts, or one; all members, or the id range `ids`);
 * returns how many changed. Segments live in `member_segments` (narrow rows: moving a member does
 * not rewrite its `members` row); members whose segment is unchanged are not written, a member's
 * first segment is inserted, and each change is recorded in `segment_transitions` by the same
 * statement. Recomputes run one at a time (a transaction-scoped advisory lock), so each
 * transition's `from_segment` is the segment the member really left. Given a transaction, runs in
 * it (a chunk of the job, with its cursor).
 * @example await recomputeSegments(db, { now: clock.now(), thresholds: config.segments, timeZone })
 */
export async function recomputeSegments(
  db: Kysely<Database>,
  o: RecomputeOptions,
): Promise<number> {
  const recompute = async (trx: Kysely<Database>) => {
    // Taken before the statement's snapshot: a concurrent recompute has committed by then.
    await lockSegmentRecomputes(trx)
    await recomputeSettings(trx)
    const { rows } = await recomputeStatement(o).execute(trx)
    return rows[0]!.changed
  }
  return db.isTransaction ? recompute(db) : db.transaction().execute(recompute)
}

/**
 * The planner settings a recompute runs with, for the rest of `trx` (its plan tests plan the
 * statement under them too: src/community/segment-plans.test.ts).
 */
export async function recomputeSettings(trx: Kysely<Database>): Promise<void> {
  // One pass over simple expressions: compiling them (JIT, chosen for a big table) costs more
  // than it saves — about a second of a five-second first recompute over 1,000,000 members.
  await noJit(trx)
  // Members and their segments meet in one hash join: 1,000,000 of them need ~55 MB to join in
  // one batch instead of spilling to disk (recomputes run one at a time).
  await sql`set local work_mem = '64MB'`.execute(trx)
}

/** What {@link recomputeSegments} recomputes, and as of when. */
export interface RecomputeOptions {
  now: Date
  thresholds: SegmentThresholds
  timeZone: string
  appid?: string
  /** Only members with `after < id <= through` (no upper bound when `through` is null). */
  ids?: { after: number; through: number | null }
}

/**
 * The recompute itself, one statement: segments computed, moves and first placements written,
 * transitions recorded; answers how many changed. A chunk's id range bounds both sides of the join:
 * on `members` alone, the planner joined a chunk by hashing it and reading every segment row
 * written so far (by the job's earlier chunks, or a night before), so a first compute over
 * 1,000,000 members in 200 chunks read about 100,000,000 segment rows (bench/README.md, session 32).
 */
export function recomputeStatement(o: RecomputeOptions) {
  const range = (column: RawBuilder<unknown>) => [
    ...(o.ids ? [sql`${column} > ${o.ids.after}`] : []),
    ...(o.ids?.through != null ? [sql`${column} <= ${o.ids.through}`] : []),
  ]
  const where = [...(o.appid ? [sql`m.appid = ${o.appid}`] : []), ...range(sql.ref('m.id'))]
  const segmentsInRange = range(sql.ref('s.member_id'))
  return sql<{ changed: number }>`
    with changed as (
      select * from (
        select m.id, m.appid, s.segment as previous, s.member_id is not null as known,
          ${segmentCase(o.now, o.thresholds, o.timeZone)} as segment
        from members m left join member_segments s on s.member_id = m.id
          ${segmentsInRange.length > 0 ? sql`and ${sql.join(segmentsInRange, sql` and `)}` : sql``}
        ${where.length > 0 ? sql`where ${sql.join(where, sql` and `)}` : sql``}
      ) computed
      where previous is distinct from segment
    ), moved as (
      -- by key, one probe per moved member (an UPDATE … FROM joins all segments by hash)
      insert into member_segments (member_id, appid, segment, since)
      select id, appid, segment, ${o.now} from changed where known
      on conflict (member_id) do update set segment = excluded.segment, since = excluded.since
    ), placed as (
      insert into member_segments (member_id, appid, segment, since)
      select id, appid, segment, ${o.now} from changed where not known
    ), recorded as (
      insert into segment_transitions (appid, member_id, from_segment, to_segment, at)
      select appid, id, previous, segment, ${o.now} from changed
    )
    select count(*)::int as changed from changed`
}

/** Members per segment of an account (null: not computed yet). */
export async function segmentCounts(db: Kysely<Database>, appid: string) {
  const rows = await db
    .selectFrom('members as m')
    .leftJoin('member_segments as s', 's.member_id', 'm.id')
    .select(['s.segment', (eb) => eb.fn.countAll<number>().as('n')])
    .where('m.appid', '=', appid)
    .groupBy('s.segment')
    .execute()
  const counts: Record<string, number> = Object.fromEntries(SEGMENTS.map((s) => [s, 0]))
  for (const r of rows) counts[r.segment ?? 'uncomputed'] = Number(r.n)
  return counts
}
