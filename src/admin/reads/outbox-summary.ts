/**
 * The outbox by lane and status, deployment-wide: what waits (pending, sending, held by a paused
 * campaign, unknown after a lost answer) with the age of the oldest, and what finished in the last
 * day. The due backlog per kind, the paused APIs and their ages are `readOpsStatus`'s (/healthz,
 * /metrics): this adds what those do not count.
 */
import type { Kysely } from 'kysely'
import type { Database, OutboxLane, OutboxStatus } from '../../db/schema.js'

/** Items of one lane in one status. */
export interface OutboxCell {
  lane: OutboxLane
  status: OutboxStatus
  count: number
  /** Seconds since the oldest of them was enqueued. */
  oldestSeconds: number
}

const WAITING: OutboxStatus[] = ['pending', 'sending', 'held', 'unknown']
const DAY_MS = 86_400_000

/** Waiting items (any age) and those enqueued in the last 24 hours that finished, by lane. */
export async function outboxSummary(
  db: Kysely<Database>,
  now: Date,
): Promise<{ waiting: OutboxCell[]; lastDay: OutboxCell[] }> {
  const cells = (where: (q: ReturnType<typeof base>) => ReturnType<typeof base>) =>
    where(base())
      .groupBy(['lane', 'status'])
      .orderBy('lane')
      .orderBy('status')
      .execute()
      .then((rows) =>
        rows.map((r) => ({
          lane: Number(r.lane) as OutboxLane,
          status: r.status,
          count: Number(r.n),
          oldestSeconds: Math.max(
            0,
            Math.round((now.getTime() - new Date(r.oldest as Date).getTime()) / 1000),
          ),
        })),
      )
  const base = () =>
    db
      .selectFrom('push_outbox')
      .select([
        'lane',
        'status',
        (eb) => eb.fn.countAll<number>().as('n'),
        (eb) => eb.fn.min('created_at').as('oldest'),
      ])
  return {
    waiting: await cells((q) => q.where('status', 'in', WAITING)),
    // push_outbox_created_idx: the last day's rows only.
    lastDay: await cells((q) =>
      q
        .where('created_at', '>', new Date(now.getTime() - DAY_MS))
        .where('status', 'not in', WAITING),
    ),
  }
}
