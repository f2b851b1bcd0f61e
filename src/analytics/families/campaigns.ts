/**
 * Campaigns by day, per variant (dim `<campaignId>:<variant>`, '' the account's total):
 *
 * - what the runs whose slot is in the day enqueued: their audience, the recipients enqueued and
 *   those skipped (capped, opted out, unreachable) — from the recipients, plus the rollups of
 *   those already pruned, so these are exact whenever the day is built;
 * - what happened that day: a send by its `sent_at`, a delivery by its receipt, a click by the
 *   recipient's first click, a conversion when it was marked active or buying, a redemption by the
 *   recipient's first reward redemption after the push (migration 0048); quota used counts
 *   sends and failed attempts (`failed`, `skipped`) by the day they settled, as `quotaUsed` does
 *   (so quota used − sent is the report's `failed`); a push withdrawn unsent because its member
 *   opted out since it was enqueued, one cancelled unsent (the campaign was finished) and one
 *   whose outcome is unknown, by the day they settled (migration 0064) — so every enqueued
 *   recipient lands in one of the report's outcomes here too.
 *
 * Events are counted for recipients of runs whose slot is at most `MAX_CONVERSION_DAYS` + 1 days
 * before the day (a conversion is marked within that window; a first click later than that is not
 * counted by day). Each kind of event is found by index over the day (migration 0039), then
 * joined to its recipient — never a walk over every recipient of the window. Recipients pruned by
 * retention leave only per-run totals, so a day whose window holds a pruned run keeps the event
 * figures it was built with (`prunedCampaignRuns`, `CAMPAIGN_EVENT_METRICS`).
 */
import { type Kysely, sql } from 'kysely'
import { pushOutcomeConditions } from '../../community/campaign-report.js'
import { MAX_CONVERSION_DAYS } from '../../community/campaigns.js'
import type { Database } from '../../db/schema.js'
import { count, type DailyFigure, type DayScope, dayWindow, type Family } from './day-scope.js'

const WINDOW_DAYS = MAX_CONVERSION_DAYS + 1

/** The events a day's window of runs had (kept as built once recipients were pruned). */
export const CAMPAIGN_EVENT_METRICS = [
  'campaigns.sent',
  'campaigns.delivered',
  'campaigns.clicked',
  'campaigns.converted',
  'campaigns.redeemed',
  'campaigns.quota_used',
  'campaigns.withdrawn_opted_out',
  'campaigns.cancelled',
  'campaigns.unknown',
]

