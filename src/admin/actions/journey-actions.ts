/**
 * An operator adopts the re-engagement journeys (the seeded welcome series, recall offer and VIP
 * invitation, src/community/journey-catalog.ts) and switches journeys on and off.
 */
import {
  adoptJourneys,
  type JourneyMoveResult,
  setJourneyStatus,
} from '../../community/journey-catalog.js'
import type { JourneyStep } from '../../community/journey-steps.js'
import type { JourneysTable } from '../../db/schema.js'
import { type ActionDeps, type Actor, type AuditedStep, auditedAction } from './audited-action.js'
import type { StrategiesInput } from './campaign-input.js'

/** A journey as the API shows it. */
export interface JourneyView {
  id: number
  key: string
  name: string
  segment: JourneysTable['segment']
  status: JourneysTable['status']
  steps: JourneyStep[]
}

/** The API's view of a journey row. */
export const journeyView = (r: {
  id: number
  key: string
  name: string
  segment: JourneysTable['segment']
  status: JourneysTable['status']
  steps: string | JourneyStep[]
}): JourneyView => ({
  id: r.id,
  key: r.key,
  name: r.name,
  segment: r.segment,
  status: r.status,
  steps: typeof r.steps === 'string' ? (JSON.parse(r.steps) as JourneyStep[]) : r.steps,
})

/**
 * The re-engagement strategies (`POST campaigns/strategies`): makes the seeded journeys the
 * account does not have yet — onboarding for `new`, recall for `at_risk`, VIP invitation for
 * `loyal` — paused, with each segment's template as its pushes' template, and audits
 * `journey.adopt` when it made any. Returns the ones made. (`cron` is no longer used: a journey
 * runs on its segment's transitions.)
 */
export async function createStrategyJourneys(
  deps: Pick<ActionDeps, 'db' | 'clock'>,
  actor: Actor,
  input: StrategiesInput & { appid: string },
): Promise<JourneyView[]> {
  const { appid, templates } = input
  const now = deps.clock.now()
  const step = {
    appid,
    actor,
    action: 'journey.adopt',
    target: 'segments',
    now,
  } satisfies AuditedStep
  return auditedAction(deps.db, step, async (trx) => {
    const made = await adoptJourneys(trx, { appid, now, templates })
    return {
      result: made.map(journeyView),
      details: made.length ? { keys: made.map((j) => j.key), templates } : undefined,
    }
  })
}

/**
 * Switches journey `id` on or off (journey-catalog.ts: switching on starts it for transitions from
 * now on and releases held pushes; pausing holds them) and audits `journey.activate` or
 * `journey.pause` when it moved. Undefined when the account has no such journey.
 */
export async function changeJourney(
  deps: Pick<ActionDeps, 'db' | 'clock'>,
  actor: Actor,
  input: { appid: string; id: number; status: 'active' | 'paused' },
): Promise<JourneyMoveResult | undefined> {
  const { appid, id, status } = input
  const now = deps.clock.now()
  const action = status === 'active' ? 'journey.activate' : 'journey.pause'
  const step = { appid, actor, action, target: String(id), now } satisfies AuditedStep
  return auditedAction(deps.db, step, async (trx) => {
    const r = await setJourneyStatus(trx, { appid, id, status, now })
    return { result: r, details: r?.moved ? { outbox: r.outbox } : undefined }
  })
}
