/**
 * Each inviter's WeCom join way (客户群「加入群聊」): a QR into the configured customer groups whose
 * `state` is their invite scene, created once and reused for good — it is printed and shared — and
 * pointed at the configured groups in place when they change (on the next 入群, and nightly by
 * {@link syncJoinWays}). The joins it brings are credited in group-joins.ts.
 */
import type { Kysely, Selectable } from 'kysely'
import type { Database, Member, WecomJoinWaysTable } from '../db/schema.js'
import type { Logger } from '../logger.js'
import type { ApiClient } from '../wechat/api/client.js'
import { WechatNetworkError } from '../wechat/api/errors.js'
import {
  addJoinWay,
  delJoinWay,
  getJoinWay,
  JOIN_WAY_CHATS,
  updateJoinWay,
} from '../wecom/contact.js'
import { inviteCode, inviteScene } from './invites.js'

/**
 * The inviter's join QR (created once, then reused for good: it is printed and shared). The
 * database decides who keeps a join way (one row per member). A join way this call created and
 * does not keep — a concurrent request stored its own first, or get_join_way or the insert failed —
 * is deleted on WeCom (del_join_way): it would count against the corp's quota (500 000, shared with
 * 「联系我」) for good, and API-created join ways are not in the admin console. Best effort: a failed
 * deletion is logged (`JOIN_WAY_NOT_DELETED`) and never changes the answer. No transaction or lock
 * is held across the WeCom calls (PGlite has one connection), so two racing requests may both
 * create one; the loser deletes its own. add_join_way is never retried after a failure that may
 * have reached WeCom (see {@link addJoinWay}); such a failure is logged (`JOIN_WAY_MAYBE_CREATED`)
 * and answered as an error, and the next 入群 makes a new one. A stored join way made for groups
 * that are no longer the configured ones (WECOM_JOIN_CHATS changed) is pointed at the current ones
 * in place ({@link moveJoinWay}), so the QRs already shared lead there too; if WeCom refuses, the
 * stored one is handed out as it is (and marked failed: the nightly sweep takes it last).
 */
export async function joinQr(
  db: Kysely<Database>,
  api: ApiClient,
  o: { member: Pick<Member, 'id' | 'appid'>; chatIds: string[]; now: Date; logger?: Logger },
) {
  const chatIds = o.chatIds.slice(0, JOIN_WAY_CHATS)
  const chats = JSON.stringify(chatIds)
  const stored = () =>
    db
      .selectFrom('wecom_join_ways')
      .selectAll()
      .where('member_id', '=', o.member.id)
      .executeTakeFirst()
  const notDeleted = (configId: string, reason: string, error: unknown) =>
    o.logger?.warn('join way left on WeCom', {
      code: 'JOIN_WAY_NOT_DELETED',
      memberId: o.member.id,
      configId,
      reason,
      error,
    })
  const discard = (configId: string, reason: string) =>
    delJoinWay(api, configId).catch((error: unknown) => notDeleted(configId, reason, error))

  const existing = await stored()
  if (existing) {
    const current = await storedChats(db, api, existing, o.now, o.logger)
    // Unknown (get_join_way failed for a row stored before chat_ids): kept, as it was.
    if (current === undefined || current === chats)
      return { qrCode: existing.qr_code, state: existing.state, created: false }
    // Made for other groups: moved to the current ones in place; refused → handed out as it is.
    const moved = await moveJoinWay(db, api, existing, chatIds, o.now, o.logger)
    const row = moved.status === 'updated' ? moved.row : existing
    return { qrCode: row.qr_code, state: row.state, created: false }
  }
  const state = inviteScene(await inviteCode(db, o.member, o.now))
  let configId: string
  try {
    configId = await addJoinWay(api, { state, chatIds, remark: joinWayRemark(o.member.id) })
  } catch (error) {
    // WeCom may have made it (its config_id never came): it cannot be found again to delete.
    if (error instanceof WechatNetworkError && error.maybeDelivered)
      o.logger?.warn('join way may be left on WeCom', {
        code: 'JOIN_WAY_MAYBE_CREATED',
        memberId: o.member.id,
        state,
        error,
      })
    throw error
  }

  let row: Selectable<WecomJoinWaysTable> | undefined
  try {
    const way = await getJoinWay(api, configId)
    row = await db
      .insertInto('wecom_join_ways')
      .values({
        member_id: o.member.id,
        config_id: configId,
        qr_code: way.qr_code,
        state,
        created_at: o.now,
        chat_ids: chats,
      })
      .onConflict((oc) => oc.column('member_id').doNothing())
      .returningAll()
      .executeTakeFirst()
  } catch (error) {
    // Deleted unless the insert was stored after all (its answer lost): a stored QR stays live.
    const kept = await stored().then(
      (r) => r?.config_id === configId,
      () => undefined,
    )
    if (kept === undefined) notDeleted(configId, 'unknown_if_stored', error)
    else if (!kept) await discard(configId, 'not_stored')
    throw error
  }
  if (row) return { qrCode: row.qr_code, state: row.state, created: true }
  // A concurrent request stored its join way first: use that one, delete ours.
  await discard(configId, 'lost_race')
  const kept = await db
    .selectFrom('wecom_join_ways')
    .selectAll()
    .where('member_id', '=', o.member.id)
    .executeTakeFirstOrThrow()
  return { qrCode: kept.qr_code, state: kept.state, created: false }
}

