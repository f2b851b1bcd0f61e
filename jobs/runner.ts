/**
 * Running jobs exactly once per slot, whatever the number of processes. Every decision is a row in
 * `job_runs`, never process memory:
 * - **Claim**: a run first inserts `(job, slot)` (insert … on conflict do nothing); the process that
 *   inserted runs the job and stores its result, the others skip. The slot is the scheduled time,
 *   rounded to the second so that processes whose clocks differ by less than half a second agree.
 * - **Lease**: the running process renews `lease_until` every third of JOB_LEASE_SECONDS. A
 *   `running` row whose lease passed belongs to a process that died: the next tick that finds it
 *   takes it over with a conditional update (`status = 'running' and lease_until < now`, so one
 *   process wins) and runs it again (attempt 2); if that one dies too or fails, the slot is marked
 *   failed and reported as abandoned (`JOB_ABANDONED`).
 * - **Retry**: a scheduled run that fails with a try left is not given up: it is stored `paused`
 *   (with its cursor, if its chunks saved one) and its second try is resumed by a later tick like
 *   any paused run, not before {@link RETRY_DELAY_MS} has passed — a transient error (a
 *   dropped connection) at a daily slot would otherwise lose that slot for good, since catch-up
 *   starts after it. A failure of the last try is final (`failed`, `JOB_ABANDONED`).
 * - **Catch-up**: each tick of a job first runs the slots its cron matched since the job's last
 *   scheduled slot (manual runs do not count) and that no process ran — after downtime, a late
 *   Workers trigger, or a tick node-cron skipped while the previous run went on — oldest first,
 *   each through the same claim, at most JOB_CATCH_UP_HOURS back. A job with no scheduled slot
 *   yet does not catch up.
 * - **Budget** (Workers): a tick may carry a {@link Budget}. A long job works in chunks
 *   (jobs/chunks.ts) and, once the budget is spent, returns `more: true`: its slot is `paused` (no
 *   process holds it) with the cursor its chunks saved, and every later tick resumes it first —
 *   whether or not the job is due — until it finishes (on Node, where a job ticks only at its own
 *   cron, the sweep of jobs/schedule.ts looks every minute: {@link jobsToResume}, then a tick with
 *   `resumeOnly`). A tick starts no further slot of a job
 *   once the budget is spent; the catch-up runs those later (with catch-up off, they are stored
 *   `paused` without a cursor, so later ticks resume them). Node passes no budget: jobs run to
 *   completion.
 */
import type { ExpressionBuilder, Kysely, Transaction } from 'kysely'
import type { Budget } from '../src/budget.js'
import { cronMatches, cronSlots } from '../src/cron.js'
import type { Database } from '../src/db/schema.js'
import type { Metrics } from '../src/metrics.js'
import type { Job, JobContext, JobDeps } from './types.js'

/**
 * A run whose process died, or a scheduled run that failed, is tried once more; after that it is
 * marked failed (abandoned) — a job failing for a permanent reason runs twice, not every minute.
 */
export const MAX_ATTEMPTS = 2

/**
 * The back-off before the retry of a failed run: its paused row is not resumed before then
 * (`lease_until` of a paused row; null — a budget pause — is resumable at once). 30 s puts the
 * retry at a later minute's tick (Workers' trigger, the Node sweep), not at the same minute's sweep
 * right after the failure, where a dropped connection would likely fail it again.
 */
export const RETRY_DELAY_MS = 30_000

/** Whether a paused run may be resumed at `now`: its retry back-off ({@link RETRY_DELAY_MS}) passed. */
const retryDue = (now: Date) => (eb: ExpressionBuilder<Database, 'job_runs'>) =>
  eb.or([eb('lease_until', 'is', null), eb('lease_until', '<=', now)])

/** A run slower than this is logged at warn. */
const SLOW_MS = 30_000

