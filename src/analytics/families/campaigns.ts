/**
 * Campaigns by day: what each campaign variant sent, delivered, had clicked and converted that
 * day, and the template quota it used (dim `<campaignId>:<variant>`, '' the account's total) —
 * the funnel of `GET analytics/campaigns` spread over the days things happened: a send by its
 * `sent_at`, a delivery by its receipt, a click by the recipient's first click, a conversion when
 * it was marked active or buying; quota used counts sends and failed attempts (`failed`,
 * `skipped`) by the day they settled, as `quotaUsed` does.
 *
 * Read from the recipients of runs whose slot is at most `MAX_CONVERSION_DAYS` + 1 days before the
 * day (a conversion is marked within that window; a first click later than that is not counted by
 * day). Recipients pruned by retention leave only per-run totals, so a day whose window holds a
 * pruned run keeps the figures it was built with (`prunedCampaignRuns`).
 */
import { type Kysely, sql } from 'kysely'
import { MAX_CONVERSION_DAYS } from '../../community/campaigns.js'
import type { Database } from '../../db/schema.js'
import { count, type DailyFigure, type DayScope, dayWindow, type Family } from './day-scope.js'

const WINDOW_DAYS = MAX_CONVERSION_DAYS + 1

export const campaigns: Family = {
  metrics: {
    'campaigns.sent': count('template messages sent [campaignId:variant]'),
    'campaigns.delivered': count('deliveries WeChat confirmed [campaignId:variant]'),
    'campaigns.clicked': count('recipients who first clicked a tracked link [campaignId:variant]'),
    'campaigns.converted': count('recipients converted (active or bought) [campaignId:variant]'),
    'campaigns.quota_used': count('send attempts that used template quota [campaignId:variant]'),
  },
  query: (s) => {
    const w = dayWindow(s)
    const within = (at: string) => sql`(${sql.raw(at)} >= ${w.start} and ${sql.raw(at)} < ${w.end})`
    return sql<DailyFigure>`
    with runs as (
      select r.campaign_id, r.slot from campaign_runs r join campaigns c on c.id = r.campaign_id
      where c.appid = ${s.appid} and r.slot < ${w.end}
        and r.slot >= ${w.start} - make_interval(days => ${WINDOW_DAYS})
    ), x as (
      select x.campaign_id || ':' || x.variant as dim,
        o.status = 'sent' and ${within('o.sent_at')} as sent,
        coalesce(o.delivery, rc.status) = 'success'
          and ${within('coalesce(o.delivered_at, rc.received_at)')} as delivered,
        ${within('x.clicked_at')} as clicked,
        ${within('x.converted_at')} as converted,
        (o.status = 'sent' and ${within('o.sent_at')})
          or (o.status in ('failed', 'skipped') and ${within('o.next_attempt_at')}) as quota
      from runs
      join campaign_recipients x on x.campaign_id = runs.campaign_id and x.slot = runs.slot
      join members m on m.id = x.member_id
      left join push_outbox o
        on o.appid = ${s.appid} and o.source = x.outbox_source and o.openid = m.openid
      -- a receipt that raced the send's result write is only in push_receipts
      left join push_receipts rc on rc.appid = o.appid and rc.msgid = o.wechat_msgid
        and o.delivery is null
      where x.outcome = 'enqueued'
    ), g as (
      select dim, grouping(dim) = 1 as total,
        count(*) filter (where sent) as sent, count(*) filter (where delivered) as delivered,
        count(*) filter (where clicked) as clicked, count(*) filter (where converted) as converted,
        count(*) filter (where quota) as quota_used
      from x group by grouping sets ((), (dim))
    )
    select 'campaigns.' || u.k as metric, case when g.total then '' else g.dim end as dim,
      u.v::float8 as value
    from g cross join lateral (values ('sent', g.sent), ('delivered', g.delivered),
      ('clicked', g.clicked), ('converted', g.converted), ('quota_used', g.quota_used)) u(k, v)
    where g.total or u.v > 0`
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
