/**
 * Campaigns: template messages to an audience (a lifecycle segment, a tag, or everyone), once at `run_at`
 * or on a cron (in the community's time zone), optionally split into weighted A/B variants.
 *
 * A run is claimed per (campaign, slot) in `campaign_runs` with a lease, under the campaign row's
 * FOR SHARE lock and with the campaign as read there (an edit, campaign-edit.ts, is allowed only
 * before a campaign's first claim, and the claim waits for it); the run walks the audience in
 * member-id order from the run's `cursor` (keyset pagination), in batches, each batch one
 * transaction that records every member in `campaign_recipients` — with why they were skipped
 * (opted out, unreachable, frequency cap) or the outbox row enqueued for them (lane campaign) — and
 * moves the cursor, so a process killed mid-run is continued from there by the next one without
 * anyone twice (the run row's lock, the recipient key and the outbox's (source, openid) key), and
 * the outbox delivers exactly once. Each batch first takes the campaign row FOR SHARE and checks
 * that it is still scheduled or running: a pause or finish (campaign-lifecycle.ts) takes effect
 * within one batch. The cap is a conditional update of `members.last_campaign_at`, which holds
 * the slot of the member's last campaign push (slots are compared, with a configurable slack);
 * quiet hours move `next_attempt_at` to their end. Campaign URLs go through `/r/<code>` (a click
 * is recorded, then redirected); a recipient converts when active or buying within
 * `conversion_days` (marked incrementally). Old recipients are rolled up and pruned
 * (campaign-retention.ts).
 */
import type { Kysely, Transaction } from 'kysely'
import { sql } from 'kysely'
import type { Translate } from '../bot/i18n.js'
import type { Budget } from '../budget.js'
import { cronMatches } from '../cron.js'
import type { CampaignStatus, CampaignsTable, Database, Member, Segment } from '../db/schema.js'
import { isHttpUrl } from '../http-url.js'
import type { Logger } from '../logger.js'
import { randomToken } from '../wechat/crypto.js'
import { quietHoursEnd } from './community-time.js'
import { LANE } from './outbox.js'
import { loadReachability } from './reachability.js'
import { recommendRewards, templateText } from './recommendations.js'

/**
 * A template message: WeChat's body without `touser`; data values may use {{points}}, {{level}}
 * and {{rec}} (the member's top recommended reward, cut to the room the field has left).
 */
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
  /** At most one campaign push per member within this many hours (0 = no cap). */
  capHours: number
  /**
   * Slack of the cap, in minutes (less than `capHours` × 60): a member is capped when their last
   * campaign push was less than `capHours` × 60 − `capSlackMinutes` minutes before this run's
   * slot, so a daily campaign whose cron slots are 24 h apart is never capped by itself, and two
   * campaigns a few minutes apart on consecutive days are not either.
   */
  capSlackMinutes: number
  /** Minutes after local midnight; pushes due inside [from, to) (wrapping midnight) wait for `to`. */
  quietHours: { from: number; to: number } | null
  /** The public base URL of this server, for tracked links (`<base>/r/<code>`). */
  publicBaseUrl: string
}

/** The longest conversion window a campaign may have, in days. */
export const MAX_CONVERSION_DAYS = 60

/** How a dispatch runs. */
export interface DispatchOptions {
  /**
   * The scheduled minute to evaluate cron schedules at (the job's slot; it may lie in the past
   * when the runner catches up). A run is recorded under it, and the frequency cap compares slots.
   */
  slot: Date
  /** The time now: leases, enqueue times, quiet hours, whether a one-shot campaign is due. */
  now: Date
  settings: CampaignSettings
  t: Translate
  /** Members per transaction (default 1000). */
  batchSize?: number
  /** How long a run's claim lasts without progress before another process continues it. */
  leaseMs?: number
  /** Called (and awaited) after each committed batch (progress). */
  onBatch?: (p: { campaignId: number; enqueued: number }) => void | Promise<void>
  /**
   * Asked before each batch of a run after its first (Workers' bounded invocations): when none is
   * left, the run's lease is given back at its cursor and the next dispatch continues it.
   */
  budget?: Budget
  /** Where a failed refresh of the outbox's statistics is logged (it stops nothing). */
  logger?: Logger
}

/** The outbox source prefix of a campaign's pushes (`campaign:<id>:<slot>`). */
export const campaignSourcePrefix = (campaignId: number) => `campaign:${campaignId}:`