/** What happened to one slot in this process. */
export type SlotOutcome =
  | { status: 'ran'; result: Record<string, unknown>; attempt: number }
  /** The budget ran out before the work was done (`result.more`): the next tick resumes it. */
  | { status: 'paused'; result: Record<string, unknown>; attempt: number }
  | { status: 'failed'; error: unknown; attempt: number }
  /** This process found the last try dead and marked the slot failed. */
  | { status: 'abandoned'; attempts: number }
  | { status: 'skipped' }

/** One slot of a scheduled tick and its outcome. */
export type SlotReport = { job: string; slot: Date } & SlotOutcome

/** The slot of a scheduled time: rounded to the second. */
export const slotOf = (scheduled: Date) => new Date(Math.round(scheduled.getTime() / 1000) * 1000)

/** A name for this process in `job_runs.worker`. */
export const workerName = () =>
  `${globalThis.process?.pid ?? 'worker'}@${Math.random().toString(36).slice(2, 8)}`

type Claim = { attempt: number; cursor: string | null } | { abandoned: number } | undefined

/** Thrown by `saveCursor` when the run is no longer this process's: the chunk rolls back. */
export class JobLeaseLost extends Error {
  constructor(job: string, slot: Date) {
    super(`job ${job} at ${slot.toISOString()}: the run was taken over; its chunk is not saved`)
    this.name = 'JobLeaseLost'
  }
}

/**
 * A new row for the slot, or the resumption of a paused run, or a takeover of a dead run with a
 * try left (with the cursor its chunks saved), or its abandonment.
 */
async function claim(
  job: Job,
  deps: JobDeps,
  o: { slot: Date; trigger: 'schedule' | 'manual'; worker: string },
): Promise<Claim> {
  const { db, clock, config } = deps
  const now = clock.now()
  const lease = new Date(now.getTime() + config.jobs.leaseSeconds * 1000)
  const inserted = await db
    .insertInto('job_runs')
    .values({
      job: job.name,
      slot: o.slot,
      trigger: o.trigger,
      status: 'running',
      worker: o.worker,
      started_at: now,
      lease_until: lease,
      attempts: 1,
    })
    .onConflict((oc) => oc.columns(['job', 'slot']).doNothing())
    .returning('attempts')
    .executeTakeFirst()
  if (inserted) return { attempt: 1, cursor: null }
  const resumed = await db
    .updateTable('job_runs')
    .where('job', '=', job.name)
    .where('slot', '=', o.slot)
    .where('status', '=', 'paused')
    .where(retryDue(now))
    .set({ status: 'running', worker: o.worker, lease_until: lease })
    .returning(['attempts', 'cursor'])
    .executeTakeFirst()
  if (resumed) return { attempt: resumed.attempts, cursor: resumed.cursor }
  const dead = db
    .updateTable('job_runs')
    .where('job', '=', job.name)
    .where('slot', '=', o.slot)
    .where('status', '=', 'running')
    .where('lease_until', '<', now)
  const taken = await dead
    .set((eb) => ({
      worker: o.worker,
      started_at: now,
      lease_until: lease,
      attempts: eb('attempts', '+', 1),
    }))
    .where('attempts', '<', MAX_ATTEMPTS)
    .returning(['attempts', 'cursor'])
    .executeTakeFirst()
  if (taken) {
    deps.logger.warn('job run lost its process: running it again', {
      code: 'JOB_RETRIED',
      job: job.name,
      slot: o.slot.toISOString(),
      attempt: taken.attempts,
    })
    return { attempt: taken.attempts, cursor: taken.cursor }
  }
  const given = await dead
    .set({
      status: 'failed',
      finished_at: now,
      error: `abandoned: the process of its last try stopped renewing its lease (${MAX_ATTEMPTS} tries)`,
    })
    .where('attempts', '>=', MAX_ATTEMPTS)
    .returning('attempts')
    .executeTakeFirst()
  return given ? { abandoned: given.attempts } : undefined
}

/**
 * Claims `(job, slot)` — or takes over a run of it whose process died — and, if this caller won,
 * runs the job while renewing the lease, then records the outcome (only while the run is still
 * this caller's): succeeded, failed, or paused when the job says `more` (its budget ran out) or
 * when it failed with a try left (its retry, after {@link RETRY_DELAY_MS}). A manual run's context
 * slot is now rounded down to the minute.
 */
