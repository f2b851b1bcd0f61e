/**
 * An operator makes campaigns and moves them through their life. (The re-engagement drafts became
 * journeys: journey-actions.ts.)
 */

import { editCampaign } from '../../community/campaign-edit.js'
import {
  type CampaignMove,
  type CampaignMoveResult,
  moveCampaign,
} from '../../community/campaign-lifecycle.js'
import type { CampaignStatus } from '../../db/schema.js'
import { type CampaignView, campaignView } from '../reads/campaign-views.js'
import { type ActionDeps, type Actor, type AuditedStep, auditedAction } from './audited-action.js'
import { type CreateCampaignInput, definitionOf } from './campaign-input.js'

/**
 * Makes a draft campaign (checked input: see `createCampaignProblem`) and audits
 * `campaign.create` with its id.
 */
export async function createCampaign(
  deps: Pick<ActionDeps, 'db' | 'clock'>,
  actor: Actor,
  input: CreateCampaignInput & { appid: string },
): Promise<CampaignView> {
  const { appid, ...b } = input
  const now = deps.clock.now()
  const step = { appid, actor, action: 'campaign.create', target: '', now } satisfies AuditedStep
  return auditedAction(deps.db, step, async (trx) => {
    const created = await trx
      .insertInto('campaigns')
      .values({
        appid,
        ...definitionOf(b),
        status: 'draft',
        created_at: now,
        updated_at: now,
      })
      .returningAll()
      .executeTakeFirstOrThrow()
    return { result: campaignView(created), details: b, target: String(created.id) }
  })
}

/** What `updateCampaign` did: the edited campaign, or why it was refused. */
export type UpdateCampaignResult =
  | { status: 'updated'; campaign: CampaignView }
  /** `started`: a run was enqueued (or is enqueuing); `finished`: it was stopped. */
  | { status: 'started' | 'finished'; campaignStatus: CampaignStatus }

/**
 * Replaces campaign `id`'s name, audience, template(s), schedule and conversion window (checked
 * input, as for `createCampaign`) while it has not started sending (src/community/campaign-edit.ts:
 * row-locked against the campaigns job), and audits `campaign.update` with the values before and
 * after. Undefined when the account has no such campaign.
 */
export async function updateCampaign(
  deps: Pick<ActionDeps, 'db' | 'clock'>,
  actor: Actor,
  input: CreateCampaignInput & { appid: string; id: number },
): Promise<UpdateCampaignResult | undefined> {
  const { appid, id, ...b } = input
  const now = deps.clock.now()
  const step = {
    appid,
    actor,
    action: 'campaign.update',
    target: String(id),
    now,
  } satisfies AuditedStep
  return auditedAction<UpdateCampaignResult | undefined>(deps.db, step, async (trx) => {
    const r = await editCampaign(trx, { appid, id, definition: definitionOf(b), now })
    if (!r) return { result: undefined }
    if (!r.edited) return { result: { status: r.reason, campaignStatus: r.status } }
    const after = campaignView(r.after)
    const details = { before: campaignView(r.before), after: b }
    return { result: { status: 'updated', campaign: after }, details }
  })
}

/**
 * Schedules, pauses, resumes or finishes campaign `id` (src/community/campaign-lifecycle.ts) and
 * audits `campaign.<move>` when it moved. Undefined when the account has no such campaign.
 */
export async function changeCampaign(
  deps: Pick<ActionDeps, 'db' | 'clock'>,
  actor: Actor,
  input: { appid: string; id: number; move: CampaignMove },
): Promise<CampaignMoveResult | undefined> {
  const { appid, id, move } = input
  const now = deps.clock.now()
  const step = {
    appid,
    actor,
    action: `campaign.${move}`,
    target: String(id),
    now,
  } satisfies AuditedStep
  return auditedAction(deps.db, step, async (trx) => {
    const r = await moveCampaign(trx, { appid, id, move, now })
    const details = r?.moved ? { outbox: r.outbox, runsStopped: r.runsStopped } : undefined
    return { result: r, details }
  })
}
