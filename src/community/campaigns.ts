/**
 * Campaigns: template messages to an audience (a lifecycle segment, a tag, or everyone), once at `run_at`
 * or on a cron (in the community's time zone), optionally split into weighted A/B variants.
 *
 * A run is claimed per (campaign, slot) in `campaign_runs` with a lease; it walks the audience in
 * batches, each batch one transaction that records every member in `campaign_recipients` — with
 * why they were skipped (opted out, unreachable, frequency cap) or the outbox row enqueued for them
 * — so a process killed mid-run is continued by the next one without anyone twice (the recipient
 * key and the outbox's (source, openid) key), and the outbox delivers exactly once. The cap is a
 * conditional update of `members.last_campaign_at`; quiet hours move `next_attempt_at` to their
 * end; a 45009 quota error pauses the account's outbox until the next community day, after which
 * it resumes by itself. Campaign URLs go through `/r/<code>` (a click is recorded, then
 * redirected); a recipient converts when active or buying within `conversion_days`.
 */
import type { Kysely, Transaction } from 'kysely'
import { sql } from 'kysely'
import type { Translate } from '../bot/i18n.js'
import { cronMatches } from '../cron.js'
import type { CampaignsTable, Database, Member, Segment } from '../db/schema.js'
import { isHttpUrl } from '../http-url.js'
import { randomToken } from '../wechat/crypto.js'
import { localMinutes } from './community-time.js'
import { loadReachability } from './reachability.js'

/** A template message: WeChat's body without `touser`; data values may use {{points}}, {{level}}. */
export interface CampaignTemplate {
  template_id: string
  data: Record<string, { value: string }>
  url?: string
  miniprogram?: { appid: string; pagepath: string }
}

export interface CampaignVariant {
  key: string
  /** Relative share of the audience. */
  weight: number
  template: CampaignTemplate
}

/** Who a campaign reaches: a lifecycle segment and/or a WeChat tag (set through us); {} = all. */
export interface Audience {
  segment?: Segment
  tag?: number
  /** The members of a group (any channel: `wecom_aibot`, `wecom_customer`, `bridge:<id>`). */
  group?: { channel: string; chatId: string }
}

/** Campaign settings (from configuration). */
export interface CampaignSettings {
  timeZone: string
  /** At most one campaign push per member within this many hours. */
  capHours: number
  /** Minutes after local midnight; pushes due inside [from, to) (wrapping midnight) wait for `to`. */
  quietHours: { from: number; to: number } | null
  /** The public base URL of this server, for tracked links (`<base>/r/<code>`). */
  publicBaseUrl: string
}

/** How a dispatch runs. */
export interface DispatchOptions {
  now: Date
  settings: CampaignSettings
  t: Translate
  /** Members per transaction (default 500). */
  batchSize?: number
  /** How long a run's claim lasts without progress before another process continues it. */
  leaseMs?: number
  /** Called after each committed batch (progress). */
  onBatch?: (p: { campaignId: number; enqueued: number }) => void
}

/** The slot of a campaign due at `now` (minute precision), or null. */
export function dueSlot(
  c: Pick<CampaignsTable, 'schedule_cron'> & { run_at: Date | null },
  now: Date,
  timeZone: string,
): Date | null {
  if (c.run_at) return c.run_at <= now ? c.run_at : null
  const minute = new Date(Math.floor(now.getTime() / 60_000) * 60_000)
  return c.schedule_cron && cronMatches(c.schedule_cron, minute, timeZone) ? minute : null
}

/** When a push enqueued at `now` may go out: now, or the end of the quiet hours. */
export function afterQuietHours(now: Date, s: Pick<CampaignSettings, 'quietHours' | 'timeZone'>) {
  const q = s.quietHours
  if (!q) return now
  const m = localMinutes(now, s.timeZone)
  const quiet = q.from <= q.to ? m >= q.from && m < q.to : m >= q.from || m < q.to
  if (!quiet) return now
  const wait = (q.to - m + 1440) % 1440
  return new Date(Math.floor(now.getTime() / 60_000) * 60_000 + wait * 60_000)
}

/** Picks a member's variant: stable for the campaign, spread by weight. */
export function pickVariant(campaignId: number, memberId: number, variants: CampaignVariant[]) {
  let h = 2166136261
  for (const ch of `${campaignId}:${memberId}`) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0
  const total = variants.reduce((n, v) => n + v.weight, 0)
  let point = ((h % 10_000) / 10_000) * total
  for (const v of variants) {
    point -= v.weight
    if (point < 0) return v
  }
  return variants[variants.length - 1]!
}