export async function runJobSlot(
  job: Job,
  deps: JobDeps,
  o: { slot: Date; trigger: 'schedule' | 'manual'; worker: string; budget?: Budget },
): Promise<SlotOutcome> {
  const claimed = await claim(job, deps, o)
  if (!claimed) return { status: 'skipped' }
  if ('abandoned' in claimed) return { status: 'abandoned', attempts: claimed.abandoned }
  const { attempt, cursor } = claimed
  const { db, clock, logger, config } = deps
  const leaseMs = config.jobs.leaseSeconds * 1000
  const mine = (q: Kysely<Database> = db) =>
    q
      .updateTable('job_runs')
      .where('job', '=', job.name)
      .where('slot', '=', o.slot)
      .where('status', '=', 'running')
      .where('worker', '=', o.worker)
      .where('attempts', '=', attempt)
  const heartbeat = setInterval(() => {
    mine()
      .set({ lease_until: new Date(clock.now().getTime() + leaseMs) })
      .executeTakeFirst()
      .then((r) => {
        if (r.numUpdatedRows > 0n) return
        clearInterval(heartbeat)
        logger.warn('job run lost its lease (another process took it over)', {
          code: 'JOB_LEASE_LOST',
          job: job.name,
          slot: o.slot.toISOString(),
        })
      })
      .catch((error) =>
        logger.warn('job lease not renewed', {
          code: 'JOB_LEASE_RENEWAL_FAILED',
          job: job.name,
          error,
        }),
      )
  }, leaseMs / 3)
  const slot =
    o.trigger === 'manual' ? new Date(Math.floor(o.slot.getTime() / 60_000) * 60_000) : o.slot
  const ctx: JobContext = {
    ...deps,
    slot,
    budget: o.budget,
    cursor: cursor === null ? undefined : JSON.parse(cursor),
    // The chunk's transaction writes the cursor and renews the lease, or rolls back: a run taken
    // over by another process commits nothing more (the row lock orders the two).
    async saveCursor(trx: Transaction<Database>, next: unknown) {
      const saved = await mine(trx)
        .set({
          cursor: JSON.stringify(next),
          lease_until: new Date(clock.now().getTime() + leaseMs),
        })
        .executeTakeFirst()
      if (saved.numUpdatedRows === 0n) throw new JobLeaseLost(job.name, o.slot)
    },
  }
  let outcome: SlotOutcome
  try {
    const result = await job.run(ctx)
    outcome = { status: result.more === true ? 'paused' : 'ran', result, attempt }
  } catch (error) {
    outcome = { status: 'failed', error, attempt }
  } finally {
    clearInterval(heartbeat)
  }
  // A failed run is not given up while it has a try left: paused with one try used (and its
  // cursor, if a chunk committed one in its own transaction), a tick at least RETRY_DELAY_MS later
  // resumes it through the claim — so a transient error does not lose a scheduled slot. A manual
  // run is retried only when it saved progress: its caller sees the failure and can run it again.
  const retried =
    outcome.status === 'failed' && attempt < MAX_ATTEMPTS
      ? await mine()
          .$if(o.trigger === 'manual', (q) => q.where('cursor', 'is not', null))
          .set({
            status: 'paused',
            lease_until: new Date(clock.now().getTime() + RETRY_DELAY_MS),
            attempts: attempt + 1,
            error: message(outcome),
          })
          .executeTakeFirst()
      : undefined
  if (retried && retried.numUpdatedRows > 0n)
    deps.logger.warn('job run failed: a later tick tries it again', {
      code: 'JOB_RETRIED',
      job: job.name,
      slot: o.slot.toISOString(),
      attempt: attempt + 1,
    })
  else
    await mine()
      .set(
        outcome.status === 'ran'
          ? {
              status: 'succeeded',
              finished_at: clock.now(),
              result: JSON.stringify(outcome.result),
            }
          : outcome.status === 'paused'
            ? { status: 'paused', lease_until: null, result: JSON.stringify(outcome.result) }
            : { status: 'failed', finished_at: clock.now(), error: message(outcome) },
      )
      .execute()
  return outcome
}

