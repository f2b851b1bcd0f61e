/**
 * The invite report for a period of community days (inclusive), overall and per campaign:
 *
 *   sharers      members who asked for their invite QR in the period (`invite_shares`)
 *   invites      invites attributed in the period
 *   conversions  invites that qualified in the period (first check-in, or follow when so configured)
 *   activeMemberDays Σ DAU: the period's daily active members summed (`activity.dau`, each day
 *                read as a series reads it — built, or live for today and the days after the
 *                last built one; null when a day has neither, and so are c and K)
 *   shareRate c  sharers / activeMemberDays
 *   invitesPerSharer i   invites / sharers
 *   conversionRate conv  conversions / invites
 *   k            i × conv × c = conversions / activeMemberDays — new qualified members brought
 *                per active member-day, the K the series `invites.k_factor` has over the same
 *                days (README: Σ qualified ÷ Σ DAU); above 1 the community grows by invites alone
 *
 * Ratios are null when their denominator is 0. Top inviters rank by the invites they made in the
 * period, converted ones first.
 */
import { type Kysely, sql } from 'kysely'
import { type LiveReader, readSum } from '../analytics/series.js'
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
  /** Σ DAU over the period (null when a day of it has no figure). */
  activeMemberDays: number | null
  totals: InviteFigures
  /** One row per campaign with any activity; `campaign` null = the plain 邀请 QR. */
  campaigns: (InviteFigures & { campaign: string | null })[]
  topInviters: { openid: string; invites: number; conversions: number }[]
}

const round = (x: number) => Math.round(x * 10_000) / 10_000
const ratio = (a: number, b: number | null) => (b !== null && b > 0 ? round(a / b) : null)

function figures(sharers: number, invites: number, conversions: number, active: number | null) {
  const shareRate = ratio(sharers, active)
  const invitesPerSharer = ratio(invites, sharers)
  const conversionRate = ratio(conversions, invites)
  // i × conv × c of the unrounded figures: conversions ÷ Σ DAU, when there were sharers and
  // invites (`invites.k_factor`'s `nonzero`)
  const k =
    shareRate === null || invitesPerSharer === null || conversionRate === null
      ? null
      : ratio(conversions, active)
  return { sharers, invites, conversions, shareRate, invitesPerSharer, conversionRate, k }
}

/**
 * Builds the report; `from` and `to` are community days (YYYY-MM-DD), inclusive; `now` and
 * `live` read the period's DAU as the series do (today's so far).
 */
export async function inviteReport(
  db: Kysely<Database>,
  r: { appid: string; from: string; to: string; timeZone: string; now: Date; live: LiveReader },
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

  const { rows: counts } = await sql<{ sharers: number }>`
    select count(distinct member_id)::int as sharers from invite_shares
    where appid = ${appid} and day between ${from}::date and ${to}::date`.execute(db)
  const { sharers } = counts[0]!
  const active = await readSum(db, { ...r, metric: 'activity.dau' })

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
    activeMemberDays: active,
    totals: figures(sharers, sum('invites'), sum('conversions'), active),
    campaigns: byCampaign.map((row) => ({
      campaign: row.campaign || null,
      ...figures(row.sharers, row.invites, row.conversions, active),
    })),
    topInviters,
  }
}
