/**
 * The lease on another channel's claim: a `processing` claim its process stopped renewing is taken
 * back by the sender's retry, once; one made, taken back or renewed within the lease is not —
 * `received_at` (kept from the first receipt) is not the lease clock.
 */
import {
  type DatabaseConnection,
  DummyDriver,
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
} from 'kysely'
import { expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { type Clock, sleep, systemClock } from '../clock.js'
import type { Database, InboundStatus } from '../db/schema.js'
import { createLogger, type LogFields } from '../logger.js'
import { holdClaim, INBOUND_CLAIM_LEASE_MS, PAST_DEADLINE } from './claim-lease.js'
import { claimEvent, databaseInboundStore, retakeEvent } from './inbound-events.js'

const NOW = new Date('2026-12-05T02:00:00Z')
const at = (seconds: number) => new Date(NOW.getTime() + seconds * 1000)
const fixed: Clock = { now: () => NOW }

forEachDatabase('inbound claim leases', (get, dbName) => {
  const appid = `bridge:lease-${dbName}`
  const key = (id: string) => ({ appid, dedupeKey: id })
  /** A claim as an attempt left it: received at `received`, last claimed or renewed at `claimed`. */
  const left = (
    id: string,
    o: { received: Date; claimed: Date | null; status?: InboundStatus; reply?: string },
  ) =>
    get()
      .db.insertInto('inbound_events')
      .values({
        appid,
        dedupe_key: id,
        openid: 'member_join',
        msg_type: 'member_join',
        status: o.status ?? 'processing',
        reply: o.reply ?? null,
        received_at: o.received,
        claimed_at: o.claimed,
      })
      .execute()
  const row = (id: string) =>
    get()
      .db.selectFrom('inbound_events')
      .select(['status', 'received_at', 'claimed_at'])
      .where('appid', '=', appid)
      .where('dedupe_key', '=', id)
      .executeTakeFirstOrThrow()
  const retake = (id: string, o: { clock?: Clock; leaseMs?: number; waitMs?: number } = {}) =>
    retakeEvent(get().db, key(id), {
      clock: fixed,
      waitMs: 0,
      ...o,
    })

  it('takes back a processing claim not renewed for the lease; leaves a fresh one to its attempt', async () => {
    expect(INBOUND_CLAIM_LEASE_MS).toBe(12_000)
    // its process died 13 s ago: taken back as of its first receipt, claimed now
    await left('dead', { received: at(-60), claimed: at(-13) })
    expect(await retake('dead')).toEqual({ receivedAt: at(-60), claimedAt: NOW })
    expect(await row('dead')).toEqual({
      status: 'processing',
      received_at: at(-60),
      claimed_at: NOW,
    })
    // and now it is the retry's: the next retry leaves it alone
    expect(await retake('dead')).toBeUndefined()

    // taken back (or renewed) 2 s ago, first received a minute ago: its attempt is alive
    await left('alive', { received: at(-60), claimed: at(-2) })
    expect(await retake('alive')).toBeUndefined()
    expect(await row('alive')).toMatchObject({ claimed_at: at(-2) })

    // claimed before claimed_at was kept: counted by its receipt
    await left('old-dead', { received: at(-13), claimed: null })
    expect(await retake('old-dead')).toEqual({ receivedAt: at(-13), claimedAt: NOW })
    await left('old-alive', { received: at(-2), claimed: null })
    expect(await retake('old-alive')).toBeUndefined()

    // a claim made now stamps claimed_at with it; the lease is the caller's
    expect(
      await claimEvent(get().db, {
        appid,
        dedupeKey: 'new',
        sender: 's',
        msgType: 'message',
        now: at(-3),
      }),
    ).toBe(true)
    expect(await row('new')).toMatchObject({ claimed_at: at(-3) })
    expect(await retake('new')).toBeUndefined()
    expect(await retake('new', { leaseMs: 2000 })).toEqual({ receivedAt: at(-3), claimedAt: NOW })

    // a failed attempt's event is taken back at once, and stamped too
    await left('failed', { received: at(-1), claimed: at(-1), status: 'failed' })
    expect(await retake('failed')).toEqual({ receivedAt: at(-1), claimedAt: NOW })
    // an answered one gives its answer
    await left('answered', { received: at(-60), claimed: at(-60), status: 'replied', reply: '{}' })
    expect(await retake('answered')).toEqual({ reply: '{}' })
  })

  it('lets one of concurrent retries take back a dead claim', async () => {
    await left('raced', { received: at(-30), claimed: at(-20) })
    await left('raced-failed', { received: at(-30), claimed: at(-30), status: 'failed' })
    const pools = get().name === 'postgres' ? [0, 1, 2, 3].map(() => get().open()) : []
    for (const id of ['raced', 'raced-failed']) {
      const tries = await Promise.all(
        [0, 1, 2, 3].map((i) => {
          const db = pools[i] ?? get().db
          return retakeEvent(db, key(id), { clock: fixed, waitMs: 100 })
        }),
      )
      expect(tries.filter((t) => t !== undefined)).toEqual([
        { receivedAt: at(-30), claimedAt: NOW },
      ])
    }
  })

  it('renews a live attempt’s claim, so a retry never takes it within the lease however long it works', async () => {
    const lines: LogFields[] = []
    const logger = createLogger({ level: 'debug', write: (l) => lines.push(JSON.parse(l)) })
    const leaseMs = 1000
    const claimedAt = systemClock.now()
    await left('slow', { received: claimedAt, claimed: claimedAt })
    let handled = 0
    const hold = { claimedAt, clock: systemClock, leaseMs, logger }
    const slow = holdClaim(get().db, key('slow'), hold, async () => {
      await sleep(leaseMs * 3)
      return ++handled
    })
    // retries keep trying for the whole time it works: none takes it
    const retries = await Promise.all(
      [0, 500, 1500].map(async (delay) => {
        await sleep(delay)
        return retake('slow', { clock: systemClock, leaseMs, waitMs: leaseMs * 1.4 })
      }),
    )
    expect(retries).toEqual([undefined, undefined, undefined])
    expect(await slow).toBe(1)
    const renewed = (await row('slow')).claimed_at!.getTime()
    expect(renewed).toBeGreaterThan(claimedAt.getTime())
    // what the attempt's completion is fenced on: the row's, after the last renewal settled
    expect(hold.claimedAt.getTime()).toBe(renewed)
    // its renewals stopped with it: once the lease passes, a retry takes it (as for a dead one)
    await sleep(leaseMs * 1.2)
    expect((await row('slow')).claimed_at!.getTime()).toBe(renewed)
    expect(await retake('slow', { clock: systemClock, leaseMs })).toMatchObject({
      receivedAt: claimedAt,
    })
    expect(lines.filter((l) => l.code !== undefined)).toEqual([])
  })

  it('logs INBOUND_CLAIM_LOST when a holder finds its claim taken over', async () => {
    const lines: LogFields[] = []
    const logger = createLogger({ level: 'debug', write: (l) => lines.push(JSON.parse(l)) })
    const leaseMs = 150
    const claimedAt = systemClock.now()
    await left('lost', { received: claimedAt, claimed: claimedAt })
    const hold = { claimedAt, clock: systemClock, leaseMs, logger }
    await holdClaim(get().db, key('lost'), hold, async () => {
      // another attempt took it over (this one's renewals had not reached the database)
      await get()
        .db.updateTable('inbound_events')
        .set({ claimed_at: new Date(claimedAt.getTime() + 60_000) })
        .where('appid', '=', appid)
        .where('dedupe_key', '=', 'lost')
        .execute()
      await sleep(leaseMs * 2)
    })
    expect(lines.filter((l) => l.code !== undefined)).toEqual([
      expect.objectContaining({ level: 'warn', code: 'INBOUND_CLAIM_LOST', dedupeKey: 'lost' }),
    ])
  })

  it('with a deadline: renews until it, answers PAST_DEADLINE at it, and a lost claim still gets it', async () => {
    const logger = createLogger({ level: 'error' })
    const leaseMs = 200
    const claimedAt = systemClock.now()
    await left('deadline', { received: claimedAt, claimed: claimedAt })
    const hold = { claimedAt, clock: systemClock, leaseMs, logger }
    let finished = false
    const started = performance.now()
    const first = await holdClaim(
      get().db,
      key('deadline'),
      hold,
      async () => {
        await sleep(1000)
        finished = true
        return 'late'
      },
      systemClock.now().getTime() + 230,
    )
    const waited = performance.now() - started
    expect(first).toBe(PAST_DEADLINE)
    // before the work's end (no upper bound in ms: a loaded machine runs timers late)
    expect(finished).toBe(false)
    // and not before the deadline (timers never fire early)
    expect(waited).toBeGreaterThanOrEqual(225)
    // renewed at 50, 100, 150 and 200 ms: the row's claimed_at moved, and is what the hold says
    const renewed = (await row('deadline')).claimed_at!.getTime()
    expect(renewed).toBeGreaterThan(claimedAt.getTime())
    expect(hold.claimedAt.getTime()).toBe(renewed)
    // past the deadline nothing renews it any more
    await sleep(150)
    expect((await row('deadline')).claimed_at!.getTime()).toBe(renewed)

    // taken over at once: the renewals stop, and the deadline still ends the hold
    const lostAt = systemClock.now()
    await left('deadline-lost', { received: lostAt, claimed: lostAt })
    await get()
      .db.updateTable('inbound_events')
      .set({ claimed_at: new Date(lostAt.getTime() + 60_000) })
      .where('appid', '=', appid)
      .where('dedupe_key', '=', 'deadline-lost')
      .execute()
    const lostHold = { claimedAt: lostAt, clock: systemClock, leaseMs, logger }
    let lostFinished = false
    const lost = await holdClaim(
      get().db,
      key('deadline-lost'),
      lostHold,
      () => sleep(2000).then(() => (lostFinished = true)),
      systemClock.now().getTime() + 300,
    )
    expect(lost).toBe(PAST_DEADLINE)
    expect(lostFinished).toBe(false)
    expect(lostHold.claimedAt).toEqual(lostAt)

    // work ending first: its value, and no timer left behind to fire the deadline later
    const quick = { claimedAt: null, clock: systemClock, leaseMs, logger }
    expect(
      await holdClaim(
        get().db,
        key('none'),
        quick,
        async () => 7,
        systemClock.now().getTime() + 50,
      ),
    ).toBe(7)
  })

  it('fences a completion on the claim: an attempt taken over stores nothing over the new holder’s', async () => {
    const store = databaseInboundStore(get().db)
    await left('fenced', { received: at(-60), claimed: at(-20) })
    // the retry took it over (the old attempt had stopped renewing): claimed now
    expect(await retake('fenced')).toEqual({ receivedAt: at(-60), claimedAt: NOW })
    // the old attempt's failure and its answer both miss: the event stays the retry's
    expect(await store.complete(key('fenced'), null, NOW, 'boom', at(-20))).toBe(false)
    expect(await store.complete(key('fenced'), '{"old":1}', NOW, undefined, at(-20))).toBe(false)
    expect(await row('fenced')).toMatchObject({ status: 'processing', claimed_at: NOW })
    // the new holder's answer lands
    expect(await store.complete(key('fenced'), '{"new":1}', NOW, undefined, NOW)).toBe(true)
    expect(await store.read(key('fenced'))).toEqual({ status: 'replied', reply: '{"new":1}' })
  })
})

/**
 * A database whose every statement succeeds at once with one row (microtasks only, no I/O): for
 * the timer's order below, where a real renewal's round trip would hide when the deadline fired.
 */
function instantDatabase(): Kysely<Database> {
  const connection: DatabaseConnection = {
    executeQuery: async <R>() => ({ rows: [{ dedupe_key: 'k' }] as R[] }),
    streamQuery: () => {
      throw new Error('not streamed')
    },
  }
  return new Kysely<Database>({
    dialect: {
      createAdapter: () => new PostgresAdapter(),
      // Kysely's driver that sends nothing, with a connection that answers the one row
      createDriver: () =>
        Object.assign(new DummyDriver(), { acquireConnection: async () => connection }),
      createIntrospector: (db) => new PostgresIntrospector(db),
      createQueryCompiler: () => new PostgresQueryCompiler(),
    },
  })
}

it('a renewal tick run late does not delay the deadline behind it by the renewal interval', async () => {
  // The event loop is busy for 300 ms from 190 ms on; the renewals are due every 200 ms, the
  // deadline at 300. The tick due at 200 runs when the loop is free (B + 300, B when the busy
  // callback began) and must arm the deadline for 300 — past: at once, due at about B + 301 — not
  // 100 ms after itself (B + 400). Asserted as an order of timers, not a duration: a sentinel
  // armed as the busy stretch ends, due at B + 350, sits between the two. Node runs due timers in
  // the order of their due times, so however late a loaded machine runs them the deadline comes
  // first, and the sentinel first if the deadline were armed behind the tick.
  const logger = createLogger({ level: 'error' })
  const claimedAt = systemClock.now()
  const hold = { claimedAt, clock: systemClock, leaseMs: 800, logger }
  const order: string[] = []
  let sentinel: Promise<void> | undefined
  setTimeout(() => {
    const until = performance.now() + 300
    while (performance.now() < until) {}
    sentinel = new Promise<void>((resolve) =>
      setTimeout(() => {
        order.push('sentinel (busy end + 50 ms)')
        resolve()
      }, 50),
    )
  }, 190)
  const busy = await holdClaim(
    instantDatabase(),
    { appid: 'bridge:lease-busy', dedupeKey: 'busy' },
    hold,
    () => sleep(2000).then(() => 'late'),
    systemClock.now().getTime() + 300,
  )
  order.push('deadline (300 ms)')
  await sentinel
  expect(busy).toBe(PAST_DEADLINE)
  expect(order).toEqual(['deadline (300 ms)', 'sentinel (busy end + 50 ms)'])
  // the late tick renewed the claim on its way (the instant database's one row): moved from where
  // it was made, by the busy stretch at least
  expect(hold.claimedAt.getTime()).toBeGreaterThanOrEqual(claimedAt.getTime() + 300)
})
