/**
 * An account's journeys: copied from the seeded examples (appid '*': welcome series for `new`, a
 * recall offer for `at_risk`, a VIP invitation for `loyal`), switched on and off. A journey is
 * made paused; switching it on starts it for transitions recorded from then on (not the history),
 * and releases the pushes a pause held; pausing holds its queued pushes (as a paused campaign's).
 */
import { type Kysely, sql } from 'kysely'
import type { Database, Segment } from '../db/schema.js'
import type { CampaignTemplate } from './campaigns.js'
import {
  type JourneyStep,
  type JourneyStepsIssue,
  journeySourcePrefix,
  journeyStepsIssue,
} from './journey-steps.js'
import { holdSource, releaseSource } from './outbox.js'

/** The account row of a journey as stored (steps as JSON text). */
export type JourneyRecord = Awaited<ReturnType<typeof findJourney>> & {}

/** One journey of the account, or undefined. */
export async function findJourney(db: Kysely<Database>, appid: string, id: number) {
  return db
    .selectFrom('journeys')
    .selectAll()
    .where('appid', '=', appid)
    .where('id', '=', id)
    .executeTakeFirst()
}

/**
 * Copies the seeded journeys the account does not have yet (by key), paused. `templates` (by
 * segment) become the template of the capped steps of that segment's journey: what a
 * customer-service step sends instead when the member's window is closed, or a template step's
 * message. Returns the journeys made.
 */
export async function adoptJourneys(
  db: Kysely<Database>,
  o: { appid: string; now: Date; templates?: Partial<Record<Segment, CampaignTemplate>> },
) {
  const seeds = await db
    .selectFrom('journeys as s')
    .selectAll('s')
    .where('s.appid', '=', '*')
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom('journeys as a')
            .select('a.id')
            .where('a.appid', '=', o.appid)
            .whereRef('a.key', '=', 's.key'),
        ),
      ),
    )
    .orderBy('s.id')
    .execute()
  const made = []
  for (const s of seeds) {
    const template = o.templates?.[s.segment]
    const steps = (JSON.parse(s.steps) as JourneyStep[]).map((step) =>
      template && (step.cap || step.channel === 'template') ? { ...step, template } : step,
    )
    const row = await db
      .insertInto('journeys')
      .values({
        appid: o.appid,
        key: s.key,
        name: s.name,
        segment: s.segment,
        status: 'paused',
        steps: JSON.stringify(steps),
        created_at: o.now,
        updated_at: o.now,
      })
      .onConflict((oc) => oc.columns(['appid', 'key']).doNothing())
      .returningAll()
      .executeTakeFirst()
    if (row) made.push(row)
  }
  return made
}

/** What `setJourneyStatus` did. */
export type JourneyMoveResult =
  | { moved: true; status: 'active' | 'paused'; outbox: number }
  | { moved: false; status: 'active' | 'paused'; problem?: string; issue?: JourneyStepsIssue }

/**
 * Switches journey `id` on (`active`) or off (`paused`), under its row lock. Switching on needs
 * steps that can run (journeyStepsIssue: refused with the `issue`, and `problem` saying it in
 * English) and moves its watermark to the latest transition, so only transitions from now on
 * start it. Undefined when the account has no such journey.
 */
export async function setJourneyStatus(
  db: Kysely<Database>,
  o: { appid: string; id: number; status: 'active' | 'paused'; now: Date },
): Promise<JourneyMoveResult | undefined> {
  const j = await db
    .selectFrom('journeys')
    .select(['status', 'steps'])
    .where('appid', '=', o.appid)
    .where('id', '=', o.id)
    .forUpdate()
    .executeTakeFirst()
  if (!j) return undefined
  if (j.status === o.status) return { moved: false, status: j.status }
  const prefix = journeySourcePrefix(o.id)
  if (o.status === 'paused') {
    await db
      .updateTable('journeys')
      .set({ status: 'paused', updated_at: o.now })
      .where('id', '=', o.id)
      .execute()
    return { moved: true, status: 'paused', outbox: await holdSource(db, o.appid, prefix) }
  }
  const issue = journeyStepsIssue(JSON.parse(j.steps) as JourneyStep[])
  if (issue)
    return { moved: false, status: j.status, problem: `${issue.path}: ${issue.problem}`, issue }
  await db
    .updateTable('journeys')
    .set({
      status: 'active',
      updated_at: o.now,
      enrolled_through: sql<number>`greatest(enrolled_through,
        (select coalesce(max(id), 0) from segment_transitions))`,
    })
    .where('id', '=', o.id)
    .execute()
  return { moved: true, status: 'active', outbox: await releaseSource(db, o.appid, prefix) }
}
