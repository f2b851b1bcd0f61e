/** The audit log: privileged actions, written in the same transaction as the change they record. */
import type { Kysely, Transaction } from 'kysely'
import type { Database } from '../db/schema.js'

export interface AuditEntry {
  appid: string
  actor: string
  action: string
  target: string
  details: unknown
  now: Date
  /** Where the request came from, when it came over HTTP (`c.var.clientAddress`). */
  clientAddress?: string
}

/** Appends one entry. */
export async function audit(
  db: Kysely<Database> | Transaction<Database>,
  e: AuditEntry,
): Promise<void> {
  await db
    .insertInto('audit_log')
    .values({
      appid: e.appid,
      actor: e.actor,
      action: e.action,
      target: e.target,
      details: JSON.stringify(e.details),
      created_at: e.now,
      client_address: e.clientAddress ?? null,
    })
    .execute()
}
