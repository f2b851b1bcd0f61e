/**
 * Nightly: the unionids of followers who followed before every follow stored one (495f279), asked
 * with `user/info/batchget` (100 a call) so a follower joining a WeCom group through another's QR
 * is found as themselves, not counted as a new invitee. Per account with a secret: subscribed
 * members whose unionid is null, in id order from where the last run stopped (its result's
 * `next`; the walk starts over once it reaches the end), at most {@link MAX_CALLS} calls a run for
 * all accounts. A unionid is stored only where none is (never overwritten; a follow or 入群 that
 * stored one meanwhile wins). An account whose answer has no unionid for any follower is not
 * bound to an Open Platform account: it is left for this run (asked once a night, so binding it
 * later fills it in). A member answered with `subscribe: 0` unfollowed without us hearing (the
 * unsubscribe push missed): recorded as not following, as a send's 43004 records it
 * (reachability.ts `recordNotFollowing`: `unsubscribed_at` the question's time, the latest the
 * unfollow can have been; no follow fact, its day unknown), unless a follow was recorded after the
 * question. An API error is logged and leaves the account for this run, at the same place (an
 * invalid openid skips its batch). A batch is the chunk: each batch's writes commit with the
 * run's cursor; once the budget is spent (Workers) the run pauses and the next tick resumes it.
 * Two runs at once only ask twice: the writes are conditional.
 */
import { sql } from 'kysely'
import { recordNotFollowing } from '../src/community/reachability.js'
import type { ApiClient } from '../src/wechat/api/client.js'
import { WechatApiError } from '../src/wechat/api/errors.js'
import { getUsersInfo, USER_INFO_BATCH_MAX } from '../src/wechat/api/users.js'
import type { Job, JobContext } from './types.js'

/** Calls per run, all accounts together: 50 × 100 = 5,000 followers a night. */
export const MAX_CALLS = 50

/** Why an account's walk stopped in a run. */
type Stop = 'end' | 'unbound' | 'error' | 'noClient' | 'calls'

/** One account's walk in a run. */
interface Walk {
  /** The last member id asked (the next batch starts after it). */
  after: number
  asked: number
  filled: number
  /** Members answered with `subscribe: 0`, recorded as not following. */
  unfollowed: number
  stop?: Stop
}

/** The run's progress, saved with each batch. */
interface Cursor {
  calls: number
  accounts: Record<string, Walk>
}

const NAME = 'backfill-unionids'

/** Where each account's walk starts: where the newest finished run said to go on. */
async function startPositions(ctx: JobContext): Promise<Record<string, number>> {
  const last = await ctx.db
    .selectFrom('job_runs')
    .select('result')
    .where('job', '=', NAME)
    .where('status', '=', 'succeeded')
    .where('result', 'is not', null)
    .orderBy('finished_at', 'desc')
    .limit(1)
    .executeTakeFirst()
  try {
    const next = (JSON.parse(last?.result ?? '{}') as { next?: unknown }).next
    if (!next || typeof next !== 'object') return {}
    return Object.fromEntries(
      Object.entries(next).filter(([, v]) => Number.isSafeInteger(v) && (v as number) >= 0),
    ) as Record<string, number>
  } catch {
    return {}
  }
}

/** What a batch's writes changed. */
interface Written {
  filled: number
  unfollowed: number
}

/**
 * One batch of an account: asks, then returns the walk after it and the writes (the unionids
 * missing, the members who do not follow) to commit with it.
 */