/**
 * The slot of a campaign due at `slot` (a cron schedule is matched at the minute of `slot`), or
 * null. A one-shot campaign is due once `run_at` has passed (`now`, default `slot`); its slot is
 * `run_at`.
 * @example dueSlot({ schedule_cron: '0 10 * * *', run_at: null }, at('10:01:05'), tz) // null
 */
export function dueSlot(
  c: Pick<CampaignsTable, 'schedule_cron'> & { run_at: Date | null },
  slot: Date,
  timeZone: string,
  now: Date = slot,
): Date | null {
  if (c.run_at) return c.run_at <= now ? c.run_at : null
  const minute = new Date(Math.floor(slot.getTime() / 60_000) * 60_000)
  return c.schedule_cron && cronMatches(c.schedule_cron, minute, timeZone) ? minute : null
}

/** When a push enqueued at `now` may go out: now, or the end of the quiet hours. */
export function afterQuietHours(now: Date, s: Pick<CampaignSettings, 'quietHours' | 'timeZone'>) {
  return quietHoursEnd(now, s.quietHours, s.timeZone) ?? now
}

/**
 * The latest last-campaign time that does not cap a member for a run at `slot`, or null when
 * there is no cap. Slots, not wall-clock times, are compared (and recorded), so when in its
 * minute a run starts does not matter.
 */
export function capBoundary(slot: Date, s: Pick<CampaignSettings, 'capHours' | 'capSlackMinutes'>) {
  if (s.capHours <= 0) return null
  const minutes = Math.max(0, s.capHours * 60 - s.capSlackMinutes)
  return new Date(slot.getTime() - minutes * 60_000)
}

/**
 * The time a run counts as for the cap: its slot — unless the run is later than the cap's slack
 * (a caught-up slot, a one-shot resumed after a pause), then the minute it runs in, so a late run
 * neither caps members by days-old pushes nor lets the next regular slot push again at once.
 */
