/**
 * A 绑定 during a build of the analytics day it merges (src/shop/member-moves.ts moving the
 * mini-program member's `member_days` into the follower's, src/analytics/rollup.ts `buildDay`
 * writing the same day's rows): both must finish — the 绑定 answers 200, never a 5xx — and the
 * day ends as if one had come entirely before the other.
 *
 * The interleaving that deadlocked is made deterministic on PostgreSQL with a third connection:
 * it holds `activity_signups` (the build's third pass reads it) so the build waits there with the
 * buyer's row of the day locked (its purchase pass); the 绑定 then runs; then the table is let
 * go, and the build goes on to the follower's row of the day (the follower signed up that day).
 * PGlite has one connection, where nothing waits and no deadlock can happen: skipped there.
 *
 * And a 绑定 waiting for a build waits holding nothing (facts.ts `lockActivityDays`: the gate
 * before its first row lock): the members' rows and the user's link stay free for their pushes,
 * check-ins and orders until the build ends.
 */
import type { Hono } from 'hono'
import { type Kysely, sql } from 'kysely'
import { beforeAll, expect, it } from 'vitest'
import { createRouter } from '../../handlers/index.js'
import { paidOrder } from '../../test/analytics-fixtures.js'
import { forEachDatabase } from '../../test/databases.js'
import { holdTransaction, waitingForLock } from '../../test/held-transaction.js'
import { SAFE_ACCOUNT, testConfig } from '../../test/server.js'
import { ACTIVITY, lockActivityDays } from '../analytics/facts.js'
import { buildDay } from '../analytics/rollup.js'
import { dayText } from '../analytics/series.js'
import { createApp } from '../app.js'
import { issueBindingCode } from '../community/identities.js'
import type { Database } from '../db/schema.js'
import { silentLogger } from '../logger.js'
import { signSession } from '../shop/mp-auth.js'
import { linkMiniProgramUser } from '../shop/mp-link.js'
import type { ShopRouteOptions } from './shop.js'

const APPID = SAFE_ACCOUNT.appid
const MP_APPID = 'wxmprollup000000001'
const SECRET = 'mp-rollup-race-session-secret-01234'
const TZ = 'Asia/Shanghai'