async function batch(
  ctx: JobContext,
  api: ApiClient,
  appid: string,
  walk: Walk,
): Promise<{ walk: Walk; called: boolean; write?: (trx: JobContext['db']) => Promise<Written> }> {
  const rows = await ctx.db
    .selectFrom('members')
    .select(['id', 'openid'])
    .where('appid', '=', appid)
    .where('unionid', 'is', null)
    .where('subscribed', '=', true)
    .where('id', '>', walk.after)
    .orderBy('id')
    .limit(USER_INFO_BATCH_MAX)
    .execute()
  if (rows.length === 0) return { walk: { ...walk, stop: 'end' }, called: false }
  const last = Number(rows[rows.length - 1]!.id)
  let infos: Awaited<ReturnType<typeof getUsersInfo>>
  const askedAt = ctx.clock.now()
  try {
    infos = await getUsersInfo(
      api,
      rows.map((r) => r.openid),
    )
  } catch (error) {
    ctx.logger.warn('unionid back-fill stopped for this run', {
      code: 'UNIONID_BACKFILL_FAILED',
      appid,
      after: walk.after,
      error: error instanceof Error ? error.message : String(error),
    })
    const invalid = error instanceof WechatApiError && error.errcode === 40003
    return {
      walk: {
        ...walk,
        asked: walk.asked + rows.length,
        after: invalid ? last : walk.after,
        stop: 'error',
      },
      called: true,
    }
  }
  const asked = new Set(rows.map((r) => r.openid))
  const found = infos.filter(
    (i): i is typeof i & { unionid: string } =>
      asked.has(i.openid) && typeof i.unionid === 'string' && i.unionid.length > 0,
  )
  const gone = infos.filter((i) => asked.has(i.openid) && i.subscribe === 0).map((i) => i.openid)
  // Followers answered and none has a unionid: the account is not bound (left where it was). An
  // unfollowed member's answer never has one (only openid and subscribe), so only followers count.
  const unbound = found.length === 0 && infos.some((i) => i.subscribe === 1)
  const next: Walk = unbound
    ? { ...walk, asked: walk.asked + rows.length, stop: 'unbound' }
    : { ...walk, after: last, asked: walk.asked + rows.length }
  if (!unbound && rows.length < USER_INFO_BATCH_MAX) next.stop = 'end'
  if (found.length === 0 && gone.length === 0) return { walk: next, called: true }
  return {
    walk: next,
    called: true,
    write: async (trx) => {
      // Every row both updates write, locked first in one order — the push path's (batches lock
      // members by openid in code-unit order, members.ts receiveAll) — so the job and a batch of
      // pushes never wait on each other in a circle.
      const openids = [...new Set([...found.map((i) => i.openid), ...gone])]
      await sql`select 1 from members where appid = ${appid}
        and openid in (${sql.join(openids)}) order by openid collate "C" for no key update`.execute(
        trx,
      )
      let filled = 0
      if (found.length > 0) {
        const r = await sql`
          update members m set unionid = v.unionid
          from (values ${sql.join(found.map((i) => sql`(${i.openid}, ${i.unionid})`))}) as v(openid, unionid)
          where m.appid = ${appid} and m.openid = v.openid and m.unionid is null`.execute(trx)
        filled = Number(r.numAffectedRows ?? 0n)
      }
      const unfollowed = await recordNotFollowing(trx, {
        appid,
        openids: gone,
        now: askedAt,
        askedAt,
      })
      return { filled, unfollowed }
    },
  }
}

export const backfillUnionidsJob: Job = {
  name: NAME,
  cron: '20 3 * * *',
  async run(ctx) {
    let cursor = ctx.cursor as Cursor | undefined
    if (!cursor) {
      const from = await startPositions(ctx)
      cursor = { calls: 0, accounts: {} }
      for (const { appid } of ctx.config.accounts)
        cursor.accounts[appid] = { after: from[appid] ?? 0, asked: 0, filled: 0, unfollowed: 0 }
    }
    let callsNow = 0
    for (const account of ctx.config.accounts) {
      const appid = account.appid
      // The defaults first: a cursor a paused run saved before `unfollowed` was counted has none.
      let walk: Walk = { after: 0, asked: 0, filled: 0, unfollowed: 0, ...cursor.accounts[appid] }
      if (walk.stop) continue
      const api = ctx.api?.(appid)
      if (!api) walk = { ...walk, stop: 'noClient' }
      while (api && !walk.stop) {
        if (cursor.calls >= MAX_CALLS) {
          walk = { ...walk, stop: 'calls' }
          break
        }
        if (callsNow > 0 && ctx.budget?.left() === false) return summary(cursor, true)
        const step = await batch(ctx, api, appid, walk)
        callsNow++
        const calls: number = cursor.calls + (step.called ? 1 : 0)
        const write = step.write
        walk = await ctx.db.transaction().execute(async (trx) => {
          const n = write ? await write(trx) : { filled: 0, unfollowed: 0 }
          const after: Walk = {
            ...step.walk,
            filled: walk.filled + n.filled,
            unfollowed: walk.unfollowed + n.unfollowed,
          }
          await ctx.saveCursor?.(trx, { calls, accounts: { ...cursor!.accounts, [appid]: after } })
          return after
        })
        cursor = { calls, accounts: { ...cursor.accounts, [appid]: walk } }
      }
      cursor = { ...cursor, accounts: { ...cursor.accounts, [appid]: walk } }
    }
    return summary(cursor, false)
  },
}

/**
 * The run's result: per account what was asked, filled and found unfollowed and why it stopped,
 * the calls, and `next` — where each account's walk goes on tomorrow (0: from the start).
 */
function summary(cursor: Cursor, more: boolean): Record<string, unknown> {
  const next: Record<string, number> = {}
  for (const [appid, w] of Object.entries(cursor.accounts))
    next[appid] = w.stop === 'end' || w.stop === 'noClient' ? 0 : w.after
  return { calls: cursor.calls, accounts: cursor.accounts, next, ...(more ? { more: true } : {}) }
}