export function capTime(slot: Date, now: Date, s: Pick<CampaignSettings, 'capSlackMinutes'>): Date {
  if (now.getTime() - slot.getTime() <= s.capSlackMinutes * 60_000) return slot
  return new Date(Math.floor(now.getTime() / 60_000) * 60_000)
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

/** The template variable a member's top recommended reward fills (recommendations.ts). */
export const REC_VARIABLE = '{{rec}}'

/** The most characters of a template field's value (the rules since 2023-05-04). */
const FIELD_MAX = 20

/** Whether a variant's template names {@link REC_VARIABLE}. */
const recommends = (v: CampaignVariant) =>
  Object.values(v.template.data).some((d) => d.value.includes(REC_VARIABLE))

/**
 * A field's value with its variables filled; {{rec}} gets the room the field has left (≤ 20
 * characters in all), without emoji or line breaks.
 */
function fill(value: string, vars: Record<string, string>, rec: string) {
  const filled = value.replace(/\{\{(\w+)\}\}/g, (all, name: string) =>
    name === 'rec' ? all : (vars[name] ?? all),
  )
  const uses = filled.split(REC_VARIABLE).length - 1
  if (uses === 0) return filled
  const room = FIELD_MAX - [...filled].length + uses * REC_VARIABLE.length
  return filled.replaceAll(REC_VARIABLE, templateText(rec, Math.floor(room / uses)))
}

function render(
  t: CampaignTemplate,
  member: Pick<Member, 'points_balance' | 'level'>,
  translate: Translate,
  url: string | undefined,
  rec?: string,
) {
  const vars: Record<string, string> = {
    points: String(member.points_balance),
    level: translate(`level.${member.level as 'bronze'}`),
  }
  const data = Object.fromEntries(
    Object.entries(t.data).map(([k, v]) => [
      k,
      { ...v, value: fill(v.value, vars, rec ?? translate('campaign.recFallback')) },
    ]),
  )
  return {
    template_id: t.template_id,
    data,
    ...(url ? { url } : {}),
    ...(t.miniprogram ? { miniprogram: t.miniprogram } : {}),
  }
}

/** Campaign statuses whose runs may enqueue. */
const LIVE: CampaignStatus[] = ['scheduled', 'running']

/**
 * Starts or continues every run due at `o.slot`: due campaigns (status scheduled or running), and
 * runs whose enqueuer died (lease expired) or that a spent budget gave back, of campaigns still
 * scheduled or running. Returns how many pushes were enqueued, and how many runs were given back
 * unfinished (`released`, only when some were).
 */
export async function dispatchCampaigns(
  db: Kysely<Database>,
  o: DispatchOptions,
): Promise<{ runs: number; enqueued: number; released?: number }> {
  const campaigns = await db
    .selectFrom('campaigns')
    .select(['id', 'schedule_cron', 'run_at'])
    .where('status', 'in', LIVE)
    // a one-shot whose run was enqueued is only waiting for its pushes to settle
    .where((eb) =>
      eb.or([
        eb('run_at', 'is', null),
        eb.not(
          eb.exists(
            eb
              .selectFrom('campaign_runs as r')
              .select('r.slot')
              .whereRef('r.campaign_id', '=', 'campaigns.id')
              .where('r.status', '<>', 'enqueuing'),
          ),
        ),
      ]),
    )
    .execute()
  // A slot of `null`: due as the campaign reads when its run is claimed (it may have been edited).
  const work: { id: number; slot: Date | null }[] = []
  for (const c of campaigns)
    if (dueSlot(c, o.slot, o.settings.timeZone, o.now)) work.push({ id: c.id, slot: null })
  const stalled = await db
    .selectFrom('campaign_runs')
    .innerJoin('campaigns', 'campaigns.id', 'campaign_runs.campaign_id')
    .select(['campaigns.id', 'campaign_runs.slot'])
    .where('campaign_runs.status', '=', 'enqueuing')
    .where('campaign_runs.lease_until', '<', o.now)
    .where('campaigns.status', 'in', LIVE)
    .execute()
  for (const s of stalled) work.push({ id: s.id, slot: s.slot })

  let runs = 0
  let enqueued = 0
  let released = 0
  for (const w of work) {
    const claimed = await claimRun(db, w.id, w.slot, o)
    if (!claimed) continue
    runs++
    const run = await enqueueRun(db, claimed.campaign, claimed.slot, claimed.cursor, o)
    enqueued += run.enqueued
    if (run.released) released++
  }
  await finishSettledOneShots(db, o.now)
  return { runs, enqueued, ...(released > 0 ? { released } : {}) }
}

/** Outbox statuses of a push not settled yet: waiting, held while paused, being sent. */
const QUEUED = ['pending', 'held', 'sending'] as const

/**
 * Ends the one-shot campaigns whose run is over and whose pushes have all settled (sent, failed,
 * withdrawn, unknown). A one-shot stays running while its pushes are queued — held by the quiet
 * hours or a quota pause, retried — so that it can still be paused (holding them) or finished
 * (cancelling them), as any running campaign. Each is a conditional update of the campaign row
 * that reads its runs' pushes by their exact source (the outbox's (appid, source) index): a
 * pause or finish (FOR UPDATE) committed first leaves it `paused` or `finished`, and a queued push
 * — held ones included — keeps it running. Returns how many ended.
 */
export async function finishSettledOneShots(db: Kysely<Database>, now: Date): Promise<number> {
  const runs = await db
    .selectFrom('campaigns as c')
    .innerJoin('campaign_runs as r', 'r.campaign_id', 'c.id')
    .select(['c.id', 'c.appid', 'r.slot'])
    .where('c.status', '=', 'running')
    .where('c.run_at', 'is not', null)
    .where('r.status', '=', 'enqueued')
    .execute()
  const byCampaign = new Map<number, { appid: string; sources: string[] }>()
  for (const r of runs) {
    const c = byCampaign.get(r.id) ?? { appid: r.appid, sources: [] }
    c.sources.push(`${campaignSourcePrefix(r.id)}${r.slot.toISOString()}`)
    byCampaign.set(r.id, c)
  }
  let finished = 0
  for (const [id, c] of byCampaign) {
    const r = await db
      .updateTable('campaigns')
      .set({ status: 'finished', updated_at: now })
      .where('id', '=', id)
      .where('status', '=', 'running')
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('campaign_runs')
              .select('slot')
              .where('campaign_id', '=', id)
              .where('status', '=', 'enqueuing'),
          ),
        ),
      )
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('push_outbox')
              .select('id')
              .where('appid', '=', c.appid)
              .where('source', 'in', c.sources)
              .where('status', 'in', QUEUED),
          ),
        ),
      )
      .executeTakeFirst()
    finished += Number(r.numUpdatedRows)
  }
  return finished
}