forEachDatabase('a 绑定 during a build of the day it merges', (get, name) => {
  let app: Hono
  // 10:00 in Shanghai on 12-03: the day rebuilt is yesterday
  const now = new Date('2026-12-03T02:00:00Z')
  const day = '2026-12-02'
  const today = '2026-12-03'

  beforeAll(() => {
    const shop = {
      settings: { appid: APPID, mpAppid: MP_APPID },
      gateway: { mchid: '1900000001' },
      sessionSecret: SECRET,
    } as unknown as ShopRouteOptions['shop']
    app = createApp({
      config: testConfig(),
      db: get().db,
      router: createRouter(),
      logger: silentLogger,
      clock: { now: () => now },
      shop,
    })
  })

  /** Another connection holds what `lock` locks in its transaction until `release()` (or 10 s). */
  /**
   * A buyer (mini-program user o_mp_gate_<n>) and a follower with a binding code; a build of a day
   * of another account (`other`) holding its gate; and a write of the buyer, uncommitted, holding
   * their link and adding their first day in `other` — so a 绑定 reads no day there before it
   * locks, and finds it only under its locks once `write` commits.
   */
  async function lateAccount(n: number) {
    const db = get().db
    const other = `wxbindgateother000${n}`
    const openid = `o_mp_gate_${n}`
    const buyer = await db
      .insertInto('members')
      .values({ appid: MP_APPID, openid, first_seen_at: now })
      .returning('id')
      .executeTakeFirstOrThrow()
    await db
      .insertInto('mp_users')
      .values({ appid: MP_APPID, openid, member_id: buyer.id, created_at: now })
      .execute()
    const follower = await db
      .insertInto('members')
      .values({
        appid: `wxbindgatefirst000${n}`,
        openid: `o_oa_gate_${n}`,
        first_seen_at: now,
        subscribed: true,
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    const { code } = await issueBindingCode(db, follower.id, now)
    const build = await holdTransaction(get().open({ max: 1 }), (trx) =>
      lockActivityDays(trx, other, 'shared'),
    )
    const write = await holdTransaction(get().open({ max: 1 }), async (trx) => {
      await trx
        .selectFrom('mp_users')
        .select('member_id')
        .where('appid', '=', MP_APPID)
        .where('openid', '=', openid)
        .forShare()
        .execute()
      await trx
        .insertInto('member_days')
        .values({ appid: other, day, member_id: buyer.id, kinds: ACTIVITY.message })
        .execute()
    })
    return { buyer, follower, code, other, build, write }
  }

  async function hold(lock: (trx: Kysely<Database>) => Promise<unknown>) {
    let release = () => {}
    const released = new Promise<void>((resolve) => (release = resolve))
    let locked = () => {}
    const isLocked = new Promise<void>((resolve) => (locked = resolve))
    const done = get()
      .open({ max: 1 })
      .transaction()
      .execute(async (trx) => {
        await lock(trx)
        locked()
        await Promise.race([released, new Promise((resolve) => setTimeout(resolve, 10_000))])
      })
    await isLocked
    return { release, done }
  }

  it.skipIf(name === 'pglite')(
    'the 绑定 and the rebuild both finish; the buyer’s day is the follower’s (PostgreSQL only: PGlite has one connection, nothing waits)',
    async () => {
      const db = get().db
      const buyer = await db
        .insertInto('members')
        .values({ appid: MP_APPID, openid: 'o_mp_rollup_1', first_seen_at: now })
        .returning('id')
        .executeTakeFirstOrThrow()
      await db
        .insertInto('mp_users')
        .values({ appid: MP_APPID, openid: 'o_mp_rollup_1', member_id: buyer.id, created_at: now })
        .execute()
      const follower = await db
        .insertInto('members')
        .values({ appid: APPID, openid: 'o_oa_rollup_1', first_seen_at: now, subscribed: true })
        .returning('id')
        .executeTakeFirstOrThrow()
      // the buyer paid in the mini program at noon; the follower wrote and signed up that day
      await paidOrder(db, APPID, {
        memberId: buyer.id,
        fen: 990,
        paidAt: new Date('2026-12-02T04:00:00Z'),
        no: 'rollup-race-1',
      })
      await db
        .insertInto('member_days')
        .values({ appid: APPID, day, member_id: follower.id, kinds: ACTIVITY.message })
        .execute()
      const activity = await db
        .insertInto('activities')
        .values({
          appid: APPID,
          key: 'rollup-race',
          name: 'rollup race',
          description: '',
          cron: '0 9 * * *',
          cadence: 'daily',
          points: 0,
          capacity: null,
          status: 'open',
          created_at: now,
        })
        .returning('id')
        .executeTakeFirstOrThrow()
      await db
        .insertInto('activity_signups')
        .values({
          activity_id: activity.id,
          period: day,
          member_id: follower.id,
          status: 'confirmed',
          created_at: new Date('2026-12-02T05:00:00Z'),
          updated_at: new Date('2026-12-02T05:00:00Z'),
        })
        .execute()
      const build = () => buildDay(db, { appid: APPID, day, timeZone: TZ, now, today })
      // the nightly build: the buyer's purchase and the follower's sign-up are on the day
      await build()

      const token = await signSession(SECRET, {
        memberId: buyer.id,
        openid: 'o_mp_rollup_1',
        expiresAt: new Date(now.getTime() + 3600_000),
      })
      const { code } = await issueBindingCode(db, follower.id, now)
      const settle = <T>(p: Promise<T>) => p.catch((error: Error) => error)

      // an operator rebuilds the day (POST …/analytics/rebuild) as the buyer enters the code
      const holder = await hold((trx) =>
        sql`lock table activity_signups in access exclusive mode`.execute(trx),
      )
      const rebuilt = settle(build())
      await waitingForLock(db, '%from activity_signups su join activities a%')
      const bound = settle(
        Promise.resolve(
          app.request('/api/mp/bind', {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
            body: JSON.stringify({ code }),
          }),
        ),
      )
      // the 绑定 waits for the build: for the buyer's row of the day, or for the build to end
      await waitingForLock(db, 'delete from "member_days"%', '%pg_advisory_xact_lock%')
      holder.release()
      await holder.done

      const res = await bound
      if (res instanceof Error) throw res
      expect([res.status, ((await res.json()) as { member?: { id: number } }).member?.id]).toEqual([
        200,
        follower.id,
      ])
      const figures = await rebuilt
      if (figures instanceof Error) throw figures
      expect(figures.figures).toBeGreaterThan(0)
      // the buyer's day merged into the follower's: one active member, with all three kinds
      const days = async () =>
        (
          await db
            .selectFrom('member_days')
            .select(['day', 'member_id', 'kinds'])
            .where('member_id', 'in', [buyer.id, follower.id])
            .execute()
        ).map((r) => ({ ...r, day: dayText(r.day) }))
      const merged = [
        {
          day,
          member_id: follower.id,
          kinds: ACTIVITY.message | ACTIVITY.purchase | ACTIVITY.signup,
        },
      ]
      expect(await days()).toEqual(merged)
      // and a build after the 绑定 agrees
      await build()
      expect(await days()).toEqual(merged)
    },
    30_000,
  )

  it.skipIf(name === 'pglite')(
    'a 绑定 waiting for a build of its account holds no row: its members and link stay free (PostgreSQL only)',
    async () => {
      const db = get().db
      // an account of its own: no other test's build holds its gate
      const appid = 'wxbindgatefirst0001'
      const buyer = await db
        .insertInto('members')
        .values({ appid: MP_APPID, openid: 'o_mp_gate_1', first_seen_at: now })
        .returning('id')
        .executeTakeFirstOrThrow()
      await db
        .insertInto('mp_users')
        .values({ appid: MP_APPID, openid: 'o_mp_gate_1', member_id: buyer.id, created_at: now })
        .execute()
      const follower = await db
        .insertInto('members')
        .values({ appid, openid: 'o_oa_gate_1', first_seen_at: now, subscribed: true })
        .returning('id')
        .executeTakeFirstOrThrow()
      await paidOrder(db, appid, {
        memberId: buyer.id,
        fen: 990,
        paidAt: new Date('2026-12-02T04:00:00Z'),
        no: 'bind-gate-first-1',
      })
      await db
        .insertInto('member_days')
        .values({ appid, day, member_id: buyer.id, kinds: ACTIVITY.purchase })
        .execute()
      const token = await signSession(SECRET, {
        memberId: buyer.id,
        openid: 'o_mp_gate_1',
        expiresAt: new Date(now.getTime() + 3600_000),
      })
      const { code } = await issueBindingCode(db, follower.id, now)

      // a build of the account is running (it holds the gate shared until it commits)
      const build = await holdTransaction(get().open({ max: 1 }), (trx) =>
        lockActivityDays(trx, appid, 'shared'),
      )
      const bound = Promise.resolve(
        app.request('/api/mp/bind', {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify({ code }),
        }),
      ).catch((error: Error) => error)
      await waitingForLock(db, '%pg_advisory_xact_lock(%')
      // meanwhile a push or an order of either member locks their rows, and the user's link
      const free = await db
        .transaction()
        .execute(async (trx) => {
          const members = await trx
            .selectFrom('members')
            .select('id')
            .where('id', 'in', [buyer.id, follower.id])
            .orderBy('id')
            .forUpdate()
            .noWait()
            .execute()
          const link = await trx
            .selectFrom('mp_users')
            .select('member_id')
            .where('appid', '=', MP_APPID)
            .where('openid', '=', 'o_mp_gate_1')
            .forUpdate()
            .noWait()
            .execute()
          return { members: members.map((m) => m.id), link: link.map((l) => l.member_id) }
        })
        .catch((error: Error) => error.message)
      build.commit()
      await build.done
      expect(free).toEqual({ members: [buyer.id, follower.id], link: [buyer.id] })

      // the build ended: the 绑定 goes on, the order and the day are the follower's
      const res = await bound
      if (res instanceof Error) throw res
      expect([res.status, ((await res.json()) as { member?: { id: number } }).member?.id]).toEqual([
        200,
        follower.id,
      ])
      const orders = await db
        .selectFrom('orders')
        .select('member_id')
        .where('out_trade_no', '=', 'bind-gate-first-1')
        .execute()
      expect(orders).toEqual([{ member_id: follower.id }])
      const days = await db
        .selectFrom('member_days')
        .select(['member_id', 'kinds'])
        .where('member_id', 'in', [buyer.id, follower.id])
        .execute()
      expect(days).toEqual([{ member_id: follower.id, kinds: ACTIVITY.purchase }])
    },
    30_000,
  )

  it.skipIf(name === 'pglite')(
    'a build writing the follower’s first row of the day while a 绑定 waits does not deadlock (PostgreSQL only)',
    async () => {
      const db = get().db
      const appid = 'wxbindgatefirst0002'
      const at = new Date('2026-12-02T04:00:00Z')
      // the follower's id before the buyer's: the 绑定 locks the follower's row first
      const follower = await db
        .insertInto('members')
        .values({ appid, openid: 'o_oa_gate_2', first_seen_at: now, subscribed: true })
        .returning('id')
        .executeTakeFirstOrThrow()
      const buyer = await db
        .insertInto('members')
        .values({ appid: MP_APPID, openid: 'o_mp_gate_2', first_seen_at: now })
        .returning('id')
        .executeTakeFirstOrThrow()
      await db
        .insertInto('mp_users')
        .values({ appid: MP_APPID, openid: 'o_mp_gate_2', member_id: buyer.id, created_at: now })
        .execute()
      await paidOrder(db, appid, { memberId: buyer.id, fen: 990, paidAt: at, no: 'bind-gate-2' })
      const activity = await db
        .insertInto('activities')
        .values({
          appid,
          key: 'bind-gate',
          name: 'bind gate',
          description: '',
          cron: '0 9 * * *',
          cadence: 'daily',
          points: 0,
          capacity: null,
          status: 'open',
          created_at: now,
        })
        .returning('id')
        .executeTakeFirstOrThrow()
      // the follower signed up that day, and has no row of the day yet (the build inserts it)
      await db
        .insertInto('activity_signups')
        .values({
          activity_id: activity.id,
          period: day,
          member_id: follower.id,
          status: 'confirmed',
          created_at: at,
          updated_at: at,
        })
        .execute()
      const token = await signSession(SECRET, {
        memberId: buyer.id,
        openid: 'o_mp_gate_2',
        expiresAt: new Date(now.getTime() + 3600_000),
      })
      const { code } = await issueBindingCode(db, follower.id, now)
      const settle = <T>(p: Promise<T>) => p.catch((error: Error) => error)

      // the build stops at the sign-ups, the buyer's new row of the day written (its foreign key
      // holds the buyer's member row `for key share`); the 绑定 comes
      const holder = await hold((trx) =>
        sql`lock table activity_signups in access exclusive mode`.execute(trx),
      )
      const built = settle(buildDay(db, { appid, day, timeZone: TZ, now, today }))
      await waitingForLock(db, '%from activity_signups su join activities a%')
      const bound = settle(
        Promise.resolve(
          app.request('/api/mp/bind', {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
            body: JSON.stringify({ code }),
          }),
        ),
      )
      await waitingForLock(db, '%pg_advisory_xact_lock(%', 'select "id", "appid" from "members"%')
      // the build goes on to the follower's new row
      holder.release()
      await holder.done

      const figures = await built
      if (figures instanceof Error) throw figures
      const res = await bound
      if (res instanceof Error) throw res
      expect([res.status, ((await res.json()) as { member?: { id: number } }).member?.id]).toEqual([
        200,
        follower.id,
      ])
      const days = await db
        .selectFrom('member_days')
        .select(['member_id', 'kinds'])
        .where('member_id', 'in', [buyer.id, follower.id])
        .execute()
      expect(days).toEqual([{ member_id: follower.id, kinds: ACTIVITY.purchase | ACTIVITY.signup }])
    },
    30_000,
  )

  it.skipIf(name === 'pglite')(
    'an account the 绑定 finds only under its row locks, its gate held by a build: it starts over and waits holding nothing (PostgreSQL only)',
    async () => {
      const db = get().db
      const { buyer, follower, code, other, build, write } = await lateAccount(3)
      const token = await signSession(SECRET, {
        memberId: buyer.id,
        openid: 'o_mp_gate_3',
        expiresAt: new Date(now.getTime() + 3600_000),
      })
      const bound = Promise.resolve(
        app.request('/api/mp/bind', {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify({ code }),
        }),
      ).catch((error: Error) => error)
      await waitingForLock(db, 'select "member_id" from "mp_users"%for update')
      write.commit()
      await write.done
      // the 绑定 finds the day in `other` with its rows locked, and waits for that build
      await waitingForLock(db, '%pg_advisory_xact_lock(%')
      const free = await db
        .transaction()
        .execute(async (trx) => {
          const members = await trx
            .selectFrom('members')
            .select('id')
            .where('id', 'in', [buyer.id, follower.id])
            .orderBy('id')
            .forUpdate()
            .noWait()
            .execute()
          return members.map((m) => m.id)
        })
        .catch((error: Error) => error.message)
      build.commit()
      await build.done
      expect(free).toEqual([buyer.id, follower.id])

      const res = await bound
      if (res instanceof Error) throw res
      expect([res.status, ((await res.json()) as { member?: { id: number } }).member?.id]).toEqual([
        200,
        follower.id,
      ])
      const days = await db
        .selectFrom('member_days')
        .select(['appid', 'member_id', 'kinds'])
        .where('member_id', 'in', [buyer.id, follower.id])
        .execute()
      expect(days).toEqual([{ appid: other, member_id: follower.id, kinds: ACTIVITY.message }])
    },
    30_000,
  )

  it.skipIf(name === 'pglite')(
    'a 绑定 out of runs while builds hold the gates it finds late answers busy, having changed nothing (PostgreSQL only)',
    async () => {
      const db = get().db
      // as in the test before: a build of `other` holds its gate throughout
      const { buyer, code, build, write } = await lateAccount(4)
      const linking = linkMiniProgramUser(db, {
        mpAppid: MP_APPID,
        openid: 'o_mp_gate_4',
        code,
        now,
        timeZone: 'Asia/Shanghai',
        attempts: 1, // its one run used
      })
      await waitingForLock(db, 'select "member_id" from "mp_users"%for update')
      write.commit()
      await write.done
      expect(await linking).toEqual({ status: 'busy' })
      build.commit()
      await build.done
      // nothing moved: the code still unused, the buyer unlinked from the follower
      const link = await db
        .selectFrom('mp_users')
        .select('member_id')
        .where('openid', '=', 'o_mp_gate_4')
        .executeTakeFirstOrThrow()
      expect(link.member_id).toBe(buyer.id)
      const unused = await db
        .selectFrom('binding_codes')
        .select('used_at')
        .where('code', '=', code)
        .executeTakeFirstOrThrow()
      expect(unused.used_at).toBeNull()
    },
    30_000,
  )
})