/**
 * The groups a stored join way leads into (JSON, as {@link joinQr} compares them). A row stored
 * before they were recorded asks WeCom (get_join_way) once and records them as WeCom reports them
 * (in another order than configured, or without a dissolved group, they differ: one update then
 * stores what was sent, see {@link moveJoinWay}); undefined when that fails — the row is then kept
 * as it is, marked failed.
 */
async function storedChats(
  db: Kysely<Database>,
  api: ApiClient,
  row: Selectable<WecomJoinWaysTable>,
  now: Date,
  logger: Logger | undefined,
): Promise<string | undefined> {
  if (row.chat_ids !== null) return row.chat_ids
  let chats: string
  try {
    chats = JSON.stringify((await getJoinWay(api, row.config_id)).chat_id_list ?? [])
  } catch (error) {
    logger?.warn('join way groups unknown', {
      memberId: row.member_id,
      configId: row.config_id,
      error,
    })
    await markFailed(db, row, now, logger)
    return undefined
  }
  await db
    .updateTable('wecom_join_ways')
    .set({ chat_ids: chats, sync_failed_at: null })
    .where('member_id', '=', row.member_id)
    .where('config_id', '=', row.config_id)
    .execute()
  return chats
}

/**
 * Records that moving a join way (or reading its groups) failed, so the sweep takes it after those
 * that never failed ({@link syncJoinWays}). Fenced on config_id: a row replaced meanwhile is
 * another join way, not this one. Best effort: the member still gets their stored QR, and an
 * unmarked row is only taken earlier next time.
 */
async function markFailed(
  db: Kysely<Database>,
  row: Selectable<WecomJoinWaysTable>,
  now: Date,
  logger: Logger | undefined,
) {
  await db
    .updateTable('wecom_join_ways')
    .set({ sync_failed_at: now })
    .where('member_id', '=', row.member_id)
    .where('config_id', '=', row.config_id)
    .execute()
    .catch((error: unknown) =>
      logger?.warn('join way failure not recorded', { memberId: row.member_id, error }),
    )
}

/** The remark a member's join way carries (sent again on every update: it overwrites). */
function joinWayRemark(memberId: number) {
  return `invite ${memberId}`
}

/** What {@link moveJoinWay} did. */
type Moved =
  | { status: 'updated'; row: Selectable<WecomJoinWaysTable> }
  /** WeCom refused or failed: the stored join way is unchanged (still the old groups). */
  | { status: 'failed' }
  /** Updated on WeCom, but the member's row is no longer this join way: nothing stored. */
  | { status: 'gone' }

/**
 * Points a stored join way at `chatIds` on WeCom (update_join_way, with its own `state` and every
 * other field as add_join_way sent them: the update overwrites), then reads back its QR
 * (get_join_way: the docs do not say whether the QR changes). The groups stored are the ones sent,
 * not the `chat_id_list` read back: WeCom may list them in another order or without a dissolved
 * group, and comparing that with the configured list would update every join way again on every
 * 入群 and every night. The row is updated only while it is still this join way (fenced on
 * config_id): an 入群 and a sweep racing send the same body, so whichever stores last stores the
 * same. A failure leaves the row as it was but marked failed (`sync_failed_at`, logged
 * `JOIN_WAY_NOT_UPDATED`): the next 入群 or sweep tries again; a success clears the mark.
 */
async function moveJoinWay(
  db: Kysely<Database>,
  api: ApiClient,
  row: Selectable<WecomJoinWaysTable>,
  chatIds: string[],
  now: Date,
  logger: Logger | undefined,
): Promise<Moved> {
  let way: Awaited<ReturnType<typeof getJoinWay>>
  try {
    await updateJoinWay(api, row.config_id, {
      state: row.state,
      chatIds,
      remark: joinWayRemark(row.member_id),
    })
    way = await getJoinWay(api, row.config_id)
  } catch (error) {
    logger?.warn('join way still leads into the old groups', {
      code: 'JOIN_WAY_NOT_UPDATED',
      memberId: row.member_id,
      configId: row.config_id,
      error,
    })
    await markFailed(db, row, now, logger)
    return { status: 'failed' }
  }
  const saved = await db
    .updateTable('wecom_join_ways')
    .set({ qr_code: way.qr_code, chat_ids: JSON.stringify(chatIds), sync_failed_at: null })
    .where('member_id', '=', row.member_id)
    .where('config_id', '=', row.config_id)
    .returningAll()
    .executeTakeFirst()
  return saved ? { status: 'updated', row: saved } : { status: 'gone' }
}