/**
 * Claims a run — a new (campaign, slot) row, or an unfinished one whose lease expired — under the
 * campaign row's FOR SHARE lock, reading the campaign there: an edit (campaign-edit.ts, FOR
 * UPDATE) either committed before, and the run walks the edited campaign (due by its edited
 * schedule), or waits and then finds the run and is refused. A new run (`slot` null) is claimed
 * at the slot the campaign is due at now. Returns the campaign as read, the slot and the run's
 * cursor (the last member id walked), or undefined when the campaign is no longer scheduled or
 * running, no longer due, or another process holds the run.
 */
async function claimRun(
  db: Kysely<Database>,
  campaignId: number,
  resumed: Date | null,
  o: DispatchOptions,
): Promise<{ campaign: Selectable; slot: Date; cursor: number } | undefined> {
  const lease = new Date(o.now.getTime() + (o.leaseMs ?? 60_000))
  return db.transaction().execute(async (trx) => {
    const campaign = await trx
      .selectFrom('campaigns')
      .selectAll()
      .where('id', '=', campaignId)
      .forShare()
      .executeTakeFirst()
    if (!campaign || !LIVE.includes(campaign.status)) return undefined
    const slot = resumed ?? dueSlot(campaign, o.slot, o.settings.timeZone, o.now)
    if (!slot) return undefined
    const created = await trx
      .insertInto('campaign_runs')
      .values({
        campaign_id: campaignId,
        slot,
        status: 'enqueuing',
        lease_until: lease,
        created_at: o.now,
      })
      .onConflict((oc) => oc.columns(['campaign_id', 'slot']).doNothing())
      .returning('cursor')
      .executeTakeFirst()
    const taken =
      created ??
      (await trx
        .updateTable('campaign_runs')
        .set({ lease_until: lease })
        .where('campaign_id', '=', campaignId)
        .where('slot', '=', slot)
        .where('status', '=', 'enqueuing')
        .where('lease_until', '<', o.now)
        .returning('cursor')
        .executeTakeFirst())
    return taken && { campaign, slot, cursor: taken.cursor }
  })
}

type Selectable = {
  id: number
  appid: string
  audience: string
  variants: string
  run_at: Date | null
}

/** What one batch transaction did. */
type Step =
  | { kind: 'batch'; enqueued: number; cursor: number }
  /** The audience is walked to its end (the run is marked enqueued). */
  | { kind: 'end' }
  /** The campaign is no longer scheduled or running (paused, finished). */
  | { kind: 'halted' }
  /** Another process continues the run (it took over after this one's lease ran out). */
  | { kind: 'lost' }

