/**
 * Lifecycle segments, recomputed in one set-based UPDATE (no rows through the application) that
 * writes only the members whose segment changed, stamping when they entered it. First match wins:
 *
 *   churned   unfollowed the account
 *   dormant   no activity for more than `dormantDays` (90)
 *   loyal     more than `loyalPurchases` (5) purchases, the last within `loyalDays` (30)
 *   new       joined within `newDays` (7) and never purchased
 *   active    active within `activeDays` (7)
 *   at_risk   no activity for more than `atRiskDays` (30) and never purchased
 *   active    everyone else (active within the last 90 days, not matched above)
 *
 * "Activity" is `last_active_at` (any member action), or `first_seen_at` for members who never
 * acted. The thresholds come from configuration (SEGMENT_*).
 */
import { type Kysely, sql } from 'kysely'
import type { Database, Segment } from '../db/schema.js'

export interface SegmentThresholds {
  dormantDays: number
  atRiskDays: number
  newDays: number
  activeDays: number
  loyalPurchases: number
  loyalDays: number
}

export const DEFAULT_SEGMENT_THRESHOLDS: SegmentThresholds = {
  dormantDays: 90,
  atRiskDays: 30,
  newDays: 7,
  activeDays: 7,
  loyalPurchases: 5,
  loyalDays: 30,
}

export const SEGMENTS: readonly Segment[] = [
  'new',
  'active',
  'loyal',
  'at_risk',
  'dormant',
  'churned',
]

/** The segment expression for `now` (SQL; one evaluation per member). */
function segmentCase(now: Date, t: SegmentThresholds) {
  const ago = (days: number) => sql`${now}::timestamptz - make_interval(days => ${days})`
  const activity = sql`coalesce(last_active_at, first_seen_at)`
  return sql<Segment>`case
    when not subscribed and unsubscribed_at is not null then 'churned'
    when ${activity} < ${ago(t.dormantDays)} then 'dormant'
    when purchase_count > ${t.loyalPurchases} and last_purchased_at >= ${ago(t.loyalDays)} then 'loyal'
    when purchase_count = 0 and first_seen_at >= ${ago(t.newDays)} then 'new'
    when ${activity} >= ${ago(t.activeDays)} then 'active'
    when ${activity} < ${ago(t.atRiskDays)} and purchase_count = 0 then 'at_risk'
    else 'active'
  end`
}

/**
 * Recomputes every member's segment (all accounts, or one); returns how many changed. Members whose
 * segment is unchanged are not written.
 */
export async function recomputeSegments(
  db: Kysely<Database>,
  o: { now: Date; thresholds: SegmentThresholds; appid?: string },
): Promise<number> {
  const { rows } = await sql<{ changed: number }>`
    with computed as (
      select id, ${segmentCase(o.now, o.thresholds)} as segment from members
      ${o.appid ? sql`where appid = ${o.appid}` : sql``}
    ), changed as (
      update members m set segment = c.segment, segment_since = ${o.now}
      from computed c
      where m.id = c.id and m.segment is distinct from c.segment
      returning 1
    )
    select count(*)::int as changed from changed`.execute(db)
  return rows[0]!.changed
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
