/**
 * Daily rollups: every figure an operator reads by day, as rows of `analytics_daily` (account,
 * metric, community day, dimension, value). One mechanism: each metric family is a SELECT over the
 * durable facts returning `(metric, dim, value)` rows for one community day; building a day runs
 * them all and replaces that day's rows in one transaction (idempotent, re-runnable for a past
 * day); today's partial figures are the same SELECTs read live, never stored.
 *
 * Money is integer fen; rates are fractions (0–1). Dimensions: '' is the total; others are named
 * per metric (a follow's source, a ledger rule, a streak bucket, a segment, `from>to`).
 *
 * Snapshot metrics (members' level and segment now) describe the moment of the build: they are
 * written when yesterday or today is built and kept as they were when an older day is rebuilt.
 * Followers in total and points outstanding are exact for any day (today's value minus what
 * changed after the day). Counts whose source rows only go away after the day (inbound events
 * pruned after a week, an invite QR's issue overwritten by its re-issue) are kept as built when a
 * rebuild finds fewer.
 *
 * The families and the metric catalogue live in `families/` (one file per concept).
 */
import { type Kysely, sql } from 'kysely'
import { addDays } from '../community/community-time.js'
import { noJit } from '../db/keyed-joins.js'
import type { Database } from '../db/schema.js'
import { activeOn, lockActivityDays } from './facts.js'
import { MESSAGE_METRICS } from './families/activity.js'
import { CAMPAIGN_EVENT_METRICS, prunedCampaignRuns } from './families/campaigns.js'
import type { DailyFigure, DayScope } from './families/day-scope.js'
import { CATALOGUE, FAMILIES } from './families/index.js'
import { QR_ISSUED_METRICS } from './families/invites.js'

export type { DailyFigure } from './families/day-scope.js'

/** Metrics whose value is the state at build time (not rebuilt for older days). */
export const SNAPSHOT_METRICS: readonly string[] = Object.values(FAMILIES)
  .filter((f) => f.snapshot)
  .flatMap((f) => Object.keys(f.metrics))

/**
 * Metrics kept as built when a day's campaign window holds pruned recipients (the enqueue-time
 * figures are not: they are read from the rollups of pruned runs too).
 */
const CAMPAIGN_METRICS = CAMPAIGN_EVENT_METRICS

/**
 * Counts read from rows that only go away once the day is over — never added to it later — each
 * with the figures derived from it (the count first): the messages (inbound events are pruned
 * after a week) and the invite QRs issued (a re-issue overwrites the row's `issued_at`). A
 * rebuild that finds a lower count than the day was built with keeps the group as built.
 */
const KEPT_WHEN_LOWER: readonly (readonly string[])[] = [MESSAGE_METRICS, QR_ISSUED_METRICS]

/** The family that computes a metric (`activity.wau` → reach, `segments.size` → segmentSizes …). */
export function familyOf(metric: string): string {
  return CATALOGUE[metric]?.family ?? metric.slice(0, metric.indexOf('.'))
}

/**
 * The figures of one community day, read from the facts: all families, or only `families` (a
 * live read computes only what is asked for). `snapshots: false` leaves out the state-now metrics.
 */
export async function computeDay(
  db: Kysely<Database>,
  s: DayScope,
  o: { snapshots?: boolean; families?: readonly string[] } = {},
): Promise<DailyFigure[]> {
  const names = Object.keys(FAMILIES).filter(
    (f) =>
      (o.families ? o.families.includes(f) : true) &&
      !(o.snapshots === false && FAMILIES[f]!.snapshot),
  )
  const out: DailyFigure[] = []
  // DAU is the denominator of several families' rates: counted once here, not in each of them.
  // Read from the one definition of an active member, as the build writes it (facts.ts).
  const { rows: dau } = await sql<{
    count: number
  }>`select count(*) as count from (${activeOn(s.appid, s.timeZone, s.day)}) a`.execute(db)
  const scope = { ...s, dau: Number(dau[0]!.count) }
  for (const name of names) {
    const { rows } = await FAMILIES[name]!.query(scope).execute(db)
    for (const r of rows) out.push({ metric: r.metric, dim: r.dim, value: Number(r.value) })
  }
  return out
}

/** A day already built with campaign figures whose window now holds pruned recipients. */
async function keepCampaignFigures(db: Kysely<Database>, s: DayScope): Promise<boolean> {
  if (!(await prunedCampaignRuns(db, s))) return false
  const built = await db
    .selectFrom('analytics_daily')
    .select('metric')
    .where('appid', '=', s.appid)
    .where('day', '=', s.day)
    .where('metric', 'in', CAMPAIGN_METRICS)
    .executeTakeFirst()
  return built !== undefined
}