const message = (o: SlotOutcome) =>
  o.status === 'failed' ? (o.error instanceof Error ? o.error.message : String(o.error)) : ''

/**
 * One scheduled tick of a job at `slot`: first its paused runs (a failed run's retry once its
 * back-off passed), its runs whose process died (lease
 * passed) and the slots its cron matched since its last scheduled slot that no process ran — the
 * last two at most `config.jobs.catchUpHours` back — then, when `due`, `slot` itself; oldest
 * first, each through its claim, each logged and counted; no slot after the first once `budget`
 * is spent (with catch-up off, those are stored paused for the next ticks). Never throws.
 * node-cron's six-field (seconds) expressions are not caught up, only their dead runs taken over.
 * `resumeOnly` (the Node sweep, {@link jobsToResume}): only the paused and dead runs, no slot
 * started, nothing caught up.
 */
export async function runScheduled(
  job: Job,
  deps: JobDeps,
  o: {
    slot: Date
    due: boolean
    timeZone: string
    worker: string
    metrics?: Metrics
    budget?: Budget
    resumeOnly?: boolean
  },
): Promise<SlotReport[]> {
  let slots: Date[]
  try {
    slots = await slotsToRun(job, deps, o)
  } catch (error) {
    deps.logger.warn('job tick failed', { code: 'JOB_FAILED', job: job.name, error })
    return []
  }
  const reports: SlotReport[] = []
  for (const [i, slot] of slots.entries()) {
    if (reports.length > 0 && o.budget && !o.budget.left()) {
      await postpone(job, deps, slots.slice(i), o.worker)
      break
    }
    const started = performance.now()
    const outcome = await runJobSlot(job, deps, {
      slot,
      trigger: 'schedule',
      worker: o.worker,
      budget: o.budget,
    })
      // The outcome could not be recorded (database gone): report it as a failure of this try.
      .catch((error): SlotOutcome => ({ status: 'failed', error, attempt: 0 }))
    report(job, slot, outcome, Math.round(performance.now() - started), deps, o.metrics)
    reports.push({ job: job.name, slot, ...outcome })
  }
  return reports
}

/**
 * Keeps the slots a tick did not start for its spent budget when nothing else would run them
 * (JOB_CATCH_UP_HOURS=0: no catch-up): each is stored `paused`, without a cursor, so every later
 * tick resumes it first — catch-up 0 drops the slots missed while no process ran, not those a tick
 * postponed. A slot another process claimed meanwhile keeps its row. Never throws.
 */
async function postpone(job: Job, deps: JobDeps, slots: Date[], worker: string): Promise<void> {
  if (deps.config.jobs.catchUpHours > 0 || slots.length === 0) return
  const now = deps.clock.now()
  await deps.db
    .insertInto('job_runs')
    .values(
      slots.map((slot) => ({
        job: job.name,
        slot,
        trigger: 'schedule' as const,
        status: 'paused' as const,
        worker,
        started_at: now,
      })),
    )
    .onConflict((oc) => oc.columns(['job', 'slot']).doNothing())
    .execute()
    .catch((error) =>
      deps.logger.warn('postponed job slot not recorded', {
        code: 'JOB_FAILED',
        job: job.name,
        error,
      }),
    )
}