/** Join ways a sweep reads per query. */
const SWEEP_BATCH = 100
/**
 * Failures in a row after which a sweep stops (WeCom down or refusing everything): the rest waits
 * for the next. Counted in a row, not in total, so join ways WeCom refuses one by one do not stop
 * it; and those are taken last, so they cannot stop it before the others either.
 */
const SWEEP_FAILURES = 3

/** What a sync did: join ways moved to the current groups, failures, whether it stopped early. */
export interface JoinWaySync {
  updated: number
  failed: number
  more: boolean
}

/**
 * Points the stored join ways made for groups other than `chatIds` (WECOM_JOIN_CHATS changed) at
 * `chatIds`, in place ({@link moveJoinWay}): a member who never sends 入群 again (which moves
 * theirs, see {@link joinQr}) would otherwise hand out a QR leading into the old groups for good.
 * Their QRs keep working. Rows stored before their groups were recorded learn them from
 * get_join_way. First the join ways that never failed (by member), then those that failed before
 * this sync (`sync_failed_at`, oldest failure first): one WeCom refuses for good is tried once a
 * night, after the others, and falls behind those not reached. A failure marks the row (`now`)
 * and leaves it for the next sync. Stops after {@link SWEEP_FAILURES} failures in a row, or when
 * `more()` says no more batches may start.
 */
export async function syncJoinWays(
  db: Kysely<Database>,
  api: ApiClient,
  o: { chatIds: string[]; now: Date; logger?: Logger; more?: () => boolean },
): Promise<JoinWaySync> {
  const chatIds = o.chatIds.slice(0, JOIN_WAY_CHATS)
  const chats = JSON.stringify(chatIds)
  const done: JoinWaySync = { updated: 0, failed: 0, more: false }
  let inARow = 0
  const stale = () =>
    db
      .selectFrom('wecom_join_ways')
      .selectAll()
      .where((eb) => eb.or([eb('chat_ids', 'is', null), eb('chat_ids', '<>', chats)]))
      .limit(SWEEP_BATCH)
  // The budget is asked before each batch after the first with work in it: every sync moves on.
  let worked = false
  const spent = () => worked && o.more?.() === false
  /** Moves one batch; false when the sweep stops after failures in a row. */
  const sweep = async (rows: Selectable<WecomJoinWaysTable>[]) => {
    if (rows.length > 0) worked = true
    for (const row of rows) {
      const current = await storedChats(db, api, row, o.now, o.logger)
      let failed = current === undefined
      if (current !== undefined && current !== chats) {
        const moved = await moveJoinWay(db, api, row, chatIds, o.now, o.logger)
        if (moved.status === 'updated') done.updated++
        failed = moved.status === 'failed'
      }
      if (failed) done.failed++
      inARow = failed ? inARow + 1 : 0
      if (inARow >= SWEEP_FAILURES) return false
    }
    return true
  }
  const stopped = () => ({ ...done, more: true })

  // Never failed, by member. A row failing here is marked `now`: the second pass skips it.
  let after = 0
  for (;;) {
    if (spent()) return stopped()
    const rows = await stale()
      .where('sync_failed_at', 'is', null)
      .where('member_id', '>', after)
      .orderBy('member_id')
      .execute()
    if (!(await sweep(rows))) return stopped()
    if (rows.length < SWEEP_BATCH) break
    after = rows.at(-1)!.member_id
  }
  // Failed before this sync, oldest failure first; failing again marks them `now` (last next time).
  let at: { failedAt: Date; memberId: number } | undefined
  for (;;) {
    if (spent()) return stopped()
    let failedBefore = stale().where('sync_failed_at', '<', o.now)
    if (at) {
      const { failedAt, memberId } = at
      failedBefore = failedBefore.where((eb) =>
        eb.or([
          eb('sync_failed_at', '>', failedAt),
          eb.and([eb('sync_failed_at', '=', failedAt), eb('member_id', '>', memberId)]),
        ]),
      )
    }
    const rows = await failedBefore.orderBy('sync_failed_at').orderBy('member_id').execute()
    if (!(await sweep(rows))) return stopped()
    if (rows.length < SWEEP_BATCH) return done
    const last = rows.at(-1)!
    at = { failedAt: last.sync_failed_at!, memberId: last.member_id }
  }
}
