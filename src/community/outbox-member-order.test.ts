/**
 * Per-member order: the outbox sends a member's messages of a lane one at a time, in the order they
 * were queued — across every dispatcher — while other members' go in parallel. A later message
 * waits for an earlier one's retry; the customer-service window's quota goes to the first five.
 */
import { type Kysely, sql } from 'kysely'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { type Clock, systemClock } from '../clock.js'
import type { Database } from '../db/schema.js'
import { silentLogger } from '../logger.js'
import { type SandboxApi, startSandboxApi } from '../sandbox/wechat-api-server.js'
import { accountClient } from '../wechat/api/account-client.js'
import type { ApiClient } from '../wechat/api/client.js'
import { WechatApiError } from '../wechat/api/errors.js'
import {
  type ClaimRequest,
  claim,
  claimWithin,
  type DispatcherOptions,
  drainOutbox,
  enqueue,
  LANE,
  type OutboxMessage,
  pauseApi,
} from './outbox.js'
import { databaseTokenStore } from './token-store.js'

const SECRET = 'order-secret'
let wx: SandboxApi
beforeAll(async () => {
  wx = await startSandboxApi({ secret: SECRET })
})
afterAll(() => wx.close())

/** What the fake API saw: sends per member in flight at once, at most, and who got what. */
interface Watch {
  api: ApiClient
  maxInFlight: Map<string, number>
  /** Sends that arrived while a given send was held (`hold`), by the held send's text. */
  whileHeld: string[]
}

/**
 * The account's client, watched: counts each member's sends in flight and lets a test hold one
 * send (by its text) until `release` resolves, or fail it once with an errcode.
 */
function watched(
  api: ApiClient,
  o: { hold?: { text: string; release: () => Promise<void> }; failOnce?: Map<string, number> } = {},
): Watch {
  const inFlight = new Map<string, number>()
  const maxInFlight = new Map<string, number>()
  const whileHeld: string[] = []
  let holding = false
  const textOf = (body: Record<string, unknown>) =>
    String(
      (body.text as { content?: string } | undefined)?.content ??
        (body.data as { keyword1?: { value?: string } } | undefined)?.keyword1?.value,
    )
  return {
    maxInFlight,
    whileHeld,
    api: {
      ...api,
      async call(req) {
        const body = (req.body ?? {}) as Record<string, unknown>
        const touser = String(body.touser ?? '')
        if (!touser) return api.call(req)
        const text = textOf(body)
        const now = (inFlight.get(touser) ?? 0) + 1
        inFlight.set(touser, now)
        maxInFlight.set(touser, Math.max(now, maxInFlight.get(touser) ?? 0))
        try {
          if (holding) whileHeld.push(text)
          const errcode = o.failOnce?.get(text)
          if (errcode !== undefined) {
            o.failOnce!.delete(text)
            throw new WechatApiError(errcode, 'api freq out of limit', req.method, body)
          }
          if (o.hold?.text === text) {
            holding = true
            await o.hold.release()
            holding = false
          }
          return await api.call(req)
        } finally {
          inFlight.set(touser, (inFlight.get(touser) ?? 1) - 1)
        }
      },
    },
  }
}