async function slotsToRun(
  job: Job,
  { db, clock, logger, config }: JobDeps,
  o: { slot: Date; due: boolean; timeZone: string; resumeOnly?: boolean },
): Promise<Date[]> {
  const paused = (
    await db
      .selectFrom('job_runs')
      .select('slot')
      .where('job', '=', job.name)
      .where('status', '=', 'paused')
      .where('slot', '<=', o.slot)
      .where(retryDue(clock.now()))
      .execute()
  ).map((r) => new Date(r.slot))
  const current = o.due && !o.resumeOnly ? [o.slot] : []
  if (config.jobs.catchUpHours === 0) return unique([...paused, ...current])
  const since = new Date(o.slot.getTime() - config.jobs.catchUpHours * 3_600_000)
  const [last, dead] = await Promise.all([
    o.resumeOnly
      ? undefined
      : db
          .selectFrom('job_runs')
          .select((eb) => eb.fn.max('slot').as('slot'))
          .where('job', '=', job.name)
          .where('trigger', '=', 'schedule')
          .where('slot', '<', o.slot)
          .executeTakeFirst(),
    db
      .selectFrom('job_runs')
      .select('slot')
      .where('job', '=', job.name)
      .where('trigger', '=', 'schedule')
      .where('status', '=', 'running')
      .where('lease_until', '<', clock.now())
      .where('slot', '>=', since)
      .where('slot', '<=', o.slot)
      .execute(),
  ])
  if (o.resumeOnly) return unique([...paused, ...dead.map((r) => new Date(r.slot))])
  const lastSlot = last?.slot ? new Date(last.slot).getTime() : undefined
  const matched =
    lastSlot !== undefined && job.cron.trim().split(/\s+/).length === 5
      ? cronSlots(job.cron, new Date(Math.max(lastSlot, since.getTime() - 1)), o.slot, o.timeZone)
      : []
  const missed = job.catchUp === 'every' ? matched : o.due ? [] : matched.slice(-1)
  if (matched.length > 0)
    logger.info('job catching up', {
      job: job.name,
      mode: job.catchUp ?? 'latest',
      missed: matched.length,
      slots: missed.length,
      from: matched[0]!.toISOString(),
      to: matched.at(-1)!.toISOString(),
    })
  return unique([...paused, ...dead.map((r) => new Date(r.slot)), ...missed, ...current])
}

/**
 * The jobs among `jobs` with a run a tick would continue without starting a slot: a paused run
 * (slot at most `at`; a failed run's retry once its back-off passed), or — with catch-up on — a scheduled run whose lease passed within
 * `config.jobs.catchUpHours` before `at`. The Node sweep asks this every minute, so a paused
 * run of a daily job is resumed within a minute, not at its next slot: one query on the two
 * partial indexes (`job_runs_paused`, `job_runs_running`), nothing else when it finds none.
 */
export async function jobsToResume(
  jobs: readonly Job[],
  { db, clock, config }: JobDeps,
  at: Date,
): Promise<Job[]> {
  if (jobs.length === 0) return []
  const names = jobs.map((j) => j.name)
  const since = new Date(at.getTime() - config.jobs.catchUpHours * 3_600_000)
  const paused = db
    .selectFrom('job_runs')
    .select('job')
    .where('job', 'in', names)
    .where('status', '=', 'paused')
    .where('slot', '<=', at)
    .where(retryDue(clock.now()))
  const rows = await (config.jobs.catchUpHours === 0
    ? paused
    : paused.union(
        db
          .selectFrom('job_runs')
          .select('job')
          .where('job', 'in', names)
          .where('status', '=', 'running')
          .where('trigger', '=', 'schedule')
          .where('lease_until', '<', clock.now())
          .where('slot', '>=', since)
          .where('slot', '<=', at),
      )
  ).execute()
  const found = new Set(rows.map((r) => r.job))
  return jobs.filter((j) => found.has(j.name))
}

/** The slots, each once, oldest first. */
function unique(slots: Date[]): Date[] {
  const all = new Map<number, Date>()
  for (const slot of slots) all.set(slot.getTime(), slot)
  return [...all.values()].sort((a, b) => a.getTime() - b.getTime())
}

/** A run of a job no longer in the list is closed only this long after its slot: in a rolling
 * deploy, the job may be a newer version's, whose ticks will resume it. */
export const ORPHAN_GRACE_MS = 86_400_000