async function enqueueRun(
  db: Kysely<Database>,
  campaign: Selectable,
  slot: Date,
  cursor: number,
  o: DispatchOptions,
): Promise<{ enqueued: number; released?: true }> {
  const variants = JSON.parse(campaign.variants) as CampaignVariant[]
  const run = {
    audience: JSON.parse(campaign.audience) as Audience,
    variants,
    recommends: variants.some(recommends),
    source: `${campaignSourcePrefix(campaign.id)}${slot.toISOString()}`,
    notBefore: afterQuietHours(o.now, o.settings),
    capBoundary: capBoundary(capTime(slot, o.now, o.settings), o.settings),
    capAt: capTime(slot, o.now, o.settings),
  }
  const started = Date.now()
  // o.now moved on by the time this run has taken so far (enqueue times, leases).
  const at = () => new Date(o.now.getTime() + (Date.now() - started))
  let enqueued = 0
  let analyzed = false
  // Gives the run up at its cursor: the next dispatch (`stalled`) continues it from there.
  const release = () =>
    db
      .updateTable('campaign_runs')
      .set({ lease_until: o.now })
      .where('campaign_id', '=', campaign.id)
      .where('slot', '=', slot)
      .where('status', '=', 'enqueuing')
      .where('cursor', '=', cursor)
      .execute()
  for (let batches = 0; ; batches++) {
    if (batches > 0 && o.budget && !o.budget.left()) {
      await release()
      return { enqueued, released: true }
    }
    // Each batch first takes the campaign row FOR SHARE and checks its status: a pause or finish
    // (which takes it FOR UPDATE) either sees this batch's pushes to hold or cancel them, or this
    // batch sees the new status and enqueues nothing.
    const step = await db
      .transaction()
      .execute((trx) => enqueueBatch(trx, campaign, slot, cursor, run, { ...o, now: at() }))
    if (step.kind === 'lost') return { enqueued }
    if (step.kind === 'halted') {
      // Paused: give the run up now, so that it continues as soon as the campaign is resumed.
      await release()
      return { enqueued }
    }
    if (step.kind === 'end') break
    enqueued += step.enqueued
    cursor = step.cursor
    // The outbox's statistics may be from before the run — from when it was empty, until the
    // maintenance job's next run on PGlite (every five minutes) or autovacuum's on PostgreSQL: the
    // claims then probed each member's queue through the account's whole backlog (1.2 s a claim of
    // 200 behind 36,000 items on PGlite; bench/README.md, session 32). Analyzed once this call of
    // the run has queued items (a sample of at most 30,000 rows), they are planned on its items.
    // Best effort: a table locked by a vacuum is skipped, a role that may not analyze it is skipped
    // with a warning from the server, and a failure is logged — the run goes on.
    if (!analyzed && step.enqueued > 0) {
      analyzed = true
      await sql`analyze (skip_locked) push_outbox`.execute(db).catch((error: unknown) =>
        o.logger?.warn('outbox statistics not refreshed', {
          code: 'OUTBOX_ANALYZE_FAILED',
          campaignId: campaign.id,
          error,
        }),
      )
    }
    await o.onBatch?.({ campaignId: campaign.id, enqueued })
  }
  // A one-shot stays running until its pushes settle (finishSettledOneShots, at the end of the
  // dispatch): meanwhile it can be paused or finished, holding or cancelling them.
  await db
    .updateTable('campaigns')
    .set({ status: 'running', updated_at: at() })
    .where('id', '=', campaign.id)
    .where('status', 'in', LIVE)
    .execute()
  return { enqueued }
}

/**
 * The account's members in `audience` (`members as m`, nothing selected yet): what a run walks, and
 * what the console counts before a campaign is made.
 */
export function audienceMembers(db: Kysely<Database>, appid: string, audience: Audience) {
  return db
    .selectFrom('members as m')
    .where('m.appid', '=', appid)
    .$if(audience.segment !== undefined, (q) =>
      q.where(({ exists, selectFrom }) =>
        exists(
          selectFrom('member_segments as s')
            .select('s.member_id')
            .whereRef('s.member_id', '=', 'm.id')
            .where('s.segment', '=', audience.segment!),
        ),
      ),
    )
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
}

