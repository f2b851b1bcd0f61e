/**
 * The one way an operator action changes anything: the change and its audit-log entry commit
 * together. Every operator action (src/admin/actions/) goes through {@link auditedAction}, whether
 * the JSON API or the console calls it.
 */
import type { Kysely, Transaction } from 'kysely'
import type { Clock } from '../../clock.js'
import { type AuditAction, audit } from '../../community/audit-log.js'
import type { Database } from '../../db/schema.js'

/** Who acts: the API's bearer-token holder is `operator`; the console passes the operator's name. */
export interface Actor {
  name: string
  /** Where the request came from, when it came over HTTP (`c.var.clientAddress`). */
  clientAddress?: string
}

/** What every operator action works with. */
export interface ActionDeps {
  db: Kysely<Database>
  clock: Clock
  /** The community's time zone (days, periods, cron). */
  timeZone: string
}

/** One audited step: which account, who, what, on what, when. */
export interface AuditedStep {
  appid: string
  actor: Actor
  /** `points.grant`, `reward.create`, `campaign.pause` … (AUDIT_ACTIONS) */
  action: AuditAction
  target: string
  now: Date
  /**
   * `'after'`: the work commits on its own — it locks and commits in its own transaction(s) (a
   * redemption cancellation) or calls WeChat or WeChat Pay, which no transaction
   * may be held across — and the entry is written right after it returns. Default `'with'`: the
   * work runs in a transaction that the entry joins.
   */
  commit?: 'with' | 'after'
}

/**
 * What the work answers: the `result` for the caller and, when it changed something, the `details`
 * to audit (`target` and `action` override the step's when they are known only now). Without
 * `details` nothing changed and nothing is audited (an existing code, an unknown row).
 */
export interface Audited<T> {
  result: T
  details?: unknown
  target?: string
  action?: AuditAction
}

/**
 * Runs `work` and writes its audit entry: in the same transaction (`commit: 'with'`), or right
 * after the work's own commit (`commit: 'after'`; `work` then gets the database itself).
 *
 * @example
 * const reward = await auditedAction(db, { appid, actor, action: 'reward.create', target, now },
 *   async (trx) => { const row = await insert(trx); return { result: row, details: row && input } })
 */
export async function auditedAction<T>(
  db: Kysely<Database>,
  step: AuditedStep & { commit?: 'with' },
  work: (trx: Transaction<Database>) => Promise<Audited<T>>,
): Promise<T>
export async function auditedAction<T>(
  db: Kysely<Database>,
  step: AuditedStep & { commit: 'after' },
  work: (db: Kysely<Database>) => Promise<Audited<T>>,
): Promise<T>
export async function auditedAction<T>(
  db: Kysely<Database>,
  step: AuditedStep,
  work: (db: Transaction<Database>) => Promise<Audited<T>>,
): Promise<T> {
  const record = async (to: Kysely<Database>, done: Audited<T>) => {
    if (done.details === undefined) return done.result
    await audit(to, {
      appid: step.appid,
      actor: step.actor.name,
      action: done.action ?? step.action,
      target: done.target ?? step.target,
      details: done.details,
      now: step.now,
      clientAddress: step.actor.clientAddress,
    })
    return done.result
  }
  // 'after': the overload types `work` as taking the database itself, not a transaction.
  if (step.commit === 'after') return record(db, await work(db as Transaction<Database>))
  return db.transaction().execute(async (trx) => record(trx, await work(trx)))
}
