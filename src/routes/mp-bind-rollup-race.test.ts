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
 */
import type { Hono } from 'hono'
import { type Kysely, sql } from 'kysely'
import { beforeAll, expect, it } from 'vitest'
import { createRouter } from '../../handlers/index.js'
import { paidOrder } from '../../test/analytics-fixtures.js'
import { forEachDatabase } from '../../test/databases.js'
import { waitingForLock } from '../../test/held-transaction.js'
import { SAFE_ACCOUNT, testConfig } from '../../test/server.js'
import { ACTIVITY } from '../analytics/facts.js'
import { buildDay } from '../analytics/rollup.js'
import { dayText } from '../analytics/series.js'
import { createApp } from '../app.js'
import { issueBindingCode } from '../community/identities.js'
import type { Database } from '../db/schema.js'
import { silentLogger } from '../logger.js'
import { signSession } from '../shop/mp-auth.js'
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
})