function render(
  t: CampaignTemplate,
  member: Pick<Member, 'points_balance' | 'level'>,
  translate: Translate,
  url: string | undefined,
) {
  const vars: Record<string, string> = {
    points: String(member.points_balance),
    level: translate(`level.${member.level as 'bronze'}`),
  }
  const data = Object.fromEntries(
    Object.entries(t.data).map(([k, v]) => [
      k,
      { ...v, value: v.value.replace(/\{\{(\w+)\}\}/g, (all, name: string) => vars[name] ?? all) },
    ]),
  )
  return {
    template_id: t.template_id,
    data,
    ...(url ? { url } : {}),
    ...(t.miniprogram ? { miniprogram: t.miniprogram } : {}),
  }
}

/**
 * Starts or continues every run due at `now`: due campaigns (status scheduled or running), and runs
 * whose enqueuer died (lease expired). Returns how many pushes were enqueued.
 */
export async function dispatchCampaigns(
  db: Kysely<Database>,
  o: DispatchOptions,
): Promise<{ runs: number; enqueued: number }> {
  const campaigns = await db
    .selectFrom('campaigns')
    .selectAll()
    .where('status', 'in', ['scheduled', 'running'])
    .execute()
  const work: { campaign: (typeof campaigns)[number]; slot: Date }[] = []
  for (const c of campaigns) {
    const slot = dueSlot(c, o.now, o.settings.timeZone)
    if (slot) work.push({ campaign: c, slot })
  }
  const stalled = await db
    .selectFrom('campaign_runs')
    .innerJoin('campaigns', 'campaigns.id', 'campaign_runs.campaign_id')
    .selectAll('campaigns')
    .select('campaign_runs.slot')
    .where('campaign_runs.status', '=', 'enqueuing')
    .where('campaign_runs.lease_until', '<', o.now)
    .where('campaigns.status', '!=', 'paused')
    .execute()
  for (const s of stalled) work.push({ campaign: s, slot: s.slot })

  let runs = 0
  let enqueued = 0
  for (const { campaign, slot } of work) {
    if (!(await claimRun(db, campaign.id, slot, o.now, o.leaseMs ?? 60_000))) continue
    runs++
    enqueued += await enqueueRun(db, campaign, slot, o)
  }
  return { runs, enqueued }
}

/** Claims a run: a new (campaign, slot) row, or an unfinished one whose lease expired. */
async function claimRun(
  db: Kysely<Database>,
  campaignId: number,
  slot: Date,
  now: Date,
  leaseMs: number,
) {
  const lease = new Date(now.getTime() + leaseMs)
  const created = await db
    .insertInto('campaign_runs')
    .values({
      campaign_id: campaignId,
      slot,
      status: 'enqueuing',
      lease_until: lease,
      created_at: now,
    })
    .onConflict((oc) => oc.columns(['campaign_id', 'slot']).doNothing())
    .returning('slot')
    .executeTakeFirst()
  if (created) return true
  const taken = await db
    .updateTable('campaign_runs')
    .set({ lease_until: lease })
    .where('campaign_id', '=', campaignId)
    .where('slot', '=', slot)
    .where('status', '=', 'enqueuing')
    .where('lease_until', '<', now)
    .returning('slot')
    .executeTakeFirst()
  return taken !== undefined
}

async function enqueueRun(
  db: Kysely<Database>,
  campaign: Selectable,
  slot: Date,
  o: DispatchOptions,
): Promise<number> {
  const audience = JSON.parse(campaign.audience) as Audience
  const variants = JSON.parse(campaign.variants) as CampaignVariant[]
  const source = `campaign:${campaign.id}:${slot.toISOString()}`
  const notBefore = afterQuietHours(o.now, o.settings)
  const capBefore = new Date(o.now.getTime() - o.settings.capHours * 3600_000)
  const started = Date.now()
  let enqueued = 0
  for (;;) {
    const batch = await db
      .selectFrom('members as m')
      .selectAll('m')
      .where('m.appid', '=', campaign.appid)
      .$if(audience.segment !== undefined, (q) => q.where('m.segment', '=', audience.segment!))
      .$if(audience.group !== undefined, (q) =>
        q.where(({ exists, selectFrom }) =>
          exists(
            selectFrom('group_members as g')
              .select('g.member_id')
              .whereRef('g.member_id', '=', 'm.id')
              .where('g.channel', '=', audience.group!.channel)
              .where('g.chat_id', '=', audience.group!.chatId),
          ),
        ),
      )
      .$if(audience.tag !== undefined, (q) =>
        q.where(({ exists, selectFrom }) =>
          exists(
            selectFrom('member_tags as t')
              .select('t.member_id')
              .whereRef('t.member_id', '=', 'm.id')
              .where('t.tagid', '=', audience.tag!),
          ),
        ),
      )
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('campaign_recipients as r')
              .select('r.member_id')
              .whereRef('r.member_id', '=', 'm.id')
              .where('r.campaign_id', '=', campaign.id)
              .where('r.slot', '=', slot),
          ),
        ),
      )
      .orderBy('m.id')
      .limit(o.batchSize ?? 500)
      .execute()
    if (batch.length === 0) break
    enqueued += await db
      .transaction()
      .execute((trx) =>
        enqueueBatch(trx, campaign, slot, batch, variants, { ...o, source, notBefore, capBefore }),
      )
    o.onBatch?.({ campaignId: campaign.id, enqueued })
    await db
      .updateTable('campaign_runs')
      .set({
        lease_until: new Date(o.now.getTime() + (Date.now() - started) + (o.leaseMs ?? 60_000)),
      })
      .where('campaign_id', '=', campaign.id)
      .where('slot', '=', slot)
      .execute()
  }
  await db
    .updateTable('campaign_runs')
    .set({ status: 'enqueued', finished_at: o.now })
    .where('campaign_id', '=', campaign.id)
    .where('slot', '=', slot)
    .execute()
  await db
    .updateTable('campaigns')
    .set({ status: campaign.run_at ? 'finished' : 'running', updated_at: o.now })
    .where('id', '=', campaign.id)
    .where('status', 'in', ['scheduled', 'running'])
    .execute()
  return enqueued
}

