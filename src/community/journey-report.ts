/**
 * What a journey achieved, reported like a campaign: how many members started it and how their
 * enrollments ended, and per step — audience, skipped (capped, opted out, unreachable), enqueued
 * and how each enqueued push ended (sent, failed, withdrawn: the member opted out since or the
 * enrollment ended first, unknown, still queued), delivered, converted (conversions are
 * attributed to the last step the member received). Delivered: a template's receipt said success;
 * a customer-service message counts when sent (WeChat sends no receipt for it).
 */
import { type Kysely, sql } from 'kysely'
import type { Database } from '../db/schema.js'
import { pushEndings, pushOutcomes, type VariantCounts } from './campaign-report.js'
import type { JourneyStep } from './journey-steps.js'

/** One step's counts. */
export interface JourneyStepReport {
  step: number
  key: string
  channel: JourneyStep['channel']
  delayHours: number
  goal: JourneyStep['goal']
  audience: number
  enqueued: number
  skipped: { capped: number; optedOut: number; unreachable: number }
  sent: number
  failed: number
  /** Enqueued, not sent: the member opted out since, or the enrollment ended (converted, left). */
  withdrawn: { optedOut: number; cancelled: number }
  /** Enqueued; whether it reached the member is unknown (a send interrupted, not sent again). */
  unknown: number
  /** Enqueued, not settled yet (pending, held while paused, being sent). */
  queued: number
  delivered: number
  converted: number
  conversionRate: number | null
}

/** A journey's report. */
export interface JourneyReport {
  enrollments: {
    started: number
    active: number
    converted: number
    left: number
    completed: number
  }
  steps: JourneyStepReport[]
}

/** A step's counts: a campaign variant's, less clicks (journeys have no tracked links). */
type Counts = Omit<VariantCounts, 'variant' | 'clicked' | 'converted' | 'redeemed'> & {
  step: number
}

/** The report of journey `id` (steps as defined now; counts of steps since removed are dropped). */
export async function journeyReport(
  db: Kysely<Database>,
  journey: { id: number; appid: string; steps: string | JourneyStep[] },
): Promise<JourneyReport> {
  const steps =
    typeof journey.steps === 'string' ? (JSON.parse(journey.steps) as JourneyStep[]) : journey.steps
  const [sends, ended, converted] = await Promise.all([
    sql<Counts>`
      select s.step,
        count(*)::int as audience,
        count(*) filter (where s.outcome = 'enqueued')::int as enqueued,
        count(*) filter (where s.outcome = 'capped')::int as capped,
        count(*) filter (where s.outcome = 'opted_out')::int as opted_out,
        count(*) filter (where s.outcome = 'unreachable')::int as unreachable,
        ${pushOutcomes('o')},
        count(*) filter (where coalesce(o.delivery, rc.status) = 'success'
          or (o.status = 'sent' and o.kind = 'custom'))::int as delivered
      from journey_sends s
      left join push_outbox o on o.appid = ${journey.appid} and o.source = s.outbox_source
      left join push_receipts rc on rc.appid = o.appid and rc.msgid = o.wechat_msgid
      where s.journey_id = ${journey.id}
      group by s.step`.execute(db),
    db
      .selectFrom('journey_enrollments')
      .select(['status', (eb) => eb.fn.countAll<number>().as('n')])
      .where('journey_id', '=', journey.id)
      .groupBy('status')
      .execute(),
    db
      .selectFrom('journey_enrollments')
      .select(['last_step', (eb) => eb.fn.countAll<number>().as('n')])
      .where('journey_id', '=', journey.id)
      .where('status', '=', 'converted')
      .groupBy('last_step')
      .execute(),
  ])
  const by = (status: string) => Number(ended.find((r) => r.status === status)?.n ?? 0)
  const enrollments = {
    started: ended.reduce((n, r) => n + Number(r.n), 0),
    active: by('active'),
    converted: by('converted'),
    left: by('left'),
    completed: by('completed'),
  }
  return {
    enrollments,
    steps: steps.map((s, k) => {
      const c = sends.rows.find((r) => r.step === k)
      const conv = Number(converted.find((r) => r.last_step === k)?.n ?? 0)
      const enqueued = c?.enqueued ?? 0
      return {
        step: k,
        key: s.key,
        channel: s.channel,
        delayHours: s.delayHours,
        goal: s.goal,
        audience: c?.audience ?? 0,
        enqueued,
        skipped: {
          capped: c?.capped ?? 0,
          optedOut: c?.opted_out ?? 0,
          unreachable: c?.unreachable ?? 0,
        },
        ...pushEndings(c ?? NO_PUSHES),
        delivered: c?.delivered ?? 0,
        converted: conv,
        conversionRate: enqueued ? Math.round((conv / enqueued) * 10_000) / 10_000 : null,
      }
    }),
  }
}

/** A step nobody reached: no pushes. */
const NO_PUSHES = {
  enqueued: 0,
  sent: 0,
  failed: 0,
  withdrawn_opted_out: 0,
  cancelled: 0,
  unknown: 0,
}

/** The account's journeys (not the seeded examples), oldest first, with their steps parsed. */
export async function listJourneys(db: Kysely<Database>, appid: string) {
  const rows = await db
    .selectFrom('journeys')
    .select([
      'id',
      'appid',
      'key',
      'name',
      'segment',
      'status',
      'steps',
      'created_at',
      'updated_at',
    ])
    .where('appid', '=', appid)
    .orderBy('id')
    .execute()
  return rows.map((r) => ({ ...r, steps: JSON.parse(r.steps) as JourneyStep[] }))
}