/**
 * Closes the runs no tick will ever continue — paused, or running with a lease that passed — of
 * jobs not in `jobs` (removed or renamed): a job's paused and dead runs are resumed and taken over
 * by its own ticks only, so such a run would otherwise stay open for good (kept by the retention
 * as its job's newest scheduled run, resumed with a stale cursor if the job came back). Each is
 * marked failed (`abandoned: …`) and logged at warn as `JOB_ABANDONED`, once its slot is
 * {@link ORPHAN_GRACE_MS} before `at`. Returns how many.
 */
export async function closeOrphanedRuns(
  jobs: readonly Job[],
  { db, clock, logger }: JobDeps,
  at: Date,
): Promise<number> {
  if (jobs.length === 0) return 0
  const now = clock.now()
  const closed = await db
    .updateTable('job_runs')
    .where(
      'job',
      'not in',
      jobs.map((j) => j.name),
    )
    .where('slot', '<', new Date(at.getTime() - ORPHAN_GRACE_MS))
    .where((eb) =>
      eb.or([
        eb('status', '=', 'paused'),
        eb.and([eb('status', '=', 'running'), eb('lease_until', '<', now)]),
      ]),
    )
    .set({
      status: 'failed',
      finished_at: now,
      lease_until: null,
      error: 'abandoned: its job is no longer in the job list, no tick will continue it',
    })
    .returning(['job', 'slot'])
    .execute()
  for (const r of closed)
    logger.warn('job run abandoned: its job is no longer in the job list', {
      code: 'JOB_ABANDONED',
      job: r.job,
      slot: new Date(r.slot).toISOString(),
    })
  return closed.length
}

/**
 * Logs and counts one slot's outcome. Routine successful runs log at debug (an idle server would
 * otherwise write thousands of lines a day); failed and slow runs at warn with a stable `code`; a
 * slot given up after its retry died or failed at warn as `JOB_ABANDONED` (metrics outcome
 * `abandoned`).
 */
function report(
  job: Job,
  slot: Date,
  outcome: SlotOutcome,
  ms: number,
  { logger }: JobDeps,
  metrics?: Metrics,
): void {
  const gaveUp =
    outcome.status === 'abandoned' ||
    (outcome.status === 'failed' && outcome.attempt >= MAX_ATTEMPTS)
  metrics?.job({
    job: job.name,
    outcome: gaveUp ? 'abandoned' : outcome.status,
    seconds: ms / 1000,
  })
  const at = { job: job.name, slot: slot.toISOString(), ms }
  if (gaveUp)
    logger.warn('job abandoned after its retry', {
      code: 'JOB_ABANDONED',
      ...at,
      ...(outcome.status === 'failed' ? { error: outcome.error } : { attempts: outcome.attempts }),
    })
  else if (outcome.status === 'failed')
    logger.warn('job failed', { code: 'JOB_FAILED', ...at, error: outcome.error })
  else if (outcome.status === 'paused')
    logger.info('job paused: its budget ran out, the next tick resumes it', {
      ...at,
      ...outcome.result,
    })
  else if (outcome.status === 'ran' && ms >= SLOW_MS)
    logger.warn('job slow', { code: 'JOB_SLOW', ...at, ...outcome.result })
  else if (outcome.status === 'ran') logger.debug('job finished', { ...at, ...outcome.result })
}

/**
 * A Workers cron trigger (every minute): every job gets its tick ({@link runScheduled}: catch-up,
 * then the slot when its cron matches `scheduledTime` in the community's time zone).
 */
export async function runDue(
  jobs: readonly Job[],
  deps: JobDeps,
  o: {
    scheduledTime: Date
    timeZone: string
    worker: string
    metrics?: Metrics
    /** Shared by every job of the tick (Workers: a wall-clock deadline). */
    budget?: Budget
  },
): Promise<SlotReport[]> {
  const slot = slotOf(o.scheduledTime)
  // Jobs not due now are looked at too (two indexed reads each): a daily job whose trigger was
  // missed is caught up within a minute, not at its next day's slot.
  const ticks = await Promise.all(
    jobs.map((job) =>
      runScheduled(job, deps, {
        ...o,
        slot,
        due: cronMatches(job.cron, o.scheduledTime, o.timeZone),
      }),
    ),
  )
  return ticks.flat()
}
