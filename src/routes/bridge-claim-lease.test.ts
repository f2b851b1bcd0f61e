/**
 * A bridge event whose attempt died while handling it (SIGKILL, OOM, a deploy) is not lost: once
 * its claim has gone a lease without renewal, the bridge's retry takes it back and handles it,
 * once. An attempt still alive — its claim renewed within the lease — keeps it (503
 * STILL_PROCESSING), however long ago the event was first received.
 */
import { spawn } from 'node:child_process'
import { sql } from 'kysely'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { SAFE_ACCOUNT, startServer, type TestServer, testConfig } from '../../test/server.js'
import { sleep, systemClock } from '../clock.js'
import { retakeEvent } from '../community/inbound-events.js'
import { inviteCode, inviteScene } from '../community/invites.js'
import { createPusher } from '../sandbox/pusher.js'
import { signBridgeRequest } from './bridge.js'

const SECRET = 'bridge-lease-secret-0123456789ab'
const config = () => testConfig({ BRIDGES: JSON.stringify({ home: SECRET }) })
const STILL_PROCESSING = {
  status: 503,
  json: { code: 'STILL_PROCESSING', message: 'this event is still being handled: send it again' },
}

forEachDatabase('bridge events whose attempt died', (get, dbName) => {
  let server: TestServer
  beforeAll(async () => {
    server = await startServer(get().db, { config: config() })
  })
  afterAll(() => server.close())

  const post = async (event: unknown, to: TestServer = server) => {
    const body = JSON.stringify(event)
    const timestamp = String(Math.floor(Date.now() / 1000))
    const nonce = `n-${Math.random().toString(36).slice(2)}`
    const res = await fetch(`${to.url}/bridge/home`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-bridge-timestamp': timestamp,
        'x-bridge-nonce': nonce,
        'x-bridge-signature': await signBridgeRequest(SECRET, { timestamp, nonce, body }),
      },
      body,
    })
    return { status: res.status, json: (await res.json()) as Record<string, unknown> }
  }
  const oa = () => createPusher({ url: `${server.url}/wechat`, account: SAFE_ACCOUNT })
  /** An inviter's join state, and the invites credited to them. */
  const inviter = async (openid: string) => {
    await oa().text(openid, '签到')
    const member = await get()
      .db.selectFrom('members')
      .selectAll()
      .where('openid', '=', openid)
      .executeTakeFirstOrThrow()
    const state = inviteScene(await inviteCode(get().db, member, new Date()))
    const invites = () =>
      get()
        .db.selectFrom('invites')
        .select(['invitee_key', 'status'])
        .where('inviter_member_id', '=', member.id)
        .execute()
    return { state, invites }
  }
  /** A claim an earlier attempt left `processing`: received at `received`, renewed at `claimed`. */
  const leftProcessing = (id: string, received: Date, claimed: Date | null) =>
    get()
      .db.insertInto('inbound_events')
      .values({
        appid: 'bridge:home',
        dedupe_key: id,
        openid: 'member_join',
        msg_type: 'member_join',
        status: 'processing',
        received_at: received,
        claimed_at: claimed,
      })
      .execute()
  const claimOf = (id: string) =>
    get()
      .db.selectFrom('inbound_events')
      .select(['status', 'reply', 'received_at'])
      .where('appid', '=', 'bridge:home')
      .where('dedupe_key', '=', id)
      .executeTakeFirstOrThrow()
  const ago = (seconds: number) => new Date(Date.now() - seconds * 1000)

  it('takes back a join whose attempt stopped renewing its claim: credited once, as of its first receipt', async () => {
    const { state, invites } = await inviter(`o_lease_inviter_${dbName}`)
    const id = `dead-${dbName}`
    const contact = `wxid_dead_${dbName}`
    const received = ago(60)
    // its process died 9 s after it last claimed the event (the lease is 8 s)
    await leftProcessing(id, received, ago(9))
    const join = {
      type: 'member_join',
      id,
      chat: { id: 'room1' },
      members: [{ id: contact }],
      state,
    }
    // two retries at once: one takes it back and handles it, the other gets its answer
    const answers = await Promise.all([post(join), post(join)])
    const credited = { credited: [{ id: contact, result: 'attributed' }] }
    expect(answers).toEqual([
      { status: 200, json: credited },
      { status: 200, json: credited },
    ])
    expect(await invites()).toEqual([
      { invitee_key: expect.stringContaining(contact), status: 'pending' },
    ])
    const joiner = await get()
      .db.selectFrom('members')
      .select('first_seen_at')
      .where('appid', '=', 'bridge:home')
      .where('openid', '=', contact)
      .executeTakeFirstOrThrow()
    expect(joiner.first_seen_at).toEqual(received) // joined when the event first came
    expect(await claimOf(id)).toEqual({
      status: 'replied',
      reply: JSON.stringify(credited),
      received_at: received,
    })
    // later retries get the answer and change nothing
    expect(await post(join)).toEqual({ status: 200, json: credited })
    expect(await invites()).toHaveLength(1)
  })

  it('answers 503 for an event whose claim was renewed within the lease, however long ago it came', async () => {
    const { state, invites } = await inviter(`o_lease_alive_${dbName}`)
    const id = `alive-${dbName}`
    // first received a minute ago, taken back by another attempt a second ago: that one is alive
    await leftProcessing(id, ago(60), ago(1))
    const contact = `wxid_alive_${dbName}`
    const join = {
      type: 'member_join',
      id,
      chat: { id: 'room1' },
      members: [{ id: contact }],
      state,
    }
    expect(await post(join)).toEqual(STILL_PROCESSING)
    expect(await invites()).toEqual([])
    expect(await claimOf(id)).toMatchObject({ status: 'processing', reply: null })
  })

  it.skipIf(dbName !== 'postgres')(
    'a process killed mid-check-in (SIGKILL): the retry after its lease handles the check-in and answers',
    async () => {
      const db = get().db
      const leaseMs = 1500
      // a bridge contact bound to a follower
      const contact = `wxid_crash_${dbName}`
      const openid = `o_crash_${dbName}`
      const code = /绑定码：(\d{6})/.exec(
        (await oa().text(openid, '绑定')).reply!.Content as string,
      )![1]!
      const bind = {
        type: 'message',
        chat: { id: 'room1' },
        sender: { id: contact },
        mentioned: true,
      }
      expect(await post({ ...bind, id: `bind-${dbName}`, text: `@圈子助手 绑定 ${code}` })).toEqual(
        {
          status: 200,
          json: { reply: '绑定成功 ✅ 现在可以在这里签到、查积分了。' },
        },
      )
      await sql`create table test_bridge_crash_starts (pid int not null)`.execute(db)
      const { s: schema } = await db
        .selectNoFrom((eb) => eb.fn<string>('current_schema').as('s'))
        .executeTakeFirstOrThrow()
      const id = `crash-${dbName}`
      const checkin = { ...bind, id, text: '@圈子助手 签到' }
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          'test/fixtures/bridge-crash-child.ts',
          process.env.TEST_DATABASE_URL!,
          schema,
          SECRET,
          JSON.stringify(checkin),
          String(leaseMs),
        ],
        { stdio: 'inherit' },
      )
      const exited = new Promise((resolve) => child.once('exit', resolve))
      try {
        const starts = async () =>
          (
            await sql<{
              pid: number
            }>`select pid from test_bridge_crash_starts order by pid`.execute(db)
          ).rows.map((r) => r.pid)
        for (let i = 0; i < 200 && (await starts()).length === 0; i++) await sleep(100)
        expect(await starts()).toEqual([child.pid])
        const key = { appid: 'bridge:home', dedupeKey: id }
        const claimed = await db
          .selectFrom('inbound_events')
          .select(['status', 'received_at', 'claimed_at'])
          .where('appid', '=', key.appid)
          .where('dedupe_key', '=', id)
          .executeTakeFirstOrThrow()
        expect(claimed.status).toBe('processing')

        // alive and slow: its claim is renewed, so retries over 2.5 leases do not take it
        const clock = systemClock
        expect(await retakeEvent(db, key, { clock, leaseMs, waitMs: 2.5 * leaseMs })).toBe(
          undefined,
        )
        const renewed = await claimOf(id)
        expect(renewed).toMatchObject({ status: 'processing', received_at: claimed.received_at })

        child.kill('SIGKILL')
        await exited

        // the bridge sends the check-in again: once the lease has passed it is handled, and answered
        const retrying = await startServer(db, { config: config(), claimLeaseMs: leaseMs })
        try {
          const retry = await post(checkin, retrying)
          expect(retry).toEqual({
            status: 200,
            json: { reply: expect.stringMatching(/^签到成功 ✅/) },
          })
          const member = await db
            .selectFrom('members')
            .select('id')
            .where('appid', '=', SAFE_ACCOUNT.appid)
            .where('openid', '=', openid)
            .executeTakeFirstOrThrow()
          const checkins = () =>
            db.selectFrom('checkins').select('day').where('member_id', '=', member.id).execute()
          expect(await checkins()).toHaveLength(1)
          expect(await claimOf(id)).toEqual({
            status: 'replied',
            reply: JSON.stringify(retry.json),
            received_at: claimed.received_at,
          })
          // the next retry gets the same answer; nothing is handled again
          expect(await post(checkin, retrying)).toEqual(retry)
          expect(await checkins()).toHaveLength(1)
          expect(await starts()).toEqual([child.pid])
        } finally {
          await retrying.close()
        }
      } finally {
        child.kill('SIGKILL')
        await exited
        await sql`drop table if exists test_bridge_crash_starts`.execute(db)
      }
    },
  )
})