type Selectable = {
  id: number
  appid: string
  audience: string
  variants: string
  run_at: Date | null
}

async function enqueueBatch(
  trx: Transaction<Database>,
  campaign: Selectable,
  slot: Date,
  batch: Member[],
  variants: CampaignVariant[],
  o: {
    now: Date
    settings: CampaignSettings
    t: Translate
    source: string
    notBefore: Date
    capBefore: Date
  },
): Promise<number> {
  const reach = await loadReachability(
    trx,
    campaign.appid,
    batch.map((m) => m.openid),
    o.now,
  )
  const candidates = batch.filter((m) => !m.marketing_opt_out && !reach(m.openid, 'template'))
  const capped = new Set(candidates.map((m) => m.id))
  if (candidates.length > 0) {
    const passed = await trx
      .updateTable('members')
      .set({ last_campaign_at: o.now })
      .where(
        'id',
        'in',
        candidates.map((m) => m.id),
      )
      .where((eb) =>
        eb.or([eb('last_campaign_at', 'is', null), eb('last_campaign_at', '<=', o.capBefore)]),
      )
      .returning('id')
      .execute()
    for (const p of passed) capped.delete(p.id)
  }
  const recipients = []
  const pushes = []
  for (const m of batch) {
    const variant = pickVariant(campaign.id, m.id, variants)
    const outcome = m.marketing_opt_out
      ? ('opted_out' as const)
      : reach(m.openid, 'template')
        ? ('unreachable' as const)
        : capped.has(m.id)
          ? ('capped' as const)
          : ('enqueued' as const)
    const tracked = outcome === 'enqueued' && variant.template.url
    const code = tracked ? randomToken(12) : null
    recipients.push({
      campaign_id: campaign.id,
      slot,
      member_id: m.id,
      variant: variant.key,
      outcome,
      outbox_source: outcome === 'enqueued' ? o.source : null,
      link_code: code,
      target_url: tracked ? variant.template.url! : null,
      enqueued_at: o.now,
    })
    if (outcome !== 'enqueued') continue
    const url = code ? `${o.settings.publicBaseUrl}/r/${code}` : undefined
    pushes.push({
      appid: campaign.appid,
      source: o.source,
      openid: m.openid,
      kind: 'template' as const,
      payload: JSON.stringify(render(variant.template, m, o.t, url)),
      next_attempt_at: o.notBefore,
      created_at: o.now,
    })
  }
  await trx.insertInto('campaign_recipients').values(recipients).execute()
  if (pushes.length > 0)
    await trx
      .insertInto('push_outbox')
      .values(pushes)
      .onConflict((oc) => oc.columns(['appid', 'source', 'openid']).doNothing())
      .execute()
  return pushes.length
}

/**
 * Records a click on a tracked link; returns where to send the browser, or undefined for an
 * unknown code — or a target that is not a clean absolute http(s) URL (one stored before targets
 * were checked): such a click is not counted, and no header is built from it.
 */
export async function followLink(db: Kysely<Database>, code: string, now: Date) {
  const link = await db
    .selectFrom('campaign_recipients')
    .select('target_url')
    .where('link_code', '=', code)
    .executeTakeFirst()
  if (!link?.target_url || !isHttpUrl(link.target_url)) return undefined
  const row = await db
    .updateTable('campaign_recipients')
    .set((eb) => ({
      clicks: eb('clicks', '+', 1),
      clicked_at: eb.fn.coalesce('clicked_at', sql<Date>`${now}::timestamptz`),
    }))
    .where('link_code', '=', code)
    .returning('target_url')
    .executeTakeFirst()
  return row?.target_url ?? undefined
}