/** One batch, in one transaction: the next members after the run's cursor. */
async function enqueueBatch(
  trx: Transaction<Database>,
  campaign: Selectable,
  slot: Date,
  cursor: number,
  run: {
    audience: Audience
    variants: CampaignVariant[]
    /** Some variant names {{rec}}: the batch's recommendations are loaded. */
    recommends: boolean
    source: string
    notBefore: Date
    capBoundary: Date | null
    capAt: Date
  },
  o: DispatchOptions,
): Promise<Step> {
  const live = await trx
    .selectFrom('campaigns')
    .select('status')
    .where('id', '=', campaign.id)
    .forShare()
    .executeTakeFirst()
  if (!live || !LIVE.includes(live.status)) {
    if (live?.status === 'finished')
      await trx
        .updateTable('campaign_runs')
        .set({ status: 'stopped', finished_at: o.now })
        .where('campaign_id', '=', campaign.id)
        .where('slot', '=', slot)
        .where('status', '=', 'enqueuing')
        .execute()
    return { kind: 'halted' }
  }
  // The run's row serializes the processes that may both think they hold it (a lease that ran
  // out): only the one whose cursor is current goes on.
  const state = await trx
    .selectFrom('campaign_runs')
    .select(['status', 'cursor'])
    .where('campaign_id', '=', campaign.id)
    .where('slot', '=', slot)
    .forUpdate()
    .executeTakeFirst()
  if (state?.status !== 'enqueuing' || state.cursor !== cursor) return { kind: 'lost' }

  const { audience } = run
  const batch = await audienceMembers(trx, campaign.appid, audience)
    .select(['m.id', 'm.openid', 'm.marketing_opt_out', 'm.points_balance', 'm.level'])
    .where('m.id', '>', cursor)
    .orderBy('m.id')
    .limit(o.batchSize ?? 1000)
    .execute()
  if (batch.length === 0) {
    await trx
      .updateTable('campaign_runs')
      .set({ status: 'enqueued', finished_at: o.now })
      .where('campaign_id', '=', campaign.id)
      .where('slot', '=', slot)
      .execute()
    return { kind: 'end' }
  }

  const reach = await loadReachability(
    trx,
    campaign.appid,
    batch.map((m) => m.openid),
    o.now,
  )
  const candidates = batch.filter((m) => !m.marketing_opt_out && !reach(m.openid, 'template'))
  const capped = new Set(candidates.map((m) => m.id))
  if (candidates.length > 0) {
    // The cap: a conditional update of the member's last campaign slot.
    const boundary = run.capBoundary
    const passed = await trx
      .updateTable('members')
      .set({ last_campaign_at: sql<Date>`greatest(last_campaign_at, ${run.capAt}::timestamptz)` })
      .where(sql<boolean>`id = any(${candidates.map((m) => m.id)}::bigint[])`)
      .$if(boundary !== null, (q) =>
        q.where((eb) =>
          eb.or([eb('last_campaign_at', 'is', null), eb('last_campaign_at', '<=', boundary!)]),
        ),
      )
      .returning('id')
      .execute()
    for (const p of passed) capped.delete(p.id)
  }
  // {{rec}}: the top recommended reward of each member pushed a variant naming it, in one statement.
  const recs = run.recommends
    ? await recommendRewards(trx, {
        appid: campaign.appid,
        memberIds: candidates
          .filter(
            (m) => !capped.has(m.id) && recommends(pickVariant(campaign.id, m.id, run.variants)),
          )
          .map((m) => m.id),
        limit: 1,
      })
    : undefined
  // Column arrays, inserted with unnest: one parameter per column instead of one per value.
  const r = { member: [] as number[], variant: [] as string[], outcome: [] as string[] }
  const link = { code: [] as (string | null)[], url: [] as (string | null)[] }
  const push = { openid: [] as string[], payload: [] as string[] }
  for (const m of batch) {
    const variant = pickVariant(campaign.id, m.id, run.variants)
    const outcome = m.marketing_opt_out
      ? 'opted_out'
      : reach(m.openid, 'template')
        ? 'unreachable'
        : capped.has(m.id)
          ? 'capped'
          : 'enqueued'
    const tracked = outcome === 'enqueued' && variant.template.url
    const code = tracked ? randomToken(12) : null
    r.member.push(m.id)
    r.variant.push(variant.key)
    r.outcome.push(outcome)
    link.code.push(code)
    link.url.push(tracked ? variant.template.url! : null)
    if (outcome !== 'enqueued') continue
    const url = code ? `${o.settings.publicBaseUrl}/r/${code}` : undefined
    push.openid.push(m.openid)
    const rec = recs?.get(m.id)?.[0]?.name
    push.payload.push(JSON.stringify(render(variant.template, m, o.t, url, rec)))
  }
  await sql`
    insert into campaign_recipients (campaign_id, slot, member_id, variant, outcome, outbox_source,
      link_code, target_url, enqueued_at)
    select ${campaign.id}, ${slot}::timestamptz, x.member_id, x.variant, x.outcome,
      case when x.outcome = 'enqueued' then ${run.source}::text end, x.link_code, x.target_url,
      ${o.now}::timestamptz
    from unnest(${r.member}::bigint[], ${r.variant}::text[], ${r.outcome}::text[],
      ${link.code}::text[], ${link.url}::text[])
      as x(member_id, variant, outcome, link_code, target_url)`.execute(trx)
  if (push.openid.length > 0)
    await sql`
      insert into push_outbox (appid, source, openid, kind, payload, lane, next_attempt_at,
        created_at)
      select ${campaign.appid}, ${run.source}, x.openid, 'template', x.payload, ${LANE.campaign},
        ${run.notBefore}::timestamptz, ${o.now}::timestamptz
      from unnest(${push.openid}::text[], ${push.payload}::text[]) as x(openid, payload)
      on conflict (appid, source, openid) do nothing`.execute(trx)
  const last = batch[batch.length - 1]!.id
  await trx
    .updateTable('campaign_runs')
    .set({ cursor: last, lease_until: new Date(o.now.getTime() + (o.leaseMs ?? 60_000)) })
    .where('campaign_id', '=', campaign.id)
    .where('slot', '=', slot)
    .execute()
  return { kind: 'batch', enqueued: push.openid.length, cursor: last }
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
