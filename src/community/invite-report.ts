/**
 * The invite report for a period of community days (inclusive), overall and per campaign:
 *
 *   sharers      members who asked for their invite QR in the period (`invite_shares`)
 *   invites      invites attributed in the period
 *   conversions  invites that qualified in the period (first check-in, or follow when so configured)
 *   activeMembers members seen by the period's end whose last activity is on or after its start
 *                (`members.last_active_at` keeps only the latest action, so for a past period a
 *                member who was quiet during it but active since still counts: the share rate of
 *                past periods is a lower bound; bounds are instants, so the last-active index
 *                serves the count)
 *   shareRate c  sharers / activeMembers
 *   invitesPerSharer i   invites / sharers
 *   conversionRate conv  conversions / invites
 *   k            i × conv × c — new qualified members brought per active member; above 1 the
 *                community grows by invites alone
 *
 * Ratios are null when their denominator is 0. Top inviters rank by the invites they made in the
 * period, converted ones first.
 */
import { type Kysely, sql } from 'kysely'
import type { Database } from '../db/schema.js'

export interface InviteFigures {
  sharers: number
  invites: number
  conversions: number
  shareRate: number | null
  invitesPerSharer: number | null
  conversionRate: number | null
  k: number | null
}

export interface InviteReport {
  from: string
  to: string
  activeMembers: number
  totals: InviteFigures
  /** One row per campaign with any activity; `campaign` null = the plain 邀请 QR. */
  campaigns: (InviteFigures & { campaign: string | null })[]
  topInviters: { openid: string; invites: number; conversions: number }[]
}

const ratio = (a: number, b: number) => (b > 0 ? Math.round((a / b) * 10_000) / 10_000 : null)

function figures(sharers: number, invites: number, conversions: number, active: number) {
  const shareRate = ratio(sharers, active)
  const invitesPerSharer = ratio(invites, sharers)
  const conversionRate = ratio(conversions, invites)
  const k =
    shareRate === null || invitesPerSharer === null || conversionRate === null
      ? null
      : Math.round(invitesPerSharer * conversionRate * shareRate * 10_000) / 10_000
  return { sharers, invites, conversions, shareRate, invitesPerSharer, conversionRate, k }
}

/** Builds the report; `from` and `to` are community days (YYYY-MM-DD), inclusive. */
export async function inviteReport(
  db: Kysely<Database>,
  r: { appid: string; from: string; to: string; timeZone: string },
): Promise<InviteReport> {
  const { appid, from, to, timeZone: tz } = r
  const inPeriod = (column: string) =>
    sql`(${sql.ref(column)} at time zone ${tz})::date between ${from}::date and ${to}::date`
  const { rows: byCampaign } = await sql<{
    campaign: string
    sharers: number
    invites: number
    conversions: number
  }>`
    with s as (
      select campaign, count(distinct member_id)::int as sharers from invite_shares
      where appid = ${appid} and day between ${from}::date and ${to}::date group by campaign
    ), i as (
      select campaign, count(*)::int as invites from invites
      where appid = ${appid} and ${inPeriod('created_at')} group by campaign
    ), c as (
      select campaign, count(*)::int as conversions from invites
      where appid = ${appid} and status = 'qualified' and ${inPeriod('qualified_at')}
      group by campaign
    )
    select campaign, coalesce(s.sharers, 0)::int as sharers, coalesce(i.invites, 0)::int as invites,
      coalesce(c.conversions, 0)::int as conversions
    from s full join i using (campaign) full join c using (campaign)
    order by campaign`.execute(db)

  const { rows: counts } = await sql<{ sharers: number; active: number }>`
    select
      (select count(distinct member_id)::int from invite_shares
        where appid = ${appid} and day between ${from}::date and ${to}::date) as sharers,
      (select count(*)::int from members
        where appid = ${appid}
          and last_active_at >= (${from}::date::timestamp at time zone ${tz})
          and first_seen_at < ((${to}::date + 1)::timestamp at time zone ${tz})) as active`.execute(
    db,
  )
  const { sharers, active } = counts[0]!

  const { rows: topInviters } = await sql<{
    openid: string
    invites: number
    conversions: number
  }>`
    select m.openid, count(*)::int as invites,
      (count(*) filter (where i.status = 'qualified'))::int as conversions
    from invites i join members m on m.id = i.inviter_member_id
    where i.appid = ${appid} and ${inPeriod('i.created_at')}
    group by m.openid
    order by conversions desc, invites desc, m.openid
    limit 10`.execute(db)

  const sum = (key: 'invites' | 'conversions') => byCampaign.reduce((n, row) => n + row[key], 0)
  return {
    from,
    to,
    activeMembers: active,
    totals: figures(sharers, sum('invites'), sum('conversions'), active),
    campaigns: byCampaign.map((row) => ({
      campaign: row.campaign || null,
      ...figures(row.sharers, row.invites, row.conversions, active),
    })),
    topInviters,
  }
}