forEachDatabase('outbox per-member order', (get, dbName) => {
  let n = 0
  const clock = {
    time: new Date('2026-11-24T02:00:00Z'), // 10:00 in Shanghai
    now() {
      return this.time
    },
  } satisfies Clock & { time: Date }
  function account(db: Kysely<Database> = get().db) {
    const appid = `wx${dbName === 'pglite' ? 'e' : 'f'}${String(++n).padStart(15, '0')}`
    const api = accountClient({
      tokenStore: databaseTokenStore(db, systemClock),
      appid,
      secret: SECRET,
      baseUrl: wx.url,
      mode: 'stable',
      clock: { now: () => new Date() },
      logger: silentLogger,
      backoffMs: 1,
    })
    return {
      db,
      api,
      appid,
      clock,
      logger: silentLogger,
      timeZone: 'Asia/Shanghai',
      rate: { perSecond: 0, burst: 1 },
    } satisfies DispatcherOptions
  }
  /** The texts each member received, in the order the fake WeChat accepted them. */
  const received = (appid: string, openid: string) =>
    wx.sent
      .filter((s) => s.appid === appid && s.touser === openid)
      .map((s) =>
        String(
          (s.body.text as { content?: string } | undefined)?.content ??
            (s.body.data as { keyword1: { value: string } }).keyword1.value,
        ),
      )
  const notice = (
    appid: string,
    openid: string,
    text: string,
    kind: 'template' | 'custom' = 'template',
  ): OutboxMessage => ({
    appid,
    source: `points:${openid}:${text}`,
    openid,
    kind,
    lane: LANE.notice,
    payload:
      kind === 'template'
        ? { template_id: 'TPL_POINTS', data: { keyword1: { value: text } } }
        : { msgtype: 'text', text: { content: text } },
  })
  const balances = (k: number) =>
    Array.from({ length: k }, (_, i) => `积分 +${i + 1}, 余额 ${110 + i}`)
  /** Resolves once `check` holds (polled), or after 5 s whatever it says. */
  const until = async (check: () => boolean) => {
    const end = Date.now() + 5000
    while (!check() && Date.now() < end) await new Promise((r) => setTimeout(r, 5))
  }

  it('sends one member’s messages in queued order, one at a time, other members meanwhile', async () => {
    const o = account()
    const texts = balances(6)
    await enqueue(
      get().db,
      [...texts.map((t) => notice(o.appid, 'o_order', t)), notice(o.appid, 'o_other', 'other')],
      clock.now(),
    )
    // The first notice is slow: held until the other member has theirs, and a moment longer —
    // time for parallel senders to overtake it, if the member's later notices were in flight.
    const watch = watched(o.api, {
      hold: {
        text: texts[0]!,
        release: async () => {
          await until(() => received(o.appid, 'o_other').length > 0)
          await new Promise((r) => setTimeout(r, 150))
        },
      },
    })
    const summary = await drainOutbox({ ...o, api: watch.api }) // 16 senders in parallel
    expect(summary).toMatchObject({ sent: 7, skipped: 0, failed: 0 })
    expect(received(o.appid, 'o_order')).toEqual(texts)
    expect(watch.maxInFlight.get('o_order')).toBe(1)
    // the other member was not held behind the slow one
    expect(watch.whileHeld).toContain('other')
  })

  it('gives a member’s customer-service window to the first five messages, in order', async () => {
    const o = account()
    const at = new Date(clock.now().getTime() - 60_000)
    await get()
      .db.insertInto('members')
      .values({
        appid: o.appid,
        openid: 'o_window',
        subscribed: true,
        subscribed_at: new Date(at.getTime() - 86_400_000),
        first_seen_at: at,
        last_inbound_at: at,
      })
      .execute()
    wx.setUser('o_window', { windowOpen: true, subscribe: true })
    const texts = balances(7)
    await enqueue(
      get().db,
      texts.map((t) => notice(o.appid, 'o_window', t, 'custom')),
      clock.now(),
    )
    const watch = watched(o.api, {
      hold: { text: texts[0]!, release: () => new Promise((r) => setTimeout(r, 150)) },
    })
    expect(await drainOutbox({ ...o, api: watch.api })).toMatchObject({ sent: 5, skipped: 2 })
    expect(received(o.appid, 'o_window')).toEqual(texts.slice(0, 5))
    const rows = await get()
      .db.selectFrom('push_outbox')
      .select(['status', 'errcode'])
      .where('appid', '=', o.appid)
      .orderBy('id')
      .execute()
    expect(rows.slice(5)).toEqual([
      { status: 'skipped', errcode: 45047 },
      { status: 'skipped', errcode: 45047 },
    ])
  })

  it('keeps the order across dispatchers, and a retried message is not overtaken', async () => {
    const o = account()
    const texts = balances(5)
    const others = ['o_b', 'o_c', 'o_d']
    await enqueue(
      get().db,
      [
        ...texts.map((t) => notice(o.appid, 'o_retry', t)),
        ...others.map((openid) => notice(o.appid, openid, `hi ${openid}`)),
      ],
      clock.now(),
    )
    // the first notice meets a rate limit (45011): it goes back to the queue for 30 s
    const watch = watched(o.api, { failOnce: new Map([[texts[0]!, 45011]]) })
    const second = dbName === 'postgres' ? get().open() : o.db
    const drains = () =>
      Promise.all([
        drainOutbox({ ...o, api: watch.api }),
        drainOutbox({ ...o, db: second, api: watch.api }),
        drainOutbox({ ...o, api: watch.api, concurrency: 4, batchSize: 2 }),
      ])
    const first = await drains()
    expect(first.reduce((s, d) => s + d.retried, 0)).toBe(1)
    // the other members got theirs; the member's later notices wait for the retry
    for (const openid of others) expect(received(o.appid, openid)).toEqual([`hi ${openid}`])
    expect(received(o.appid, 'o_retry')).toEqual([])

    clock.time = new Date(clock.time.getTime() + 31_000)
    const later = await drains()
    expect(later.reduce((s, d) => s + d.sent, 0)).toBe(5)
    expect(received(o.appid, 'o_retry')).toEqual(texts)
    expect(watch.maxInFlight.get('o_retry')).toBe(1)
  })

  it('lets a member’s later message pass one that failed once and was then put off by a paused API', async () => {
    const o = account()
    const at = new Date(clock.now().getTime() - 60_000)
    await get()
      .db.insertInto('members')
      .values({
        appid: o.appid,
        openid: 'o_paused',
        subscribed: true,
        subscribed_at: new Date(at.getTime() - 86_400_000),
        first_seen_at: at,
        last_inbound_at: at,
      })
      .execute()
    wx.setUser('o_paused', { windowOpen: true, subscribe: true })
    // the first (customer-service) meets a rate limit: back for its retry in 30 s
    await enqueue(
      get().db,
      [notice(o.appid, 'o_paused', 'first', 'custom'), notice(o.appid, 'o_paused', 'second')],
      clock.now(),
    )
    const watch = watched(o.api, { failOnce: new Map([['first', 45011]]) })
    expect(await drainOutbox({ ...o, api: watch.api })).toMatchObject({ retried: 1, sent: 0 })
    // strict order while it waits for its retry
    expect(received(o.appid, 'o_paused')).toEqual([])
    // then the customer-service API's daily quota runs out (another dispatcher's 45009): the
    // first is put off to midnight, unsent — it holds the template behind it no more
    const midnight = new Date('2026-11-24T16:00:00Z')
    await pauseApi(get().db, {
      appid: o.appid,
      api: 'custom',
      until: midnight,
      errcode: 45009,
      now: clock.now(),
    })
    clock.time = new Date(clock.time.getTime() + 31_000)
    expect(await drainOutbox({ ...o, api: watch.api })).toMatchObject({ sent: 1 })
    expect(received(o.appid, 'o_paused')).toEqual(['second'])
    const first = await get()
      .db.selectFrom('push_outbox')
      .select(['status', 'attempts', 'next_attempt_at'])
      .where('appid', '=', o.appid)
      .where('source', '=', notice(o.appid, 'o_paused', 'first').source)
      .executeTakeFirstOrThrow()
    expect(first).toMatchObject({ status: 'pending', attempts: 1, next_attempt_at: midnight })
  })

  it('does not let quiet hours turn a dead claim’s campaign item into a live send that holds the member', async () => {
    const o = account()
    await enqueue(
      get().db,
      [{ ...notice(o.appid, 'o_quiet', 'campaign'), lane: LANE.campaign }],
      clock.now(),
    )
    // a dispatcher claimed the campaign item and died: its lease ran out a minute ago
    await get()
      .db.updateTable('push_outbox')
      .set({
        status: 'sending',
        claim_token: 'dead-dispatcher',
        attempts: 1,
        next_attempt_at: new Date(clock.now().getTime() - 60_000),
      })
      .where('appid', '=', o.appid)
      .execute()
    await enqueue(get().db, [notice(o.appid, 'o_quiet', 'points')], clock.now())
    // quiet hours until 11:00 local (the clock is at 10:00 in Shanghai): campaigns wait for their
    // end, the member's notice goes now — the dead claim's item is no send in flight
    const quiet = { ...o, quietHours: { from: 9 * 60, to: 11 * 60 } }
    expect(await drainOutbox(quiet)).toMatchObject({ sent: 1 })
    expect(received(o.appid, 'o_quiet')).toEqual(['points'])
    const campaign = await get()
      .db.selectFrom('push_outbox')
      .select(['status', 'next_attempt_at'])
      .where('appid', '=', o.appid)
      .where('lane', '=', LANE.campaign)
      .executeTakeFirstOrThrow()
    expect(campaign).toEqual({
      status: 'pending',
      next_attempt_at: new Date('2026-11-24T03:00:00Z'),
    })
  })

  it('claims exactly the members’ heads when most due items are held back (both statements)', async () => {
    // A model of the claim's rule against the statements, over random backlogs: a small window
    // makes the second statement (each member's head) do most of the work.
    let seed = 7
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed / 2147483648
    }
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)]!
    const now = clock.now()
    for (let round = 0; round < 12; round++) {
      const o = account()
      const n = 30 + Math.floor(random() * 40)
      const rows = Array.from({ length: n }, (_, i) => {
        const status = random() < 0.1 ? ('sending' as const) : ('pending' as const)
        const due = random() < 0.7
        const attempts = status === 'sending' || random() < 0.3 ? 1 : 0
        return {
          appid: o.appid,
          source: `model:${round}:${i}`,
          openid: pick(['o_a', 'o_b', 'o_c', 'o_d', 'o_e', 'o_f']),
          kind: 'template' as const,
          payload: '{}',
          lane: pick([0, 1, 1, 2] as const),
          status,
          attempts,
          retrying: status === 'pending' && attempts > 0 && random() < 0.6,
          // distinct times: the claim's order is next_attempt_at's
          next_attempt_at: new Date(now.getTime() + (due ? -1 : 1) * (1000 + i * 7919 * 13)),
          created_at: now,
        }
      })
      const inserted = await get()
        .db.insertInto('push_outbox')
        .values(rows)
        .returning(['id'])
        .execute()
      const items = rows.map((r, i) => ({ ...r, id: Number(inserted[i]!.id) }))
      const isDue = (e: (typeof items)[number]) => e.next_attempt_at <= now
      const claimable = (x: (typeof items)[number], lane: number) =>
        x.lane === lane &&
        isDue(x) &&
        !items.some(
          (e) =>
            e.openid === x.openid &&
            e.id !== x.id &&
            ((e.status === 'sending' && !isDue(e)) ||
              (e.lane === x.lane &&
                e.id < x.id &&
                (isDue(e) || (e.status === 'pending' && e.retrying)))),
        )
      for (const lane of [0, 1, 2] as const) {
        const limit = 1 + Math.floor(random() * 4)
        const expected = items
          .filter((x) => claimable(x, lane))
          .sort((a, b) => a.next_attempt_at.getTime() - b.next_attempt_at.getTime())
          .slice(0, limit)
          .map((x) => x.id)
        const request: ClaimRequest = {
          appid: o.appid,
          lane,
          limit,
          token: `t${round}${lane}`,
          lease: new Date(now.getTime() + 60_000),
          now,
          window: 2,
        }
        // rolled back, so every lane is claimed from the same backlog
        const got = await get()
          .db.transaction()
          .execute(async (trx) => {
            const claimed = await claimWithin(trx, request)
            throw Object.assign(new Error('roll back'), { claimed })
          })
          .catch((e: { claimed?: { id: number }[] }) => {
            if (!e.claimed) throw e
            return e.claimed
          })
        expect(
          got.map((x) => Number(x.id)).sort((a, b) => a - b),
          `round ${round} lane ${lane}`,
        ).toEqual([...expected].sort((a, b) => a - b))
      }
    }
  })

  // PGlite has one connection: a second claim cannot run while the first one's transaction is
  // open, so the lock cannot be told from the connection's own serialisation there.
  it.skipIf(dbName === 'pglite')(
    'runs one claim of an account at a time: the next reads what the last committed',
    async () => {
      const o = account()
      // one member, one notice and one campaign item: two lanes, claimed by two dispatchers
      await enqueue(
        get().db,
        [
          notice(o.appid, 'o_lock', 'notice'),
          { ...notice(o.appid, 'o_lock', 'campaign'), lane: LANE.campaign },
        ],
        clock.now(),
      )
      const request = (lane: 1 | 2, token: string): ClaimRequest => ({
        appid: o.appid,
        lane,
        limit: 10,
        token,
        lease: new Date(clock.now().getTime() + 60_000),
        now: clock.now(),
      })
      const second = get().open({ max: 2 })
      let commit = () => {}
      const committed = new Promise<void>((r) => {
        commit = r
      })
      let claimedFirst: (v: number) => void = () => {}
      const firstDone = new Promise<number>((r) => {
        claimedFirst = r
      })
      // the first dispatcher claims the notice and keeps its transaction open
      const first = get()
        .db.transaction()
        .execute(async (trx) => {
          const items = await claimWithin(trx, request(1, 'first'))
          claimedFirst(items.length)
          await committed
          return items
        })
      expect(await firstDone).toBe(1)
      // the second claims the campaign lane meanwhile: it must wait for the first to commit,
      // then see the notice being sent and take nothing of the member
      let secondSettled = false
      const other = claim(second, request(2, 'second')).finally(() => {
        secondSettled = true
      })
      // it waits on the account's advisory lock (not on a row: the items are different rows)
      const waiting = async () => {
        const { rows } = await sql<{ n: number }>`select count(*)::int as n from pg_locks l
          where l.locktype = 'advisory' and not l.granted
            and exists (select 1 from pg_locks g where g.locktype = 'advisory' and g.granted
              and g.classid = l.classid and g.objid = l.objid and g.objsubid = l.objsubid)`.execute(
          get().db,
        )
        return rows[0]!.n
      }
      let settledBeforeCommit: boolean
      try {
        const end = Date.now() + 2000
        while ((await waiting()) === 0 && !secondSettled && Date.now() < end)
          await new Promise((r) => setTimeout(r, 10))
        settledBeforeCommit = secondSettled
      } finally {
        commit()
      }
      expect((await first).map((i) => i.lane)).toEqual([LANE.notice])
      // without the lock it would read the notice as waiting and take the campaign item too
      expect((await other).map((i) => `${i.openid} lane ${i.lane}`)).toEqual([])
      expect(settledBeforeCommit).toBe(false)
    },
  )
})
