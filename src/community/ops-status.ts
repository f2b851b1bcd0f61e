/**
 * The engine's vital signs for /healthz and /metrics: can the database answer and how fast, how
 * much of the outbox is due and how late, and when each job last ran and last succeeded. Read from
 * the database (so every instance reports the same), with one indexed query each, and cached for a
 * second so a burst of probes costs one round of queries.
 */
import { type Kysely, sql } from 'kysely'
import type { Clock } from '../clock.js'
import type { Database } from '../db/schema.js'

/** Due outbox items of one kind. */
export interface OutboxLoad {
  backlog: number
  /** How long the oldest due item has waited; 0 when none is due. */
  oldestDueSeconds: number
}

/** A snapshot of the vital signs. */
export interface OpsStatus {
  ok: boolean
  db: { ok: boolean; ms: number; error?: string }
  outbox: OutboxLoad & {
    byKind: Record<string, OutboxLoad>
    /** APIs paused by a quota error: `{appid, api, until}` (empty when none). */
    paused: { appid: string; api: string; until: string }[]
  }
  /**
   * Refunds not finished (`requested`: not accepted by WeChat Pay yet, `processing`: accepted, not
   * settled) or needing an operator (`failed`, `abnormal`), with the age of the oldest.
   */
  refunds: Record<string, { count: number; oldestSeconds: number }>
  jobs: {
    /** Seconds since the scheduler last started any job (every-minute jobs keep it under ~60). */
    lagSeconds: number | null
    /** Per job: seconds since its last successful run (null: never). */
    sinceSuccess: Record<string, number | null>
  }
}

const seconds = (now: Date, then: Date | string | null) =>
  then === null ? null : Math.max(0, Math.round((now.getTime() - new Date(then).getTime()) / 1000))

/** Reads the vital signs (no cache). */
export async function readOpsStatus(
  db: Kysely<Database>,
  clock: Clock,
  jobNames: readonly string[],
): Promise<OpsStatus> {
  const started = performance.now()
  try {
    return await read(db, clock.now(), jobNames, started)
  } catch (error) {
    return {
      ok: false,
      db: { ok: false, ms: Math.round(performance.now() - started), error: String(error) },
      outbox: { backlog: 0, oldestDueSeconds: 0, byKind: {}, paused: [] },
      refunds: {},
      jobs: { lagSeconds: null, sinceSuccess: {} },
    }
  }
}

async function read(
  db: Kysely<Database>,
  now: Date,
  jobNames: readonly string[],
  started: number,
): Promise<OpsStatus> {
  await sql`select 1`.execute(db)
  const ms = Math.round((performance.now() - started) * 10) / 10
  // The partial index push_outbox_due_idx covers pending/sending rows.
  const due = await db
    .selectFrom('push_outbox')
    .select([
      'kind',
      (eb) => eb.fn.countAll<number>().as('n'),
      (eb) => eb.fn.min('next_attempt_at').as('oldest'),
    ])
    .where('status', 'in', ['pending', 'sending'])
    .where('next_attempt_at', '<=', now)
    .groupBy('kind')
    .execute()
  const byKind: Record<string, OutboxLoad> = {}
  for (const row of due)
    byKind[row.kind] = {
      backlog: Number(row.n),
      oldestDueSeconds: seconds(now, row.oldest as Date | null) ?? 0,
    }
  const loads = Object.values(byKind)
  const paused = await db
    .selectFrom('outbox_pauses')
    .select(['appid', 'api', 'paused_until'])
    .where('paused_until', '>', now)
    .orderBy('appid')
    .orderBy('api')
    .execute()
  // The partial index refunds_open_idx holds exactly these rows.
  const refundRows = await db
    .selectFrom('refunds')
    .select([
      'status',
      (eb) => eb.fn.countAll<number>().as('n'),
      (eb) => eb.fn.min('created_at').as('oldest'),
    ])
    .where('status', 'in', ['requested', 'processing', 'failed', 'abnormal'])
    .groupBy('status')
    .execute()
  const refunds: OpsStatus['refunds'] = {}
  for (const r of refundRows)
    refunds[r.status] = {
      count: Number(r.n),
      oldestSeconds: seconds(now, r.oldest as Date | null) ?? 0,
    }
  // One probe of the (job, slot) primary key per job.
  const runs =
    jobNames.length === 0
      ? []
      : (
          await sql<{ job: string; last_run: Date | null; last_success: Date | null }>`
            select j.name as job,
              (select max(slot) from job_runs r where r.job = j.name) as last_run,
              (select max(slot) from job_runs r where r.job = j.name and r.status = 'succeeded')
                as last_success
            from (values ${sql.join(jobNames.map((n) => sql`(${n})`))}) as j(name)`.execute(db)
        ).rows
  const lastRun = runs
    .map((r) => (r.last_run ? new Date(r.last_run).getTime() : 0))
    .reduce((a, b) => Math.max(a, b), 0)
  return {
    ok: true,
    db: { ok: true, ms },
    outbox: {
      backlog: loads.reduce((n, l) => n + l.backlog, 0),
      oldestDueSeconds: loads.reduce((n, l) => Math.max(n, l.oldestDueSeconds), 0),
      byKind,
      paused: paused.map((p) => ({
        appid: p.appid,
        api: p.api,
        until: p.paused_until.toISOString(),
      })),
    },
    refunds,
    jobs: {
      lagSeconds: lastRun ? seconds(now, new Date(lastRun)) : null,
      sinceSuccess: Object.fromEntries(runs.map((r) => [r.job, seconds(now, r.last_success)])),
    },
  }
}

/** {@link readOpsStatus} behind a cache of `ttlMs`; concurrent callers share one read. */
export function cachedOpsStatus(
  db: Kysely<Database>,
  clock: Clock,
  jobNames: readonly string[],
  ttlMs = 1000,
): () => Promise<OpsStatus> {
  let cached: { at: number; value: Promise<OpsStatus> } | undefined
  let pending = false
  return () => {
    const at = Date.now()
    // A read still running is shared however long it takes: a slow database gets one at a time.
    if (!cached || (!pending && at - cached.at >= ttlMs)) {
      pending = true
      const value = readOpsStatus(db, clock, jobNames).finally(() => {
        pending = false
        if (cached) cached.at = Date.now()
      })
      cached = { at, value }
    }
    return cached.value
  }
}