/**
 * Marks recipients who were active (any member action) or bought something within the campaign's
 * conversion window after their push. Set-based; run every minute by the campaigns job.
 */
export async function markConversions(db: Kysely<Database>, now: Date): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    with converted as (
      update campaign_recipients r
      set converted_at = least(
        case when m.last_active_at > r.enqueued_at then m.last_active_at end,
        case when m.last_purchased_at > r.enqueued_at then m.last_purchased_at end)
      from members m, campaigns c
      where m.id = r.member_id and c.id = r.campaign_id
        and r.outcome = 'enqueued' and r.converted_at is null
        and r.enqueued_at > ${now}::timestamptz - make_interval(days => c.conversion_days)
        and (m.last_active_at > r.enqueued_at or m.last_purchased_at > r.enqueued_at)
      returning 1
    )
    select count(*)::int as n from converted`.execute(db)
  return rows[0]!.n
}

/** Two-proportion z-test: is rate A different from rate B? (two-sided, normal approximation) */
export function twoProportionZTest(a: { n: number; x: number }, b: { n: number; x: number }) {
  if (a.n === 0 || b.n === 0) return null
  const pa = a.x / a.n
  const pb = b.x / b.n
  const p = (a.x + b.x) / (a.n + b.n)
  const se = Math.sqrt(p * (1 - p) * (1 / a.n + 1 / b.n))
  if (se === 0) return { z: 0, pValue: 1, significant: false }
  const z = (pa - pb) / se
  const pValue = 2 * (1 - normalCdf(Math.abs(z)))
  return { z: round(z), pValue: round(pValue), significant: pValue < 0.05 }
}

const round = (x: number) => Math.round(x * 10_000) / 10_000

/** Φ(x) via the Abramowitz–Stegun erf approximation (|error| < 1.5e-7). */
function normalCdf(x: number) {
  const t = 1 / (1 + 0.3275911 * (x / Math.SQRT2))
  const y =
    1 -
    ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) *
      t *
      Math.exp(-(x * x) / 2)
  return 0.5 * (1 + y)
}

/** The report of a campaign, per variant, with the A/B test on conversions and clicks. */
export async function campaignReport(db: Kysely<Database>, campaignId: number) {
  const { rows } = await sql<{
    variant: string
    audience: number
    enqueued: number
    capped: number
    opted_out: number
    unreachable: number
    sent: number
    failed: number
    delivered: number
    clicked: number
    converted: number
  }>`
    select r.variant,
      count(*)::int as audience,
      (count(*) filter (where r.outcome = 'enqueued'))::int as enqueued,
      (count(*) filter (where r.outcome = 'capped'))::int as capped,
      (count(*) filter (where r.outcome = 'opted_out'))::int as opted_out,
      (count(*) filter (where r.outcome = 'unreachable'))::int as unreachable,
      (count(*) filter (where o.status = 'sent'))::int as sent,
      (count(*) filter (where o.status in ('failed', 'skipped')))::int as failed,
      (count(*) filter (where o.delivery = 'success'))::int as delivered,
      (count(*) filter (where r.clicked_at is not null))::int as clicked,
      (count(*) filter (where r.converted_at is not null))::int as converted
    from campaign_recipients r
    join campaigns c on c.id = r.campaign_id
    join members m on m.id = r.member_id
    left join push_outbox o
      on o.appid = c.appid and o.source = r.outbox_source and o.openid = m.openid
    where r.campaign_id = ${campaignId}
    group by r.variant
    order by r.variant`.execute(db)
  const variants = rows.map((r) => ({
    variant: r.variant,
    audience: r.audience,
    enqueued: r.enqueued,
    skipped: { capped: r.capped, optedOut: r.opted_out, unreachable: r.unreachable },
    sent: r.sent,
    failed: r.failed,
    delivered: r.delivered,
    clicked: r.clicked,
    converted: r.converted,
    clickRate: r.enqueued ? round(r.clicked / r.enqueued) : null,
    conversionRate: r.enqueued ? round(r.converted / r.enqueued) : null,
  }))
  const [a, b] = variants
  return {
    variants,
    abTest:
      a && b
        ? {
            compared: [a.variant, b.variant],
            conversion: twoProportionZTest(
              { n: a.enqueued, x: a.converted },
              { n: b.enqueued, x: b.converted },
            ),
            click: twoProportionZTest(
              { n: a.enqueued, x: a.clicked },
              { n: b.enqueued, x: b.clicked },
            ),
          }
        : null,
  }
}

/** When campaign templates resume after a 45009 paused the account's template API, if paused. */
export async function quotaPausedUntil(db: Kysely<Database>, appid: string, now: Date) {
  const row = await db
    .selectFrom('outbox_pauses')
    .select('paused_until')
    .where('appid', '=', appid)
    .where('api', '=', 'template')
    .executeTakeFirst()
  return row && row.paused_until > now ? row.paused_until : null
}
