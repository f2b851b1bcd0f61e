/**
 * The counts of many campaigns per variant, from the rollups — never from their recipients:
 *
 * - a campaign whose runs were all pruned: its `campaign_rollups` (what the report adds up);
 * - any other: the sum of its `campaigns.*` figures in `analytics_daily` over the built days since
 *   its first run, plus the days after the last built one (`asOf`) — the job's lag and today —
 *   read live by the campaigns family, at most `MAX_LIVE_DAYS` of them.
 *
 * Days of a campaign's span (its first run to the end of its last run's event window) that are
 * neither built nor read live are returned as `unbuilt`, for a warning: their events are missing.
 */
import { type Kysely, sql } from 'kysely'
import type { VariantCounts } from '../community/campaign-report.js'
import { MAX_CONVERSION_DAYS } from '../community/campaigns.js'
import { addDays } from '../community/community-time.js'
import type { Database } from '../db/schema.js'
import { FAMILIES } from './families/index.js'
import { daysBetween, dayText, type LiveReader, MAX_LIVE_DAYS } from './series.js'

/** Days after the last built one read live per request (the series' bound, series.ts). */
export { MAX_LIVE_DAYS }

/** A run's events are counted by day up to this many days after its slot's day. */
export const EVENT_WINDOW_DAYS = MAX_CONVERSION_DAYS + 1

const METRICS = Object.keys(FAMILIES.campaigns!.metrics)

/** A campaign to count: its first and last run's community days, whether all runs were pruned. */
export interface CampaignSpan {
  id: number
  firstDay: string
  lastDay: string
  pruned: boolean
}

/** Per campaign, its variants' counts (in the report's order) and its days not counted. */
export interface CampaignFigures {
  /** The last built day before today, null when none is. */
  asOf: string | null
  counts: Map<number, VariantCounts[]>
  unbuilt: Map<number, string[]>
}

/** Counts `campaigns` per variant from the rollups (one query, after the live days are read). */
export async function campaignFigures(
  db: Kysely<Database>,
  q: {
    appid: string
    today: string
    timeZone: string
    live: LiveReader
    campaigns: CampaignSpan[]
  },
): Promise<CampaignFigures> {
  const daily = q.campaigns.filter((c) => !c.pruned)
  const pruned = q.campaigns.filter((c) => c.pruned).map((c) => c.id)
  const last = await db
    .selectFrom('analytics_days')
    .select((eb) => eb.fn.max('day').as('day'))
    .where('appid', '=', q.appid)
    .where('day', '<', q.today)
    .executeTakeFirst()
  const asOf = last?.day ? dayText(last.day) : null
  const first = daily.map((c) => c.firstDay).sort()[0] ?? q.today
  const built = new Set<string>()
  if (daily.length > 0)
    for (const r of await db
      .selectFrom('analytics_days')
      .select('day')
      .where('appid', '=', q.appid)
      .where('day', '>=', first)
      .where('day', '<', q.today)
      .execute())
      built.add(dayText(r.day))
  const after = asOf && asOf >= first ? addDays(asOf, 1) : first
  const liveDays = daily.length > 0 ? daysBetween(after, q.today).slice(-MAX_LIVE_DAYS) : []
  const liveFigures = (
    await Promise.all(liveDays.map((d) => q.live(q.appid, d, q.timeZone, ['campaigns'])))
  )
    .flat()
    .filter((f) => f.dim !== '' && METRICS.includes(f.metric))
  const notCounted = daysBetween(first, q.today).filter(
    (d) => !built.has(d) && !liveDays.includes(d),
  )
  const unbuilt = new Map<number, string[]>()
  for (const c of daily) {
    const missing = notCounted.filter((d) => d >= c.firstDay && d <= c.lastDay)
    if (missing.length > 0) unbuilt.set(c.id, missing)
  }
  const ids = (list: (number | string)[]) =>
    list.length > 0 ? sql.join(list.map((x) => sql`${x}`)) : sql`null`
  const dailyIds = ids(daily.map((c) => String(c.id)))
  const sum = (metric: string) =>
    sql.raw(`sum(value) filter (where metric = 'campaigns.${metric}')`)
  const { rows } = await sql<VariantCounts & { campaign_id: number }>`
    with f as (
      select split_part(dim, ':', 1) as id, substr(dim, strpos(dim, ':') + 1) as variant,
        metric, value
      from analytics_daily
      where appid = ${q.appid} and metric in (${sql.join(METRICS)}) and day >= ${first}
        and day < ${q.today} and split_part(dim, ':', 1) in (${dailyIds})
      union all
      select split_part(dim, ':', 1), substr(dim, strpos(dim, ':') + 1), metric, value
      from jsonb_to_recordset(${JSON.stringify(liveFigures)}::jsonb)
        as l(metric text, dim text, value float8)
      where split_part(dim, ':', 1) in (${dailyIds})
    ), c as (
      select id::bigint as campaign_id, variant, ${sum('audience')} as audience,
        ${sum('enqueued')} as enqueued, ${sum('capped')} as capped,
        ${sum('opted_out')} as opted_out, ${sum('unreachable')} as unreachable,
        ${sum('sent')} as sent,
        coalesce(${sum('quota_used')}, 0) - coalesce(${sum('sent')}, 0) as failed,
        ${sum('withdrawn_opted_out')} as withdrawn_opted_out, ${sum('cancelled')} as cancelled,
        ${sum('unknown')} as unknown, ${sum('delivered')} as delivered, ${sum('clicked')} as clicked,
        ${sum('converted')} as converted, ${sum('redeemed')} as redeemed
      from f group by id, variant
      union all
      select campaign_id, variant, audience, enqueued, capped, opted_out, unreachable, sent,
        failed, withdrawn_opted_out, cancelled, unknown, delivered, clicked, converted, redeemed
      from campaign_rollups where campaign_id in (${ids(pruned)})
    )
    select campaign_id, variant, coalesce(sum(audience), 0)::int as audience,
      coalesce(sum(enqueued), 0)::int as enqueued, coalesce(sum(capped), 0)::int as capped,
      coalesce(sum(opted_out), 0)::int as opted_out,
      coalesce(sum(unreachable), 0)::int as unreachable, coalesce(sum(sent), 0)::int as sent,
      coalesce(sum(failed), 0)::int as failed,
      coalesce(sum(withdrawn_opted_out), 0)::int as withdrawn_opted_out,
      coalesce(sum(cancelled), 0)::int as cancelled, coalesce(sum(unknown), 0)::int as unknown,
      coalesce(sum(delivered), 0)::int as delivered,
      coalesce(sum(clicked), 0)::int as clicked, coalesce(sum(converted), 0)::int as converted,
      coalesce(sum(redeemed), 0)::int as redeemed
    from c group by campaign_id, variant
    order by campaign_id, variant`.execute(db)
  const counts = new Map<number, VariantCounts[]>()
  for (const { campaign_id: id, ...r } of rows) counts.set(id, [...(counts.get(id) ?? []), r])
  return { asOf, counts, unbuilt }
}
