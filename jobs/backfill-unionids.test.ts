import { afterAll, beforeAll, expect, it } from 'vitest'
import { loadConfig } from '../src/config.js'
import { silentLogger } from '../src/logger.js'
import { type SandboxApi, startSandboxApi } from '../src/sandbox/wechat-api-server.js'
import type { ApiClient } from '../src/wechat/api/client.js'
import { getUsersInfo } from '../src/wechat/api/users.js'
import { addMembers } from '../test/analytics-fixtures.js'
import { forEachDatabase } from '../test/databases.js'
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

  /** Each account's client, recording the size of every batchget it sends. */
  function clients(appids: string[]) {
    const sizes: number[] = []
    const made = new Map<string, ApiClient>()
    for (const appid of appids) {
      const inner = sandboxClient(get().db, { appid, secret: SECRET, baseUrl: wx.url })
      made.set(appid, {
        call: (req) => {
          if (req.method === 'user.info.batchget')
            sizes.push((req.body as { user_list: unknown[] }).user_list.length)
          return inner.call(req)
        },
        unauthenticated: (req) => inner.unauthenticated(req),
      })
    }
    return { sizes, api: (appid: string) => made.get(appid) }
  }
  const run = (appids: string[], api: (appid: string) => ApiClient | undefined) => {
    const config = loadConfig({})
    config.accounts = appids.map((appid) => ({ appid, token: 'token123', secret: SECRET }))
    return backfillUnionidsJob.run({
      db: get().db,
      clock: { now: () => now },
      logger: silentLogger,
      config,
      slot: now,
      api,
    })
  }
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
