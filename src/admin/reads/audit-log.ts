/**
 * The audit log as an operator reads it: newest first, a page at a time (keyset on `id`), filtered
 * by actor, action, target (a prefix) and community days; the distinct actions for a filter's
 * choices. An account's view holds its own entries and the deployment's (`appid` `-`: sign-ins,
 * operator accounts).
 */
import type { Kysely } from 'kysely'
import * as v from 'valibot'
import { addDays, localDayStart } from '../../community/community-time.js'
import type { Database } from '../../db/schema.js'
import { reportDay } from '../../routes/validate.js'

/** The `appid` of entries that belong to the deployment, not an account. */
export const DEPLOYMENT_APPID = '-'

/** Entries on one page. */
export const AUDIT_PAGE = 50
/** The most entries one CSV export holds (the newest of the filtered view). */
export const AUDIT_EXPORT_LIMIT = 10_000

const text = (max: number) => v.optional(v.pipe(v.string(), v.trim(), v.maxLength(max)))
/** A community day of the filter: the years reports cover (2000–2100), or empty. */
const dayField = v.optional(v.union([v.literal(''), reportDay]))

/** The fields of a filter as a query string sends them (empty fields are no filter). */
export const auditFilterFields = {
  actor: text(200),
  action: text(100),
  target: text(200),
  from: dayField,
  to: dayField,
  /** The page: entries older than this id. */
  before: v.optional(v.union([v.literal(''), v.pipe(v.string(), v.regex(/^\d{1,15}$/))])),
}

/** A filter's range runs forward. */
export const rangeForward = <T extends { from?: string; to?: string }>() =>
  v.check<T, string>((f) => !f.from || !f.to || f.from <= f.to, 'from must not be after to')

/** A filter (`auditFilterFields`, the range forward). */
export const auditFilterInput = v.pipe(v.object(auditFilterFields), rangeForward())
export type AuditFilterInput = v.InferOutput<typeof auditFilterInput>

/** One entry. */
export interface AuditRow {
  id: number
  appid: string
  actor: string
  action: string
  target: string
  details: string
  createdAt: Date
  clientAddress: string | null
}

/** A page of entries, and the `before` of the next (older) page when there is one. */
export interface AuditPage {
  rows: AuditRow[]
  nextBefore: number | null
}

function filtered(db: Kysely<Database>, appid: string, f: AuditFilterInput, timeZone: string) {
  let q = db
    .selectFrom('audit_log')
    .select(['id', 'appid', 'actor', 'action', 'target', 'details', 'created_at', 'client_address'])
    .where('appid', 'in', [appid, DEPLOYMENT_APPID])
  if (f.actor) q = q.where('actor', '=', f.actor)
  if (f.action) q = q.where('action', '=', f.action)
  if (f.target) q = q.where('target', 'like', `${f.target.replace(/[\\%_]/g, '\\$&')}%`)
  if (f.from) q = q.where('created_at', '>=', localDayStart(f.from, timeZone))
  if (f.to) q = q.where('created_at', '<', localDayStart(addDays(f.to, 1), timeZone))
  if (f.before) q = q.where('id', '<', Number(f.before))
  return q.orderBy('id', 'desc')
}

const toRow = (r: {
  id: number | string
  appid: string
  actor: string
  action: string
  target: string
  details: string
  created_at: Date | string
  client_address: string | null
}): AuditRow => ({
  id: Number(r.id),
  appid: r.appid,
  actor: r.actor,
  action: r.action,
  target: r.target,
  details: r.details,
  createdAt: new Date(r.created_at),
  clientAddress: r.client_address,
})

/**
 * One page of the account's filtered entries, newest first.
 * @example const { rows, nextBefore } = await auditLogPage(db, appid, { action: 'reward.create' }, tz)
 */
export async function auditLogPage(
  db: Kysely<Database>,
  appid: string,
  filter: AuditFilterInput,
  timeZone: string,
  limit = AUDIT_PAGE,
): Promise<AuditPage> {
  const rows = (
    await filtered(db, appid, filter, timeZone)
      .limit(limit + 1)
      .execute()
  ).map(toRow)
  const more = rows.length > limit
  const page = more ? rows.slice(0, limit) : rows
  return { rows: page, nextBefore: more ? page.at(-1)!.id : null }
}

/** The newest {@link AUDIT_EXPORT_LIMIT} entries of the filtered view (a CSV export). */
export async function auditLogExport(
  db: Kysely<Database>,
  appid: string,
  filter: AuditFilterInput,
  timeZone: string,
): Promise<AuditRow[]> {
  const rows = await filtered(db, appid, filter, timeZone).limit(AUDIT_EXPORT_LIMIT).execute()
  return rows.map(toRow)
}

/** The distinct actions of the account's entries (and the deployment's), at most 200, by name. */
export async function auditActions(db: Kysely<Database>, appid: string): Promise<string[]> {
  const rows = await db
    .selectFrom('audit_log')
    .select('action')
    .distinct()
    .where('appid', 'in', [appid, DEPLOYMENT_APPID])
    .orderBy('action')
    .limit(200)
    .execute()
  return rows.map((r) => r.action)
}

/** The CSV of entries: header and rows, times in the community's time zone and as ISO 8601. */
export function auditRowsCsv(
  rows: AuditRow[],
  timeZone: string,
): [string[], (string | number | null)[][]] {
  const local = new Intl.DateTimeFormat('sv-SE', {
    timeZone,
    dateStyle: 'short',
    timeStyle: 'medium',
  })
  return [
    [
      'id',
      `time (${timeZone})`,
      'created_at',
      'appid',
      'actor',
      'action',
      'target',
      'details',
      'client_address',
    ],
    rows.map((r) => [
      r.id,
      local.format(r.createdAt),
      r.createdAt.toISOString(),
      r.appid,
      r.actor,
      r.action,
      r.target,
      r.details,
      r.clientAddress,
    ]),
  ]
}
