/**
 * An official-account push whose attempt died while handling it (SIGKILL, OOM, a deploy) is not
 * lost: once its claim has gone a lease without renewal, WeChat's retry takes it back and handles
 * it, once, and answers. An attempt still alive — renewing its claim — keeps it, and an attempt
 * taken over stores nothing over the new holder's claim.
 */
import { spawn } from 'node:child_process'
import { sql } from 'kysely'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { SAFE_ACCOUNT, startServer, type TestServer, testConfig } from '../../test/server.js'
import { Router } from '../bot/router.js'
import { sleep } from '../clock.js'
import { databaseInboundStore, reclaimEvent } from '../community/inbound-events.js'
import { createLogger } from '../logger.js'
import { createPusher, nextMsgId, type PreparedPush } from '../sandbox/pusher.js'

forEachDatabase('official-account pushes whose attempt died', (get, dbName) => {
  let server: TestServer
  beforeAll(async () => {
    server = await startServer(get().db)
  })
  afterAll(() => server.close())

  const appid = SAFE_ACCOUNT.appid
  const pusher = (to: TestServer = server) =>
    createPusher({ url: `${to.url}/wechat`, account: SAFE_ACCOUNT })
  const checkinPush = (openid: string, msgId: string, to: TestServer = server) =>
    pusher(to).prepare({
      FromUserName: openid,
      CreateTime: Math.floor(Date.now() / 1000),
      MsgType: 'text',
      Content: '签到',
      MsgId: BigInt(msgId),
    })
  const claimOf = (msgId: string) =>
    get()
      .db.selectFrom('inbound_events')
      .select(['status', 'reply', 'received_at', 'claimed_at'])
      .where('appid', '=', appid)
      .where('dedupe_key', '=', `m:${msgId}`)
      .executeTakeFirstOrThrow()
  const checkinsOf = async (openid: string) =>
    (
      await get()
        .db.selectFrom('checkins')
        .innerJoin('members', 'members.id', 'checkins.member_id')
        .select('checkins.day')
        .where('members.appid', '=', appid)
        .where('members.openid', '=', openid)
        .execute()
    ).length
  const ago = (seconds: number) => new Date(Date.now() - seconds * 1000)
  /** The claim an attempt left `processing` (its statement recorded the member too). */
  const leftProcessing = (openid: string, msgId: string, received: Date, claimed: Date | null) =>
    get()
      .db.insertInto('inbound_events')
      .values({
        appid,
        dedupe_key: `m:${msgId}`,
        openid,
        msg_type: 'text',
        status: 'processing',
        received_at: received,
        claimed_at: claimed,
      })
      .execute()

  it('a retry takes back a push whose claim has not been renewed for a lease, handles it once and answers', async () => {
    const openid = `o_oa_dead_${dbName}`
    await pusher().text(openid, '你好') // the member, as the dead attempt's statement recorded them
    const msgId = nextMsgId()
    const received = ago(60)
    await leftProcessing(openid, msgId, received, null)
    const push = await checkinPush(openid, msgId)
    const retry = await pusher().send(push)
    expect(retry.reply?.Content).toMatch(/^签到成功 ✅/)
    expect(await checkinsOf(openid)).toBe(1)
    expect(await claimOf(msgId)).toMatchObject({
      status: 'replied',
      reply: expect.stringContaining('签到成功'),
      received_at: received, // as of its first receipt
    })
    // the next retry gets the same answer; nothing is handled again
    expect((await pusher().send(push)).reply).toEqual(retry.reply)
    expect(await checkinsOf(openid)).toBe(1)
  })

  it('an attempt taken over stores nothing over the new holder’s claim', async () => {
    const db = get().db
    const msgId = nextMsgId()
    await leftProcessing(`o_oa_fence_${dbName}`, msgId, ago(60), null)
    const key = { appid, dedupeKey: `m:${msgId}` }
    const store = databaseInboundStore(db)
    const taken = await reclaimEvent(db, key, { now: new Date(), leaseMs: 12_000 })
    expect(taken).toBeDefined()
    // the first attempt (its claim never renewed) comes back: neither its reply nor its deferral
    expect(await store.complete(key, 'stale', new Date())).toBe(false)
    expect(await store.defer(key, new Date(), null)).toBe(false)
    expect(await claimOf(msgId)).toMatchObject({ status: 'processing', reply: null })
    expect(await store.complete(key, 'fresh', new Date(), undefined, taken!.claimedAt)).toBe(true)
    expect(await claimOf(msgId)).toMatchObject({ status: 'replied', reply: 'fresh' })
  })

  it('an attempt taken over writes no follow-up onto the new holder’s deferred claim', async () => {
    const db = get().db
    const msgId = nextMsgId()
    await leftProcessing(`o_oa_follow_${dbName}`, msgId, ago(60), null)
    const key = { appid, dedupeKey: `m:${msgId}` }
    const store = databaseInboundStore(db)
    const taken = await reclaimEvent(db, key, { now: new Date(), leaseMs: 12_000 })
    expect(taken).toBeDefined()
    // the new holder overran its deadline: it deferred its claim
    expect(await store.defer(key, new Date(), taken!.claimedAt)).toBe(true)
    // the first attempt (its claim never renewed) finishes late: its completion fails, and its
    // follow-up is not recorded over the new holder's deferral
    expect(await store.complete(key, 'stale', new Date())).toBe(false)
    const reply = (content: string) => JSON.stringify({ type: 'text', content })
    await store.recordFollowUp(key, reply('stale'), new Date(), undefined, null)
    expect(await claimOf(msgId)).toMatchObject({ status: 'deferred', reply: null })
    // the new holder's own follow-up is
    await store.recordFollowUp(key, reply('fresh'), new Date(), undefined, taken!.claimedAt)
    expect(
      await db
        .selectFrom('inbound_events')
        .select(['status', 'follow_up'])
        .where('appid', '=', appid)
        .where('dedupe_key', '=', key.dedupeKey)
        .executeTakeFirstOrThrow(),
    ).toEqual({ status: 'follow_up', follow_up: reply('fresh') })
  })

  it('an attempt taken over between its deadline and its deferral answers at once, storing nothing', async () => {
    const db = get().db
    let started = 0
    let finished = false
    let release!: () => void
    const gate = new Promise<void>((resolve) => {
      release = resolve
    })
    const router = new Router().command(
      { names: ['签到'], description: 'command.checkin' },
      async () => {
        started++
        await gate
        finished = true
        return { type: 'text', content: 'late' }
      },
    )
    const store = databaseInboundStore(db)
    let retakenAt: Date | undefined
    let fallback: ReturnType<typeof setTimeout> | undefined
    const logged: { code?: string }[] = []
    const server2 = await startServer(db, {
      config: testConfig({ WECHAT_REPLY_DEADLINE_MS: '300' }),
      router,
      logger: createLogger({ write: (line) => logged.push(JSON.parse(line)) }),
      inbound: {
        ...store,
        async defer(key, now, claimedAt) {
          // WeChat's retry took the claim over just as this attempt's deadline passed
          retakenAt = (await reclaimEvent(db, key, { now: new Date(), leaseMs: 0 }))?.claimedAt
          const deferred = await store.defer(key, now, claimedAt)
          // (only so that an attempt that waits for its handler does not wait forever)
          fallback = setTimeout(release, 1500)
          return deferred
        },
      },
    })
    try {
      const openid = `o_oa_lost_${dbName}`
      const msgId = nextMsgId()
      const answer = await pusher(server2).send(await checkinPush(openid, msgId, server2))
      const handlerDoneAtAnswer = finished
      release()
      expect(started).toBe(1)
      expect(retakenAt).toBeDefined()
      expect(answer).toMatchObject({ status: 200, reply: null })
      // answered without waiting for the handler, which the new holder's claim is not waiting on
      expect(handlerDoneAtAnswer).toBe(false)
      expect(logged.map((l) => l.code)).toContain('INBOUND_CLAIM_LOST')
      for (let i = 0; i < 100 && !finished; i++) await sleep(10)
      await sleep(50)
      // the new holder's claim, untouched by this attempt
      expect(await claimOf(msgId)).toMatchObject({
        status: 'processing',
        reply: null,
        claimed_at: retakenAt,
      })
    } finally {
      clearTimeout(fallback)
      release()
      await server2.close()
    }
  })

  it('logs a late reply it cannot store instead of leaving a rejection no one handles (it would crash the Node process)', async () => {
    const db = get().db
    let finished = false
    const router = new Router().command(
      { names: ['签到'], description: 'command.checkin' },
      async () => {
        await sleep(400) // past the 200 ms deadline below
        finished = true
        return { type: 'text', content: 'late' }
      },
    )
    const store = databaseInboundStore(db)
    const logged: { code?: string }[] = []
    const server2 = await startServer(db, {
      config: testConfig({ WECHAT_REPLY_DEADLINE_MS: '200' }),
      router,
      logger: createLogger({ write: (line) => logged.push(JSON.parse(line)) }),
      inbound: {
        ...store,
        async recordFollowUp() {
          throw new Error('the database went away')
        },
      },
    })
    const unhandled: unknown[] = []
    const onUnhandled = (reason: unknown) => unhandled.push(reason)
    process.on('unhandledRejection', onUnhandled)
    try {
      const answer = await pusher(server2).send(
        await checkinPush(`o_oa_late_fail_${dbName}`, nextMsgId(), server2),
      )
      expect(answer).toMatchObject({ status: 200, reply: null })
      for (let i = 0; i < 100 && !finished; i++) await sleep(10)
      await sleep(100)
      expect(unhandled).toEqual([])
      expect(logged.map((l) => l.code)).toContain('LATE_REPLY_NOT_STORED')
    } finally {
      process.off('unhandledRejection', onUnhandled)
      await server2.close()
    }
  })

  it('a live attempt renewing its claim is not taken over by a retry that waits several leases', async () => {
    const leaseMs = 600
    let started = 0
    let release!: () => void
    const gate = new Promise<void>((resolve) => {
      release = resolve
    })
    const router = new Router().command(
      { names: ['签到'], description: 'command.checkin' },
      async () => {
        started++
        await gate
        return { type: 'text', content: 'done' }
      },
    )
    const config = (deadline: number) => testConfig({ WECHAT_REPLY_DEADLINE_MS: String(deadline) })
    const holder = await startServer(get().db, {
      config: config(4800),
      router,
      claimLeaseMs: leaseMs,
    })
    const retrying = await startServer(get().db, {
      config: config(2000),
      router,
      claimLeaseMs: leaseMs,
    })
    try {
      const openid = `o_oa_alive_${dbName}`
      const msgId = nextMsgId()
      const push = await checkinPush(openid, msgId, holder)
      const first = pusher(holder).send(push)
      for (let i = 0; i < 100 && started === 0; i++) await sleep(20)
      expect(started).toBe(1)
      const retry = await pusher(retrying).send({
        ...push,
        url: push.url.replace(holder.url, retrying.url),
      })
      expect(retry).toMatchObject({ status: 200, reply: null })
      expect(started).toBe(1)
      const held = await claimOf(msgId)
      expect(held.status).toBe('processing')
      expect(held.claimed_at).not.toBeNull() // renewed by the holder
      release()
      await first
      expect(started).toBe(1)
      expect((await claimOf(msgId)).status).not.toBe('processing')
    } finally {
      release()
      await holder.close()
      await retrying.close()
    }
  })

  it.skipIf(dbName !== 'postgres')(
    'a process killed mid-check-in (SIGKILL): WeChat’s retry after its lease handles the check-in and answers',
    async () => {
      const db = get().db
      const leaseMs = 600
      const openid = `o_oa_crash_${dbName}`
      await pusher().text(openid, '你好')
      await sql`create table test_oa_crash_starts (pid int not null)`.execute(db)
      const { s: schema } = await db
        .selectNoFrom((eb) => eb.fn<string>('current_schema').as('s'))
        .executeTakeFirstOrThrow()
      const msgId = nextMsgId()
      const push: PreparedPush = await checkinPush(openid, msgId)
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          'test/fixtures/oa-crash-child.ts',
          process.env.TEST_DATABASE_URL!,
          schema,
          push.url.slice(server.url.length),
          push.body,
          String(leaseMs),
        ],
        { stdio: 'inherit' },
      )
      const exited = new Promise((resolve) => child.once('exit', resolve))
      const config = testConfig({ WECHAT_REPLY_DEADLINE_MS: '4800' })
      const retrying = await startServer(db, { config, claimLeaseMs: leaseMs })
      try {
        const starts = async () =>
          (
            await sql<{ pid: number }>`select pid from test_oa_crash_starts order by pid`.execute(
              db,
            )
          ).rows.map((r) => r.pid)
        for (let i = 0; i < 200 && (await starts()).length === 0; i++) await sleep(50)
        expect(await starts()).toEqual([child.pid])
        const claimed = await claimOf(msgId)
        expect(claimed.status).toBe('processing')

        child.kill('SIGKILL')
        await exited

        // WeChat sends the push again: once the lease has passed it is handled, and answered
        const resend = () =>
          pusher(retrying).send({ ...push, url: push.url.replace(server.url, retrying.url) })
        let retry = await resend()
        for (let i = 0; i < 3 && retry.reply === null; i++) retry = await resend()
        expect(retry.reply?.Content).toMatch(/^签到成功 ✅/)
        expect(await checkinsOf(openid)).toBe(1)
        expect(await claimOf(msgId)).toMatchObject({
          status: 'replied',
          received_at: claimed.received_at,
        })
        // the next retry gets the same answer; nothing is handled again
        expect((await resend()).reply).toEqual(retry.reply)
        expect(await checkinsOf(openid)).toBe(1)
        expect(await starts()).toEqual([child.pid])
      } finally {
        child.kill('SIGKILL')
        await exited
        await retrying.close()
        await sql`drop table if exists test_oa_crash_starts`.execute(db)
      }
    },
  )
})
