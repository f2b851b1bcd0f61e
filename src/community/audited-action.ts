/**
 * `auditedAction(db, entry, action)`: runs a privileged change in one transaction and writes its
 * audit-log entry in the same transaction, so the log never names a change that rolled back nor
 * misses one that committed. The console uses it for every action; the admin API's
 * "transaction + audit" blocks have the same shape and can move onto it.
 */
import type { Kysely, Transaction } from 'kysely'
import type { Database } from '../db/schema.js'
import { type AuditEntry, audit } from './audit-log.js'

/** What to record; `target` and `details` may depend on the action's result. */
export interface AuditedEntry<R> extends Omit<AuditEntry, 'target' | 'details'> {
  target: string | ((result: R) => string)
  details?: unknown | ((result: R) => unknown)
}

/**
 * Runs `action` in a transaction and audits it there; returns the action's result. An action that
 * throws writes nothing.
 * @example
 * await auditedAction(db, { appid, actor: 'alice', action: 'operator.add', target: name,
 *   now: clock.now(), clientAddress: c.var.clientAddress }, (trx) => addOperator(trx, …))
 */
export function auditedAction<R>(
  db: Kysely<Database>,
  entry: AuditedEntry<R>,
  action: (trx: Transaction<Database>) => Promise<R>,
): Promise<R> {
  return db.transaction().execute(async (trx) => {
    const result = await action(trx)
    const { target, details, ...rest } = entry
    await audit(trx, {
      ...rest,
      target: typeof target === 'function' ? target(result) : target,
      details: typeof details === 'function' ? details(result) : (details ?? null),
    })
    return result
  })
}
