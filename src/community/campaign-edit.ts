/**
 * Editing a campaign: allowed until it starts sending — while no run of it was ever claimed (a
 * `campaign_runs` row, or a rollup left by one that was pruned) and it is not finished. The edit
 * takes the campaign row FOR UPDATE and looks for runs under that lock; a run is claimed only
 * under the row's FOR SHARE lock, re-reading the campaign there (campaigns.ts), so a run either
 * is claimed first — and the edit sees it and is refused — or waits for the edit and walks the
 * edited campaign: never the old audience or template after an edit was accepted.
 */
import type { Kysely, Selectable, Transaction } from 'kysely'
import type { CampaignStatus, CampaignsTable, Database } from '../db/schema.js'

/** What an edit may change: everything an operator wrote when making the campaign. */
export interface CampaignDefinition {
  name: string
  /** JSON, as stored (see `CampaignsTable`). */
  audience: string
  variants: string
  schedule_cron: string | null
  run_at: Date | null
  conversion_days: number
}

/** What an edit did. */
export type CampaignEditResult =
  | { edited: true; before: Selectable<CampaignsTable>; after: Selectable<CampaignsTable> }
  /** `started`: a run was claimed (it may have enqueued pushes); `finished`: it was stopped. */
  | { edited: false; reason: 'started' | 'finished'; status: CampaignStatus }

/** The campaigns among `ids` that have started sending (a run claimed, or rolled up). */
export async function startedCampaigns(db: Kysely<Database>, ids: number[]): Promise<Set<number>> {
  if (ids.length === 0) return new Set()
  const rows = await db
    .selectFrom('campaign_runs')
    .select('campaign_id')
    .where('campaign_id', 'in', ids)
    .union(db.selectFrom('campaign_rollups').select('campaign_id').where('campaign_id', 'in', ids))
    .execute()
  return new Set(rows.map((r) => r.campaign_id))
}

/** Whether a campaign in `status` that has (not) `started` may be edited. */
export const campaignEditable = (status: CampaignStatus, started: boolean) =>
  !started && status !== 'finished'

/**
 * Replaces campaign `id`'s definition (its status stays), in the caller's transaction (which may
 * also write the audit entry). Undefined when the account has no such campaign.
 */
export async function editCampaign(
  trx: Transaction<Database>,
  o: { appid: string; id: number; definition: CampaignDefinition; now: Date },
): Promise<CampaignEditResult | undefined> {
  const before = await trx
    .selectFrom('campaigns')
    .selectAll()
    .where('appid', '=', o.appid)
    .where('id', '=', o.id)
    .forUpdate()
    .executeTakeFirst()
  if (!before) return undefined
  const started = (await startedCampaigns(trx, [o.id])).has(o.id)
  if (!campaignEditable(before.status, started))
    return { edited: false, reason: started ? 'started' : 'finished', status: before.status }
  const after = await trx
    .updateTable('campaigns')
    .set({ ...o.definition, updated_at: o.now })
    .where('id', '=', o.id)
    .returningAll()
    .executeTakeFirstOrThrow()
  return { edited: true, before, after }
}
