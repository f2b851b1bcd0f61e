/**
 * A campaign's lifecycle: draft → scheduled → running ⇄ paused → finished, with what each move does
 * to the pushes already queued. Pausing holds them, resuming releases them, finishing cancels them
 * and stops the unfinished runs. The move takes the campaign row FOR UPDATE, and every enqueue
 * batch takes it FOR SHARE and checks the status first (campaigns.ts), so a batch either commits
 * before the move — whose hold or cancel then covers its pushes — or sees the new status and
 * enqueues nothing: a move takes effect within one batch.
 */
import type { Transaction } from 'kysely'
import type { CampaignStatus, Database } from '../db/schema.js'
import { startedCampaigns } from './campaign-edit.js'
import { campaignSourcePrefix } from './campaigns.js'
import { cancelSource, holdSource, releaseSource } from './outbox.js'

/** The operator's moves, from which statuses each is allowed, and where it leads. */
export const CAMPAIGN_MOVES = {
  schedule: { from: ['draft'], to: 'scheduled' },
  pause: { from: ['scheduled', 'running'], to: 'paused' },
  resume: { from: ['paused'], to: 'running' },
  finish: { from: ['draft', 'scheduled', 'running', 'paused'], to: 'finished' },
} as const satisfies Record<string, { from: CampaignStatus[]; to: CampaignStatus }>

export type CampaignMove = keyof typeof CAMPAIGN_MOVES

/**
 * Whether a one-shot campaign's send time `runAt` has passed at `now`: it is earlier than the
 * current minute (forms pick minutes, so the current one still means "now"). Such a time is
 * refused when a campaign is made or edited, and a draft that waited past it cannot be
 * scheduled: the campaigns job would send it at once, not at the time the operator chose.
 */
export function sendTimePassed(runAt: Date, now: Date): boolean {
  return runAt.getTime() < Math.floor(now.getTime() / 60_000) * 60_000
}

/** What a move did: the queued pushes it held, released or cancelled; the runs it stopped. */
export type CampaignMoveResult =
  | {
      moved: true
      status: CampaignStatus
      outbox: { held: number } | { released: number } | { cancelled: number } | Record<never, never>
      runsStopped: number
    }
  /** The campaign was in a status this move does not start from. */
  | { moved: false; status: CampaignStatus }
  /**
   * `schedule` of a one-shot draft, or `resume` of one paused before its first run, whose send time
   * has passed ({@link sendTimePassed}).
   */
  | { moved: false; status: CampaignStatus; sendTimePassed: Date }

/**
 * Moves a campaign, in the caller's transaction (which may also write the audit entry). Returns
 * undefined when the account has no such campaign.
 */
export async function moveCampaign(
  trx: Transaction<Database>,
  o: { appid: string; id: number; move: CampaignMove; now: Date },
): Promise<CampaignMoveResult | undefined> {
  const row = await trx
    .selectFrom('campaigns')
    .select(['status', 'run_at'])
    .where('appid', '=', o.appid)
    .where('id', '=', o.id)
    .forUpdate()
    .executeTakeFirst()
  if (!row) return undefined
  const m = CAMPAIGN_MOVES[o.move]
  if (!(m.from as readonly CampaignStatus[]).includes(row.status))
    return { moved: false, status: row.status }
  // A one-shot whose time passed before it started would be sent at once: scheduling it, or
  // resuming it paused before its first run, is refused until its time is edited.
  if (
    (o.move === 'schedule' || o.move === 'resume') &&
    row.run_at &&
    sendTimePassed(row.run_at, o.now) &&
    (o.move === 'schedule' || !(await startedCampaigns(trx, [o.id])).has(o.id))
  )
    return { moved: false, status: row.status, sendTimePassed: row.run_at }
  await trx
    .updateTable('campaigns')
    .set({ status: m.to, updated_at: o.now })
    .where('id', '=', o.id)
    .execute()
  const prefix = campaignSourcePrefix(o.id)
  let runsStopped = 0
  let outbox: Extract<CampaignMoveResult, { moved: true }>['outbox'] = {}
  if (o.move === 'pause') outbox = { held: await holdSource(trx, o.appid, prefix) }
  else if (o.move === 'resume') outbox = { released: await releaseSource(trx, o.appid, prefix) }
  else if (o.move === 'finish') {
    outbox = { cancelled: await cancelSource(trx, o.appid, prefix, o.now) }
    const stopped = await trx
      .updateTable('campaign_runs')
      .set({ status: 'stopped', finished_at: o.now })
      .where('campaign_id', '=', o.id)
      .where('status', '=', 'enqueuing')
      .returning('slot')
      .execute()
    runsStopped = stopped.length
  }
  return { moved: true, status: m.to, outbox, runsStopped }
}
