/**
 * What no table keeps, counted per account and minute in `traffic_counts` for the error-rate alert:
 * pushes the webhook refused (nothing of them is stored, by design) and outbox sends by result.
 * Each process adds up in memory and writes its counts every few seconds — one upsert per (account,
 * minute, name) however many requests came, so a flood of refused pushes costs no more writes —
 * and the database holds the sum of every process. A process that dies loses at most the counts
 * since its last flush; no figure depends on one process's memory otherwise.
 */
import { type Kysely, sql } from 'kysely'
import type { Clock } from '../clock.js'
import type { Database, TrafficCountsTable } from '../db/schema.js'

export type TrafficName = TrafficCountsTable['name']

/** Counts in memory, written by {@link TrafficCounter.flush}. */
export interface TrafficCounter {
  /** Counts `n` (default 1) for the current minute; cheap, never throws. */
  add(appid: string, name: TrafficName, n?: number): void
  /** Writes what was counted since the last flush; counts that failed to write are kept. */
  flush(): Promise<void>
}

/** Minutes kept in memory while the database does not answer (older counts are dropped). */
const MAX_PENDING_MINUTES = 60

/**
 * A counter writing to `traffic_counts`.
 * @example const traffic = trafficCounter(db, systemClock); setInterval(() => traffic.flush(), 10_000)
 */
export function trafficCounter(db: Kysely<Database>, clock: Clock): TrafficCounter {
  let pending = new Map<string, number>()
  let flushing: Promise<void> | undefined
  const write = async () => {
    const batch = pending
    pending = new Map()
    if (batch.size === 0) return
    const rows = [...batch].map(([key, n]) => {
      const [appid, minute, name] = key.split('\n') as [string, string, TrafficName]
      return { appid, minute: new Date(Number(minute)), name, n }
    })
    try {
      await db
        .insertInto('traffic_counts')
        .values(rows)
        .onConflict((oc) =>
          oc
            .columns(['appid', 'minute', 'name'])
            .doUpdateSet({ n: sql<number>`traffic_counts.n + excluded.n` }),
        )
        .execute()
    } catch (error) {
      const oldest = Math.floor(clock.now().getTime() / 60_000 - MAX_PENDING_MINUTES) * 60_000
      for (const [key, n] of batch)
        if (Number(key.split('\n')[1]) >= oldest) pending.set(key, (pending.get(key) ?? 0) + n)
      throw error
    }
  }
  return {
    add(appid, name, n = 1) {
      if (!(n > 0)) return
      const minute = Math.floor(clock.now().getTime() / 60_000) * 60_000
      const key = `${appid}\n${minute}\n${name}`
      pending.set(key, (pending.get(key) ?? 0) + n)
    },
    async flush() {
      // One write at a time: a slow database gets the next flush after this one.
      while (flushing) await flushing
      flushing = write().finally(() => {
        flushing = undefined
      })
      return flushing
    },
  }
}

/** The counts of `[from, to)` for one account, by name. */
export async function readTraffic(
  db: Kysely<Database>,
  appid: string,
  from: Date,
  to: Date,
): Promise<Record<TrafficName, number>> {
  const rows = await db
    .selectFrom('traffic_counts')
    .select(['name', (eb) => eb.fn.sum<number>('n').as('n')])
    .where('appid', '=', appid)
    .where('minute', '>=', from)
    .where('minute', '<', to)
    .groupBy('name')
    .execute()
  const out: Record<TrafficName, number> = { push_refused: 0, send_sent: 0, send_failed: 0 }
  for (const r of rows) out[r.name] = Number(r.n)
  return out
}

/** Deletes counts older than `before`; returns how many rows. */
export async function pruneTraffic(db: Kysely<Database>, before: Date): Promise<number> {
  const r = await db.deleteFrom('traffic_counts').where('minute', '<', before).executeTakeFirst()
  return Number(r.numDeletedRows)
}
