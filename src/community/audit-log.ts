/**
 * The audit log: privileged actions, written in the same transaction as the change they record,
 * and refused operator calls; kept for a while (`pruneAuditLog`, the nightly retention job).
 */
import { type Kysely, sql, type Transaction } from 'kysely'
import { deleteInBatches } from '../db/delete-in-batches.js'
import type { Database } from '../db/schema.js'

/**
 * Every action the audit log records, as `<area>.<verb>`: each operator action
 * (src/admin/actions/, the console's operator and sign-in routes), the analytics rebuild, and the
 * moderators' commands (handlers/moderation.ts), which a non-moderator's attempt records as
 * `<action>.refused`. The console names each one (src/console/code-labels.ts); `tsc` fails on an
 * action without its words.
 */
export const AUDIT_ACTIONS = [
  'activity.create',
  'activity.update',
  'activity.award',
  'activity.open',
  'activity.close',
  'analytics.alert_settings',
  'analytics.rebuild',
  'announce',
  'badge.update',
  'badge.enable',
  'badge.disable',
  'campaign.create',
  'campaign.update',
  'campaign.schedule',
  'campaign.pause',
  'campaign.resume',
  'campaign.finish',
  'console.login',
  'invite.qr',
  'journey.adopt',
  'journey.activate',
  'journey.pause',
  'member.opt_out',
  'member.opt_in',
  'moderator.add',
  'moderator.remove',
  'operator.add',
  'operator.disable',
  'operator.enable',
  'operator.passwd',
  'order.refund',
  'points.grant',
  'points.deduct',
  'product.create',
  'product.update',
  'reconciliation.run',
  'reconciliation.resolve',
  'redemption.cancel',
  'review.hide',
  'review.unhide',
  'reward.create',
  'reward.update',
  'rule.update',
  'tags.add',
] as const

/** The action of a refused operator call: a wrong or missing token, a 4xx answer (admin-auth.ts). */
export const REFUSED = 'refused'

/** An action (see {@link AUDIT_ACTIONS}). */
export type AuditAction = (typeof AUDIT_ACTIONS)[number]
/** What an entry records: an action, a moderator's command refused, or a refused API call. */
export type AuditEntryAction = AuditAction | `${AuditAction}.refused` | typeof REFUSED

export interface AuditEntry {
  appid: string
  actor: string
  action: AuditEntryAction
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

/** How long audit entries are kept (from configuration), in days. */
export interface AuditRetention {
  /** Operator actions: every entry but refused calls (AUDIT_LOG_RETENTION_DAYS). */
  actionDays: number
  /** Refused calls, on their own shorter clock (AUDIT_REFUSED_RETENTION_DAYS). */
  refusedDays: number
}

/** What a prune of the audit log deleted. */
export interface AuditPruneResult {
  actions: number
  refused: number
}

/**
 * The ids of up to `limit` audit entries of one kind — refused calls, or every other action —
 * created before `before`. The action is written as a literal, not a parameter, so that a generic
 * plan of the prepared statement (src/db/prepared-statements.ts) still proves the partial index of
 * its kind (migration 0064) applies.
 */
export function expiredAuditEntries(
  db: Kysely<Database>,
  o: { refused: boolean; before: Date; limit: number },
) {
  return db
    .selectFrom('audit_log')
    .select('id')
    .where('action', o.refused ? '=' : '<>', sql.lit(REFUSED))
    .where('created_at', '<', o.before)
    .limit(o.limit)
}

/**
 * Deletes the audit entries older than their retention at `now` — refused calls after
 * `refusedDays`, every other action after `actionDays` (an entry exactly that old is kept) — in
 * batches of `batchSize`, each one short statement that finds its rows by index. Idempotent:
 * several processes pruning at once delete each entry once.
 * @example await pruneAuditLog(db, { now: slot, actionDays: 730, refusedDays: 30 })
 */
export async function pruneAuditLog(
  db: Kysely<Database>,
  o: AuditRetention & { now: Date; batchSize?: number },
): Promise<AuditPruneResult> {
  const limit = o.batchSize ?? 1000
  const prune = async (refused: boolean, days: number) => {
    const before = new Date(o.now.getTime() - days * 86_400_000)
    return deleteInBatches(limit, () =>
      db
        .deleteFrom('audit_log')
        .where('id', 'in', expiredAuditEntries(db, { refused, before, limit }))
        .executeTakeFirst(),
    )
  }
  const refused = await prune(true, o.refusedDays)
  return { actions: await prune(false, o.actionDays), refused }
}