/** The metrics of {@link KEPT_WHEN_LOWER} whose count was built higher than it is read now. */
async function lostCounts(
  db: Kysely<Database>,
  s: DayScope,
  figures: readonly DailyFigure[],
): Promise<string[]> {
  const built = await db
    .selectFrom('analytics_daily')
    .select(['metric', 'value'])
    .where('appid', '=', s.appid)
    .where('day', '=', s.day)
    .where('dim', '=', '')
    .where(
      'metric',
      'in',
      KEPT_WHEN_LOWER.map((g) => g[0]!),
    )
    .execute()
  return KEPT_WHEN_LOWER.filter(([count]) => {
    const was = built.find((b) => b.metric === count)
    const now = figures.find((f) => f.metric === count && f.dim === '')?.value ?? 0
    return was !== undefined && Number(was.value) > now
  }).flat()
}

/**
 * Builds (or rebuilds) one community day's rollup: the day's `member_days` are made what the one
 * definition of an active member says (facts.ts `activeDays`, which a live read uses: activity
 * kinds known only from other tables — check-ins made on the day, paid orders, activity sign-ups
 * — OR-ed in, a check-in or purchase kind those tables no longer hold taken back); then every
 * family's rows replace the day's in `analytics_daily`, in one transaction. Snapshot metrics are written only
 * when `day` is yesterday or today relative to `now`; campaign figures are kept as built (sent,
 * delivered, clicked, converted, quota used) once recipients of a run in the day's campaign
 * window were pruned; messages and invite QRs issued are kept as built when fewer are found
 * ({@link KEPT_WHEN_LOWER}). Holds the account's activity-days gate shared (facts.ts
 * `lockActivityDays`): a 绑定 merging a member's days into another's is never half-way in it.
 */
export async function buildDay(
  db: Kysely<Database>,
  s: DayScope & { now: Date; today: string },
): Promise<{ figures: number }> {
  const snapshots = s.day >= addDays(s.today, -1)
  return db.transaction().execute(async (trx) => {
    await noJit(trx)
    // Before any member_days row: a 绑定 moving a member's days waits for the build (facts.ts).
    await lockActivityDays(trx, s.appid, 'shared')
    // The day's member_days become what the one definition of an active member says (facts.ts
    // `activeDays`, which a live read of the day reads too): the kinds the day's check-ins, paid
    // orders and sign-ups hold OR-ed in, a check-in or purchase kind they no longer hold taken
    // back (a make-up, 补签, fills a missed day later and is no activity on it; an order a 绑定
    // moved to the follower), and a row left with no kind gone.
    await sql`with t as (${activeOn(s.appid, s.timeZone, s.day)}), up as (
        insert into member_days as d (appid, day, member_id, kinds)
        select ${s.appid}, day, member_id, kinds from t
        on conflict (appid, day, member_id) do update set kinds = excluded.kinds
        where d.kinds <> excluded.kinds
        returning 1
      )
      delete from member_days d
      where d.appid = ${s.appid} and d.day = ${s.day}::date
        and not exists (select 1 from t where t.member_id = d.member_id)`.execute(trx)
    let figures = await computeDay(trx, s, { snapshots })
    // Kept as built: snapshots of an older day; campaign figures once recipients were pruned;
    // counts whose source rows went away since the day was built.
    const keep = snapshots ? [] : [...SNAPSHOT_METRICS]
    const kept = await lostCounts(trx, s, figures)
    if (await keepCampaignFigures(trx, s)) kept.push(...CAMPAIGN_METRICS)
    if (kept.length > 0) {
      keep.push(...kept)
      figures = figures.filter((f) => !kept.includes(f.metric))
    }
    let del = trx
      .deleteFrom('analytics_daily')
      .where('appid', '=', s.appid)
      .where('day', '=', s.day)
    if (keep.length > 0) del = del.where('metric', 'not in', keep)
    await del.execute()
    if (figures.length > 0)
      await trx
        .insertInto('analytics_daily')
        .values(figures.map((f) => ({ appid: s.appid, day: s.day, ...f })))
        .execute()
    await trx
      .insertInto('analytics_days')
      .values({ appid: s.appid, day: s.day, built_at: s.now })
      .onConflict((oc) => oc.columns(['appid', 'day']).doUpdateSet({ built_at: s.now }))
      .execute()
    return { figures: figures.length }
  })
}