export const campaigns: Family = {
  metrics: {
    'campaigns.audience': count('recipients of the runs of the day (by slot) [campaignId:variant]'),
    'campaigns.enqueued': count('recipients enqueued by the runs of the day [campaignId:variant]'),
    'campaigns.capped': count('recipients skipped by the frequency cap [campaignId:variant]'),
    'campaigns.opted_out': count('recipients skipped as opted out [campaignId:variant]'),
    'campaigns.unreachable': count('recipients skipped as unreachable [campaignId:variant]'),
    'campaigns.sent': count('template messages sent [campaignId:variant]'),
    'campaigns.delivered': count('deliveries WeChat confirmed [campaignId:variant]'),
    'campaigns.clicked': count('recipients who first clicked a tracked link [campaignId:variant]'),
    'campaigns.converted': count(
      'recipients converted (active or bought; opting out is not) [campaignId:variant]',
    ),
    'campaigns.redeemed': count('recipients who redeemed a reward after it [campaignId:variant]'),
    'campaigns.quota_used': count('send attempts that used template quota [campaignId:variant]'),
    'campaigns.withdrawn_opted_out': count(
      'pushes withdrawn unsent: the member opted out after the run [campaignId:variant]',
    ),
    'campaigns.cancelled': count(
      'pushes cancelled unsent: the campaign was finished first [campaignId:variant]',
    ),
    'campaigns.unknown': count(
      'pushes whose outcome is unknown (a send interrupted) [campaignId:variant]',
    ),
  },
  query: (s) => {
    const w = dayWindow(s)
    const within = (at: string) => sql`(${sql.raw(at)} >= ${w.start} and ${sql.raw(at)} < ${w.end})`
    // withdrawn, cancelled, unknown: as the reports count them
    const ended = pushOutcomeConditions('o')
    // As the outbox's partial index push_outbox_campaign_settled_idx is written.
    const settled = sql.raw(`(case when status = 'sent' then sent_at else next_attempt_at end)`)
    return sql<DailyFigure>`
    with runs as (
      select r.campaign_id, r.slot, 'campaign:' || r.campaign_id || ':'
          || to_char(r.slot at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as source
      from campaign_runs r join campaigns c on c.id = r.campaign_id
      where c.appid = ${s.appid} and r.slot < ${w.end}
        and r.slot >= ${w.start} - make_interval(days => ${WINDOW_DAYS})
    ), pushes as (
      select id from push_outbox where appid = ${s.appid} and lane = 2
        and status in ('sent', 'failed', 'skipped')
        and ${settled} >= ${w.start} and ${settled} < ${w.end}
      union
      select id from push_outbox where appid = ${s.appid} and lane = 2
        and delivered_at is not null and ${within('delivered_at')}
      union
      -- withdrawn, cancelled or unknown: settled by their result (push_outbox_campaign_withdrawn_idx)
      select id from push_outbox where appid = ${s.appid} and lane = 2
        and status in ('cancelled', 'unknown') and ${within('next_attempt_at')}
      union
      -- a receipt that raced the send's result write is only in push_receipts
      select o.id from push_receipts rc
      join push_outbox o on o.appid = rc.appid and o.wechat_msgid = rc.msgid
      where rc.appid = ${s.appid} and ${within('rc.received_at')} and o.delivery is null
    ), sends as (
      select x.campaign_id || ':' || x.variant as dim,
        o.status = 'sent' and ${within('o.sent_at')} as sent,
        coalesce(o.delivery, rc.status) = 'success'
          and ${within('coalesce(o.delivered_at, rc.received_at)')} as delivered,
        (o.status = 'sent' and ${within('o.sent_at')})
          or (o.status in ('failed', 'skipped') and ${within('o.next_attempt_at')}) as quota,
        ${ended.withdrawn_opted_out} and ${within('o.next_attempt_at')} as withdrawn_opted_out,
        ${ended.cancelled} and ${within('o.next_attempt_at')} as cancelled,
        ${ended.unknown} and ${within('o.next_attempt_at')} as unknown
      from (
        -- the day's items, each with its run's key: kept whole (offset 0), so they drive and each
        -- recipient is found by its whole key (campaign_id, slot, member_id). Every item of a run
        -- shares its source: planned without statistics (a run's first day on PGlite, which has
        -- no autovacuum), the join could walk the run's recipients and read the day's items once
        -- for each — recipients × items rows, 3,000,000 for a run to 2,000 members
        -- (src/community/campaign-plans.test.ts)
        select o.*, runs.campaign_id as run_campaign_id, runs.slot as run_slot, m.id as member_id
        from pushes p
        join push_outbox o on o.id = p.id
        join runs on runs.source = o.source
        join members m on m.appid = o.appid and m.openid = o.openid
        offset 0
      ) o
      join campaign_recipients x on x.campaign_id = o.run_campaign_id and x.slot = o.run_slot
        and x.member_id = o.member_id and x.outbox_source = o.source
      left join push_receipts rc on rc.appid = o.appid and rc.msgid = o.wechat_msgid
        and o.delivery is null
      where x.outcome = 'enqueued'
    ), acts as (
      select x.campaign_id || ':' || x.variant as dim,
        ${within('x.clicked_at')} as clicked, ${within('x.converted_at')} as converted,
        ${within('x.redeemed_at')} as redeemed
      from (
        select campaign_id, slot, member_id from campaign_recipients
        where clicked_at is not null and ${within('clicked_at')}
        union
        select campaign_id, slot, member_id from campaign_recipients
        where converted_at is not null and ${within('converted_at')}
        union
        select campaign_id, slot, member_id from campaign_recipients
        where redeemed_at is not null and ${within('redeemed_at')}
      ) k
      join runs on runs.campaign_id = k.campaign_id and runs.slot = k.slot
      join campaign_recipients x on x.campaign_id = k.campaign_id and x.slot = k.slot
        and x.member_id = k.member_id
      where x.outcome = 'enqueued'
    ), ev as (
      select dim, sent, delivered, quota, withdrawn_opted_out, cancelled, unknown,
        false as clicked, false as converted, false as redeemed
      from sends
      union all
      select dim, false, false, false, false, false, false, clicked, converted, redeemed from acts
    ), g as (
      select dim, grouping(dim) = 1 as total,
        count(*) filter (where sent) as sent, count(*) filter (where delivered) as delivered,
        count(*) filter (where clicked) as clicked, count(*) filter (where converted) as converted,
        count(*) filter (where redeemed) as redeemed, count(*) filter (where quota) as quota_used,
        count(*) filter (where withdrawn_opted_out) as withdrawn_opted_out,
        count(*) filter (where cancelled) as cancelled, count(*) filter (where unknown) as unknown
      from ev group by grouping sets ((), (dim))
    ), enq as (
      select x.campaign_id || ':' || x.variant as dim, count(*) as audience,
        count(*) filter (where x.outcome = 'enqueued') as enqueued,
        count(*) filter (where x.outcome = 'capped') as capped,
        count(*) filter (where x.outcome = 'opted_out') as opted_out,
        count(*) filter (where x.outcome = 'unreachable') as unreachable
      from campaign_runs r
      join campaigns c on c.id = r.campaign_id
      join campaign_recipients x on x.campaign_id = r.campaign_id and x.slot = r.slot
      where c.appid = ${s.appid} and r.slot >= ${w.start} and r.slot < ${w.end}
      group by 1
      union all
      -- recipients already pruned (campaign-retention.ts), counted the same way
      select k.campaign_id || ':' || k.variant, k.audience, k.enqueued, k.capped, k.opted_out,
        k.unreachable
      from campaign_rollups k join campaigns c on c.id = k.campaign_id
      where c.appid = ${s.appid} and k.slot >= ${w.start} and k.slot < ${w.end}
    ), ge as (
      select dim, grouping(dim) = 1 as total, coalesce(sum(audience), 0) as audience,
        coalesce(sum(enqueued), 0) as enqueued, coalesce(sum(capped), 0) as capped,
        coalesce(sum(opted_out), 0) as opted_out, coalesce(sum(unreachable), 0) as unreachable
      from enq group by grouping sets ((), (dim))
    )
    select 'campaigns.' || u.k as metric, case when g.total then '' else g.dim end as dim,
      u.v::float8 as value
    from g cross join lateral (values ('sent', g.sent), ('delivered', g.delivered),
      ('clicked', g.clicked), ('converted', g.converted), ('redeemed', g.redeemed),
      ('quota_used', g.quota_used), ('withdrawn_opted_out', g.withdrawn_opted_out),
      ('cancelled', g.cancelled), ('unknown', g.unknown)) u(k, v)
    where g.total or u.v > 0
    union all
    select 'campaigns.' || u.k, case when ge.total then '' else ge.dim end, u.v::float8
    from ge cross join lateral (values ('audience', ge.audience), ('enqueued', ge.enqueued),
      ('capped', ge.capped), ('opted_out', ge.opted_out), ('unreachable', ge.unreachable)) u(k, v)
    where ge.total or u.v > 0`
  },
}

/** Whether recipients of a run in the day's campaign window were pruned (only totals are left). */
export async function prunedCampaignRuns(db: Kysely<Database>, s: DayScope): Promise<boolean> {
  const w = dayWindow(s)
  const { rows } = await sql<{ pruned: boolean }>`
    select exists (select 1 from campaign_rollups r join campaigns c on c.id = r.campaign_id
      where c.appid = ${s.appid} and r.slot < ${w.end}
        and r.slot >= ${w.start} - make_interval(days => ${WINDOW_DAYS})) as pruned`.execute(db)
  return rows[0]?.pruned === true
}
