/** Campaigns as an operator sees them: the list, one campaign, its report. */
import type { Kysely, Selectable } from 'kysely'
import { campaignReport } from '../../community/campaign-counts.js'
import { campaignEditable, startedCampaigns } from '../../community/campaign-edit.js'
import { campaignReachShown, type ReachShownOptions } from '../../community/campaign-reach.js'
import { variantReport } from '../../community/campaign-report.js'
import { quotaPausedUntil } from '../../community/campaigns.js'
import type { Database } from '../../db/schema.js'

type CampaignRow = Selectable<Database['campaigns']>

/** A campaign as the operator API answers it (audience and variants parsed). */
export const campaignView = (c: CampaignRow) => ({
  id: c.id,
  name: c.name,
  status: c.status,
  audience: JSON.parse(c.audience),
  variants: JSON.parse(c.variants),
  schedule: c.schedule_cron ? { cron: c.schedule_cron } : { at: c.run_at },
  conversionDays: c.conversion_days,
})
export type CampaignView = ReturnType<typeof campaignView>

/**
 * The account's campaigns, newest first: all of them, or (the console) `limit` older than campaign
 * `before` (0 or absent: from the newest).
 */
export async function listCampaigns(
  db: Kysely<Database>,
  appid: string,
  page: { before?: number; limit?: number } = {},
): Promise<CampaignView[]> {
  let q = db.selectFrom('campaigns').selectAll().where('appid', '=', appid)
  if (page.before) q = q.where('id', '<', page.before)
  if (page.limit !== undefined) q = q.limit(page.limit)
  const rows = await q.orderBy('id', 'desc').execute()
  return rows.map(campaignView)
}

/** The account's campaign `id` (digits, as a path gives it), or undefined. */
export async function findCampaign(db: Kysely<Database>, appid: string, id: string) {
  if (!/^\d{1,15}$/.test(id)) return undefined
  return db
    .selectFrom('campaigns')
    .selectAll()
    .where('appid', '=', appid)
    .where('id', '=', Number(id))
    .executeTakeFirst()
}

/**
 * The ids of `campaigns` that may still be edited (`PATCH campaigns/:id`): not finished, and no run
 * claimed yet (src/community/campaign-edit.ts). A hint for links: the edit itself decides again
 * under the campaign's lock.
 */
export async function editableCampaigns(
  db: Kysely<Database>,
  campaigns: Pick<CampaignView, 'id' | 'status'>[],
): Promise<Set<number>> {
  const started = await startedCampaigns(
    db,
    campaigns.filter((k) => k.status !== 'finished').map((k) => k.id),
  )
  return new Set(
    campaigns.filter((k) => campaignEditable(k.status, started.has(k.id))).map((k) => k.id),
  )
}

/** Why campaign `k` may not be edited — it `started` sending, or was `finished` — if it may not. */
export async function editRefusal(
  db: Kysely<Database>,
  k: Pick<CampaignView, 'id' | 'status'>,
): Promise<'started' | 'finished' | undefined> {
  if ((await startedCampaigns(db, [k.id])).has(k.id)) return 'started'
  return k.status === 'finished' ? 'finished' : undefined
}

/**
 * A campaign's report: per variant enqueued, skipped, sent, failed, withdrawn (opted out since,
 * cancelled), unknown, queued, delivered, clicked, converted with the A/B z-test — pushes, summed
 * over the runs (a member in four runs counts four times; a large campaign's as last counted with
 * its reach: `countsAsOf`, null when counted now) — its `reach` in distinct members (a large
 * campaign's as last counted: `reachAsOf`, null when counted now; `reachRefreshing` while a
 * recount runs in the background, handed to `o.waitUntil` — see campaign-reach.ts), and the
 * account's template-quota pause. While a large campaign's figures are counted for the first time
 * (`counting`) there are none: `reach` null and no variants.
 */
export async function campaignReportView(
  db: Kysely<Database>,
  campaign: CampaignRow,
  now: Date,
  o: Omit<ReachShownOptions, 'now'> = {},
) {
  const reach = await campaignReachShown(db, campaign.id, { ...o, now })
  // A large campaign's first count runs in the background (reach null until it ends) and counts
  // the funnel too: counting it here as well read every recipient a second time — on the default
  // database while the server's one thread was held (bench/README.md, session 33).
  const counting = reach.reach === null
  return {
    campaign: campaignView(campaign),
    quotaPausedUntil: await quotaPausedUntil(db, campaign.appid, now),
    // A large campaign's funnel as last counted, with its reach; counted now where none is kept
    // (a campaign small enough, or a cache row from before migration 0089).
    ...(reach.counts
      ? variantReport(reach.counts)
      : counting
        ? variantReport([])
        : await campaignReport(db, campaign.id, o.sliceRows)),
    counting,
    countsAsOf: reach.counts ? reach.asOf : null,
    reach: reach.reach,
    reachAsOf: reach.asOf,
    /** The figures' age when they are recounted (a minute, or 20 × their count's time). */
    reachRecountAgeMs: reach.recountAgeMs,
    reachRefreshing: reach.refreshing,
  }
}

/**
 * Hono's `waitUntil` for background work of a request: the Workers execution context's, else
 * (Node) none — the work runs on by itself.
 */
export function requestWaitUntil(c: {
  executionCtx: { waitUntil(work: Promise<unknown>): void }
}): (work: Promise<unknown>) => void {
  return (work) => {
    let ctx: { waitUntil(work: Promise<unknown>): void } | undefined
    try {
      ctx = c.executionCtx // throws without one (Node)
    } catch {
      return
    }
    ctx.waitUntil(work)
  }
}
