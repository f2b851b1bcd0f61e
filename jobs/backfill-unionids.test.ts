import { sql, type Transaction } from 'kysely'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { Budget } from '../src/budget.js'
import { databaseMemberStore } from '../src/community/members.js'
import { loadConfig } from '../src/config.js'
import type { Database } from '../src/db/schema.js'
import { silentLogger } from '../src/logger.js'
import { type SandboxApi, startSandboxApi } from '../src/sandbox/wechat-api-server.js'
import type { ApiClient } from '../src/wechat/api/client.js'
import { getUsersInfo } from '../src/wechat/api/users.js'
import { parseXml } from '../src/wechat/codec.js'
import { toInboundMessage } from '../src/wechat/message.js'
import { addMembers } from '../test/analytics-fixtures.js'
import { forEachDatabase } from '../test/databases.js'
import { holdTransaction, waitingForLock } from '../test/held-transaction.js'
import { sandboxClient } from '../test/sandbox-client.js'
import { backfillUnionidsJob } from './backfill-unionids.js'
import { jobs } from './index.js'

const SECRET = 'sandbox-secret'

forEachDatabase('backfill-unionids', (get, dbName) => {
  let wx: SandboxApi
  beforeAll(async () => {
    wx = await startSandboxApi({ secret: SECRET })
  })
  afterAll(() => wx.close())
  const now = new Date('2026-12-05T19:20:00Z')

  /**
   * Each account's client, recording the openids of every batchget it sends; `answered` runs once
   * WeChat has answered one (after the question, before the job writes).
   */
  function clients(appids: string[], answered?: () => Promise<void>) {
    const sizes: number[] = []
    const batches: string[][] = []
    const made = new Map<string, ApiClient>()
    for (const appid of appids) {
      const inner = sandboxClient(get().db, { appid, secret: SECRET, baseUrl: wx.url })
      made.set(appid, {
        call: async (req) => {
          if (req.method !== 'user.info.batchget') return inner.call(req)
          const list = (req.body as { user_list: { openid: string }[] }).user_list
          sizes.push(list.length)
          batches.push(list.map((u) => u.openid))
          const res = await inner.call(req)
          await answered?.()
          return res
        },
        unauthenticated: (req) => inner.unauthenticated(req),
      })
    }
    return { sizes, batches, api: (appid: string) => made.get(appid) }
  }
  const run = (
    appids: string[],
    api: (appid: string) => ApiClient | undefined,
    resume: { budget?: Budget; cursor?: unknown; saved?: unknown[] } = {},
  ) => {
    const config = loadConfig({})
    config.accounts = appids.map((appid) => ({ appid, token: 'token123', secret: SECRET }))
    return backfillUnionidsJob.run({
      db: get().db,
      clock: { now: () => now },
      logger: silentLogger,
      config,
      slot: now,
      api,
      budget: resume.budget,
      cursor: resume.cursor,
      ...(resume.saved
        ? { saveCursor: async (_trx, cursor) => void resume.saved!.push(cursor) }
        : {}),
    })
  }
  const following = async (appid: string) =>
    get()
      .db.selectFrom('members')
      .select(['openid', 'subscribed', 'subscribed_at', 'unsubscribed_at'])
      .where('appid', '=', appid)
      .orderBy('id')
      .execute()
  const unfollowFacts = async (appid: string) =>
    Number(
      (
        await get()
          .db.selectFrom('follow_events')
          .select((eb) => eb.fn.countAll().as('n'))
          .where('appid', '=', appid)
          .where('kind', '=', 'unfollow')
          .executeTakeFirstOrThrow()
      ).n,
    )
  const unionids = async (appid: string) =>
    (
      await get()
        .db.selectFrom('members')
        .select(['openid', 'unionid'])
        .where('appid', '=', appid)
        .orderBy('id')
        .execute()
    ).map((m) => m.unionid)

  it('is registered, nightly', () => {
    expect(jobs).toContain(backfillUnionidsJob)
    expect(backfillUnionidsJob.cron).toBe('20 3 * * *')
  })

  it('fills the unionids of followers from before, 100 a call, never overwriting one', async () => {
    const appid = `wxbound${dbName}`
    const prefix = `ob-${dbName}-`
    const ids = await addMembers(get().db, appid, prefix, 150, now)
    for (let i = 0; i < 150; i++) wx.setUser(`${prefix}${i}`, { unionid: `u-${prefix}${i}` })
    // Stored already (by a follow): kept, whatever WeChat says now.
    await get()
      .db.updateTable('members')
      .set({ unionid: 'u-kept' })
      .where('id', '=', ids[3]!)
      .execute()
    // Unfollowed: not asked.
    await get()
      .db.updateTable('members')
      .set({ subscribed: false })
      .where('id', '=', ids[4]!)
      .execute()
    const before = wx.calls('user.info.batchget')
    const c = clients([appid])
    const result = await run([appid], c.api)
    expect(c.sizes).toEqual([100, 48])
    expect(wx.calls('user.info.batchget') - before).toBe(2)
    const after = await unionids(appid)
    expect(after[0]).toBe(`u-${prefix}0`)
    expect(after[3]).toBe('u-kept')
    expect(after[4]).toBeNull()
    expect(after[149]).toBe(`u-${prefix}149`)
    expect(after.filter((u) => u === null)).toHaveLength(1)
    expect(result.accounts).toMatchObject({ [appid]: { filled: 148, stop: 'end' } })
    expect(result.next).toEqual({ [appid]: 0 })
  })

  it('asks an account whose followers have no unionid once per run, then stops', async () => {
    const unbound = `wxunbound${dbName}`
    await addMembers(get().db, unbound, `on-${dbName}-`, 250, now)
    const c = clients([unbound])
    const result = await run([unbound], c.api)
    expect(c.sizes).toEqual([100])
    expect((await unionids(unbound)).every((u) => u === null)).toBe(true)
    expect(result.accounts).toMatchObject({ [unbound]: { filled: 0, stop: 'unbound' } })
    await run([unbound], c.api)
    expect(c.sizes).toEqual([100, 100])
  })

  it('skips an account without a client and stops an account on an error, going on with the next', async () => {
    const none = `wxnone${dbName}`
    const failing = `wxfail${dbName}`
    const ok = `wxok${dbName}`
    await addMembers(get().db, none, `nn-${dbName}-`, 2, now)
    await addMembers(get().db, failing, `nf-${dbName}-`, 2, now)
    await addMembers(get().db, ok, `nk-${dbName}-`, 2, now)
    for (const i of [0, 1]) wx.setUser(`nk-${dbName}-${i}`, { unionid: `u-nk-${dbName}-${i}` })
    const c = clients([failing, ok])
    wx.fault('user.info.batchget', { errcode: 45009, errmsg: 'reach max api daily quota limit' })
    const result = await run([none, failing, ok], c.api)
    expect(result.accounts).toMatchObject({
      [none]: { stop: 'noClient' },
      [failing]: { stop: 'error', asked: 2, filled: 0 },
      [ok]: { stop: 'end', filled: 2 },
    })
    expect(await unionids(ok)).toEqual([`u-nk-${dbName}-0`, `u-nk-${dbName}-1`])
  })

  it('records the members WeChat answers with subscribe 0 as not following, at the question time, and counts them', async () => {
    const appid = `wxgone${dbName}`
    const prefix = `og-${dbName}-`
    const ids = await addMembers(get().db, appid, prefix, 5, now)
    for (const i of [0, 2, 4]) wx.setUser(`${prefix}${i}`, { unionid: `u-${prefix}${i}` })
    for (const i of [1, 3]) wx.setUser(`${prefix}${i}`, { subscribe: false })
    // 3 unfollowed once before and followed again (both pushes heard), then unfollowed unheard.
    const earlier = new Date(now.getTime() - 30 * 86_400_000)
    await get()
      .db.updateTable('members')
      .set({ subscribed_at: new Date(earlier.getTime() + 3_600_000), unsubscribed_at: earlier })
      .where('id', '=', ids[3]!)
      .execute()
    const c = clients([appid])
    const result = await run([appid], c.api)
    expect(c.sizes).toEqual([5])
    expect(result.accounts).toMatchObject({
      [appid]: { asked: 5, filled: 3, unfollowed: 2, stop: 'end' },
    })
    const members = await following(appid)
    expect(members.map((m) => m.subscribed)).toEqual([true, false, true, false, true])
    // The unfollow came before the question, when is unknown: the question's time, the latest.
    expect(members[1]!.unsubscribed_at).toEqual(now)
    expect(members[3]!.unsubscribed_at).toEqual(now)
    expect(members[0]!.unsubscribed_at).toBeNull()
    // No unfollow fact: it would count an unfollow of an unknown day on the question's day.
    expect(await unfollowFacts(appid)).toBe(0)
    // Not following: not asked again.
    const again = await run([appid], c.api)
    expect(c.sizes).toEqual([5])
    expect(again.accounts).toMatchObject({ [appid]: { asked: 0, unfollowed: 0, stop: 'end' } })
  })

  it.runIf(dbName === 'postgres')(
    "locks the rows it writes in the push path's order, so a push batch holding one never deadlocks with it",
    async () => {
      const appid = 'wxlockorder00001'
      // p (first in openid order) unfollowed unheard, q has a unionid to fill
      await addMembers(get().db, appid, 'lk-', 2, now)
      const [p, q] = ['lk-0', 'lk-1']
      wx.setUser(p, { subscribe: false })
      wx.setUser(q, { unionid: 'u-lk-1' })
      const lock = (trx: Transaction<Database>, openid: string) =>
        sql`select 1 from members where appid = ${appid} and openid = ${openid}
          for no key update`.execute(trx)
      // a push batch that has locked p and goes on to q (members.ts receiveAll: openid order)
      let batchTrx!: Transaction<Database>
      const batch = await holdTransaction(get().db, async (trx) => {
        batchTrx = trx
        await lock(trx, p)
      })
      const job = run([appid], clients([appid]).api)
      await waitingForLock(get().db, '%members%')
      // The batch takes q: the job must not hold it while waiting for p (PostgreSQL would abort
      // one of them as a deadlock).
      await lock(batchTrx, q)
      batch.commit()
      await batch.done
      const result = await job
      expect(result.accounts).toMatchObject({ [appid]: { filled: 1, unfollowed: 1 } })
      expect((await following(appid)).map((m) => m.subscribed)).toEqual([false, true])
    },
  )

  it('keeps a member whose follow was recorded after the question following', async () => {
    const appid = `wxrace${dbName}`
    const prefix = `or-${dbName}-`
    await addMembers(get().db, appid, prefix, 3, now)
    wx.setUser(`${prefix}0`, { unionid: `u-${prefix}0` })
    for (const i of [1, 2]) wx.setUser(`${prefix}${i}`, { subscribe: false })
    // 2 followed (heard) a day before the question, then unfollowed unheard: recorded.
    const dayBefore = new Date(now.getTime() - 86_400_000)
    await get()
      .db.updateTable('members')
      .set({ subscribed_at: dayBefore })
      .where('openid', '=', `${prefix}2`)
      .execute()
    // 1 follows again while the job waits for the answer: the push is recorded after the question.
    const refollow = new Date(now.getTime() + 1_000)
    const store = databaseMemberStore(get().db, { timeZone: 'Asia/Shanghai' })
    const openid = `${prefix}1`
    const follow = toInboundMessage(
      parseXml(
        `<xml><ToUserName>gh</ToUserName><FromUserName>${openid}</FromUserName><CreateTime>${refollow.getTime() / 1000}</CreateTime><MsgType>event</MsgType><Event>subscribe</Event></xml>`,
      ),
    )
    const c = clients([appid], async () => {
      await store.receive(
        { appid, dedupeKey: `${openid}:refollow`, msgType: 'event', event: 'subscribe' },
        follow,
        refollow,
      )
    })
    const result = await run([appid], c.api)
    expect(result.accounts).toMatchObject({ [appid]: { filled: 1, unfollowed: 1, stop: 'end' } })
    const members = await following(appid)
    expect(members.map((m) => m.subscribed)).toEqual([true, true, false])
    expect(members[1]!.subscribed_at).toEqual(refollow)
    expect(members[1]!.unsubscribed_at).toBeNull()
    expect(members[2]!.unsubscribed_at).toEqual(now)
  })

  it('tells an unbound account by its followers only: unfollowed answers (no unionid) neither make nor hide it', async () => {
    // Bound: a whole batch of unfollowed members (no unionid in any answer) is not "unbound".
    const bound = `wxgoneb${dbName}`
    const pb = `ogb-${dbName}-`
    await addMembers(get().db, bound, pb, 150, now)
    for (let i = 0; i < 100; i++) wx.setUser(`${pb}${i}`, { subscribe: false })
    for (let i = 100; i < 150; i++) wx.setUser(`${pb}${i}`, { unionid: `u-${pb}${i}` })
    // Unbound: followers without a unionid beside an unfollowed member.
    const unbound = `wxgoneu${dbName}`
    const pu = `ogu-${dbName}-`
    await addMembers(get().db, unbound, pu, 3, now)
    wx.setUser(`${pu}1`, { subscribe: false })
    const c = clients([bound, unbound])
    const result = await run([bound, unbound], c.api)
    expect(c.sizes).toEqual([100, 50, 3])
    expect(result.accounts).toMatchObject({
      [bound]: { asked: 150, filled: 50, unfollowed: 100, stop: 'end' },
      [unbound]: { asked: 3, filled: 0, unfollowed: 1, stop: 'unbound' },
    })
    expect((await following(bound)).filter((m) => m.subscribed)).toHaveLength(50)
    expect((await following(unbound)).map((m) => m.subscribed)).toEqual([true, false, true])
    expect(result.next).toMatchObject({ [bound]: 0, [unbound]: 0 })
  })

  it('pauses once the budget is spent and resumes from its cursor, asking no batch twice', async () => {
    const appid = `wxresume${dbName}`
    const prefix = `os-${dbName}-`
    const ids = await addMembers(get().db, appid, prefix, 150, now)
    // Every other member has no unionid: a run that lost its place would ask those again.
    for (let i = 0; i < 150; i += 2) wx.setUser(`${prefix}${i}`, { unionid: `u-${prefix}${i}` })
    const c = clients([appid])
    const saved: unknown[] = []
    const spent: Budget = { left: () => false }
    const first = await run([appid], c.api, { budget: spent, saved })
    expect(first).toMatchObject({
      more: true,
      calls: 1,
      accounts: { [appid]: { after: ids[99], asked: 100, filled: 50 } },
    })
    expect(saved).toHaveLength(1)
    const second = await run([appid], c.api, { budget: spent, cursor: saved[0], saved })
    expect(second.more).toBeUndefined()
    expect(second).toMatchObject({
      calls: 2,
      accounts: { [appid]: { asked: 150, filled: 75, stop: 'end' } },
    })
    expect(c.sizes).toEqual([100, 50])
    expect(c.batches[1]).toEqual(Array.from({ length: 50 }, (_, i) => `${prefix}${100 + i}`))
  })

  it('validates the batch: 1–100 openids', async () => {
    const api = sandboxClient(get().db, { appid: 'wxvalid', secret: SECRET, baseUrl: wx.url })
    await expect(getUsersInfo(api, [])).rejects.toThrow(/1–100/)
    await expect(
      getUsersInfo(
        api,
        Array.from({ length: 101 }, (_, i) => `o${i}`),
      ),
    ).rejects.toThrow(/1–100/)
  })
})
