/**
 * An owner adds and removes moderators: rows of `moderators` exactly as the bot checks them
 * (`isModerator`: channel, external id, scope `*` or a chat id), with source `console` so neither
 * the configured seeding (`config`) nor a group's WeCom sync (`wecom`) replaces them. Rows those
 * two own are not removed here: they would come back at the next start or sync.
 *
 * Whose moderator a row is: an `oa` row is the account's whose follower the openid is (`members`
 * (appid, openid); an openid is per account), so it is added, listed and removed only under that
 * account and audited there. A `wecom_aibot` or `bridge:<id>` row is the deployment's — one WeCom
 * corp and one set of bridges serve every account, and such a moderator acts on any account's
 * members — so it is listed under every account and its changes are audited under `-`
 * ({@link DEPLOYMENT_APPID}), which every account's audit log shows.
 */
import type { Kysely, Transaction } from 'kysely'
import * as v from 'valibot'
import type { AuditAction } from '../../community/audit-log.js'
import type { Database } from '../../db/schema.js'
import { DEPLOYMENT_APPID } from '../reads/audit-log.js'
import type { ModeratorRow } from '../reads/community-reads.js'
import { type ActionDeps, type Actor, auditedAction } from './audited-action.js'

/** The source of the moderators added by an operator. */
export const CONSOLE_SOURCE = 'console'

const id = (max: number) => v.pipe(v.string(), v.trim(), v.minLength(1), v.maxLength(max))

/** Which moderator: the identity the bot sees, and where it may moderate. */
export const moderatorKey = v.strictObject({
  /** `oa` (openid), `wecom_aibot` (WeCom userid) or `bridge:<id>` — as MODERATORS takes them. */
  channel: v.pipe(
    v.string(),
    v.regex(/^(oa|wecom_aibot|bridge:[\w-]{1,40})$/, 'must be oa, wecom_aibot or bridge:<id>'),
  ),
  externalId: id(128),
  /** A group's chat id, or `*` (the default): every group and the OA chat. */
  scope: v.optional(id(128), '*'),
})
export type ModeratorKey = v.InferOutput<typeof moderatorKey>

/** The input of {@link addModerator} (`POST moderators`). */
export const addModeratorInput = v.strictObject({
  ...moderatorKey.entries,
  role: v.optional(v.picklist(['moderator', 'admin'], 'must be moderator or admin'), 'moderator'),
})
export type AddModeratorInput = v.InferOutput<typeof addModeratorInput>

/** What adding did. */
export type AddModeratorResult =
  | { status: 'added'; moderator: ModeratorRow }
  /** The identity already moderates in that scope (from any source): nothing changed. */
  | { status: 'exists' }
  /** An `oa` openid that is no follower of the account. */
  | { status: 'unknown_member' }

/** What removing did. */
export type RemoveModeratorResult =
  | { status: 'removed' }
  | { status: 'not_found' }
  /** Seeded by configuration or synced from WeCom: change it there. */
  | { status: 'managed'; source: string }

const targetOf = (k: ModeratorKey) => `${k.channel}:${k.externalId}@${k.scope}`

/** The audit log's account for a change of `channel`'s moderators made under `appid`. */
const auditAppid = (channel: string, appid: string) => (channel === 'oa' ? appid : DEPLOYMENT_APPID)

/** The audited step of `actor`'s `action` on `key` made under `appid` (see {@link auditAppid}). */
const stepOf = (
  actor: Actor,
  action: AuditAction,
  appid: string,
  key: ModeratorKey,
  now: Date,
) => ({
  appid: auditAppid(key.channel, appid),
  actor,
  action,
  target: targetOf(key),
  now,
})

/** What a change's audit entry details: the role, and for a deployment's row the account used. */
const detailsOf = (channel: string, appid: string, role: string) =>
  channel === 'oa' ? { role } : { role, account: appid }

/** Whether `openid` is a follower of the account `appid`. */
const isFollower = async (
  db: Kysely<Database> | Transaction<Database>,
  appid: string,
  openid: string,
) =>
  (await db
    .selectFrom('members')
    .select('id')
    .where('appid', '=', appid)
    .where('openid', '=', openid)
    .executeTakeFirst()) !== undefined

/**
 * Adds a moderator (source `console`) and audits `moderator.add`.
 * @example await addModerator(deps, actor, { appid, channel: 'oa', externalId: openid, scope: '*', role: 'moderator' })
 */
export async function addModerator(
  deps: Pick<ActionDeps, 'db' | 'clock'>,
  actor: Actor,
  input: AddModeratorInput & { appid: string },
): Promise<AddModeratorResult> {
  const { appid, ...key } = input
  const now = deps.clock.now()
  const step = stepOf(actor, 'moderator.add', appid, key, now)
  return auditedAction<AddModeratorResult>(deps.db, step, async (trx) => {
    if (key.channel === 'oa' && !(await isFollower(trx, appid, key.externalId)))
      return { result: { status: 'unknown_member' } }
    const row = await trx
      .insertInto('moderators')
      .values({
        channel: key.channel,
        external_id: key.externalId,
        scope: key.scope,
        role: key.role,
        source: CONSOLE_SOURCE,
      })
      .onConflict((oc) => oc.columns(['channel', 'external_id', 'scope']).doNothing())
      .returningAll()
      .executeTakeFirst()
    if (!row) return { result: { status: 'exists' } }
    const moderator: ModeratorRow = { ...key, source: CONSOLE_SOURCE }
    return {
      result: { status: 'added', moderator },
      details: detailsOf(key.channel, appid, key.role),
    }
  })
}

/**
 * Removes a moderator an operator added and audits `moderator.remove`. An `oa` moderator who is no
 * follower of `appid` is another account's: `not_found`, nothing changed.
 */
export async function removeModerator(
  deps: Pick<ActionDeps, 'db' | 'clock'>,
  actor: Actor,
  input: ModeratorKey & { appid: string },
): Promise<RemoveModeratorResult> {
  const { appid, ...key } = input
  const now = deps.clock.now()
  const step = stepOf(actor, 'moderator.remove', appid, key, now)
  return auditedAction<RemoveModeratorResult>(deps.db, step, async (trx) => {
    if (key.channel === 'oa' && !(await isFollower(trx, appid, key.externalId)))
      return { result: { status: 'not_found' } }
    const row = await trx
      .selectFrom('moderators')
      .selectAll()
      .where('channel', '=', key.channel)
      .where('external_id', '=', key.externalId)
      .where('scope', '=', key.scope)
      .forUpdate()
      .executeTakeFirst()
    if (!row) return { result: { status: 'not_found' } }
    if (row.source !== CONSOLE_SOURCE) return { result: { status: 'managed', source: row.source } }
    await trx
      .deleteFrom('moderators')
      .where('channel', '=', key.channel)
      .where('external_id', '=', key.externalId)
      .where('scope', '=', key.scope)
      .execute()
    return { result: { status: 'removed' }, details: detailsOf(key.channel, appid, row.role) }
  })
}
