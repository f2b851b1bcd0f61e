/**
 * A stock read live (followers in total, points outstanding and frozen) is chained from the last
 * built day within `STOCK_CHAIN_DAYS` — not only from the day before —, so a read of today while
 * yesterday is not built yet (every night until the 04:00 build, or after a failed one) makes no
 * pass over the members; and chained or not, it is the exact figure of the day.
 */
import fc from 'fast-check'
import type { Insertable, Kysely } from 'kysely'
import { beforeAll, expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { analyzedPlan, rowsFrom, watchedStatements } from '../../test/plan-rows.js'
import { addDays } from '../community/community-time.js'
import type { Database, FollowEventsTable, PointsLedgerTable } from '../db/schema.js'
import { STOCK_CHAIN_DAYS } from './families/day-scope.js'
import { STOCKS as ALL_STOCKS, FAMILIES } from './families/index.js'
import { buildDay, computeDay } from './rollup.js'
import { liveToday } from './series.js'

const TZ = 'Asia/Shanghai'
const D0 = '2026-10-01'
/** Twelve community days from D0; the last is today. */
const DAYS = Array.from({ length: 12 }, (_, i) => addDays(D0, i))
const TODAY = DAYS.at(-1)!
const NOW = new Date(`${TODAY}T10:00:00+08:00`)
const STOCKS = Object.keys(ALL_STOCKS)

forEachDatabase('stocks read live', (get, dbName) => {
  const A = `wx${dbName === 'pglite' ? 'g' : 'h'}stock00000001`
  let db: Kysely<Database>

  /** The stocks of `day`, read live or exact (the build's form). */
  const stocks = async (day: string, live: boolean) => {
    const figures = await computeDay(
      db,
      { appid: A, day, timeZone: TZ, live },
      { families: ['followers', 'points'] },
    )
    return STOCKS.map((m) => figures.find((f) => f.metric === m && f.dim === '')?.value)
  }
  /** Rows of `members` the live stocks' statements of `day` read. */
  const membersRead = async (day: string) => {
    let rows = 0
    for (const family of ['followers', 'points'])
      rows += rowsFrom(
        await analyzedPlan(
          db,
          FAMILIES[family]!.query({ appid: A, day, timeZone: TZ, live: true, dau: 0 }),
        ),
        'members',
      )
    return rows
  }
  /** Only `days` built (their rollup as the nightly job writes it). */
  const builtOnly = async (days: readonly string[]) => {
    await db.deleteFrom('analytics_daily').where('appid', '=', A).execute()
    await db.deleteFrom('analytics_days').where('appid', '=', A).execute()
    for (const day of days)
      await buildDay(db, { appid: A, day, timeZone: TZ, now: NOW, today: TODAY })
  }

  beforeAll(async () => {
    db = get().db
    // 40 members following on D0; each day some unfollow or come back, earn, spend and have
    // purchase points frozen or released — the members' state is the sum of it all.
    const ids = (
      await db
        .insertInto('members')
        .values(
          Array.from({ length: 40 }, (_, i) => ({
            appid: A,
            openid: `o_stock_${i}`,
            first_seen_at: new Date(`${D0}T08:00:00+08:00`),
          })),
        )
        .returning('id')
        .execute()
    ).map((r) => Number(r.id))
    const subscribed = new Map<number, boolean>()
    const balance = new Map<number, { available: number; frozen: number }>()
    const follows: Insertable<FollowEventsTable>[] = []
    const ledger: Insertable<PointsLedgerTable>[] = []
    let key = 0
    const entry = (member: number, day: string, delta: number, state: 'available' | 'frozen') => {
      const b = balance.get(member) ?? { available: 0, frozen: 0 }
      b[state] += delta
      balance.set(member, b)
      ledger.push({
        appid: A,
        member_id: member,
        delta,
        rule: delta > 0 ? 'grant' : 'deduct',
        reference: null,
        idempotency_key: `stock-${key++}`,
        balance_after: b[state],
        day,
        created_at: new Date(`${day}T09:00:00+08:00`),
        expires_at: null,
        state,
      })
    }
    const follow = (member: number, day: string, kind: 'follow' | 'unfollow') => {
      subscribed.set(member, kind === 'follow')
      follows.push({
        appid: A,
        member_id: member,
        at: new Date(`${day}T09:00:00+08:00`),
        day,
        kind,
        scene: null,
        source: 'organic',
      })
    }
    DAYS.forEach((day, d) => {
      ids.forEach((m, i) => {
        if (d === 0) follow(m, day, 'follow')
        else if ((i * 7 + d) % 11 === 0) follow(m, day, subscribed.get(m) ? 'unfollow' : 'follow')
        if ((i + d) % 3 === 0) entry(m, day, 5 + ((i * d) % 13), 'available')
        if ((i + d) % 5 === 0 && (balance.get(m)?.available ?? 0) > 4)
          entry(m, day, -4, 'available')
        if ((i + 2 * d) % 7 === 0) entry(m, day, 9, 'frozen')
        else if ((i + d) % 4 === 0 && (balance.get(m)?.frozen ?? 0) >= 9) {
          entry(m, day, -9, 'frozen')
          entry(m, day, 9, 'available')
        }
      })
    })
    await db.insertInto('follow_events').values(follows).execute()
    await db.insertInto('points_ledger').values(ledger).execute()
    for (const m of ids)
      await db
        .updateTable('members')
        .set({
          subscribed: subscribed.get(m)!,
          points_balance: balance.get(m)?.available ?? 0,
          points_frozen: balance.get(m)?.frozen ?? 0,
        })
        .where('id', '=', m)
        .execute()
  })

  it('chains today from the day before yesterday while yesterday is not built: no pass over the members', async () => {
    const yesterday = addDays(TODAY, -1)
    await builtOnly([addDays(TODAY, -3), addDays(TODAY, -2)])
    for (const day of [yesterday, TODAY]) {
      expect(await stocks(day, true), day).toEqual(await stocks(day, false))
      expect(await membersRead(day), day).toBe(0)
    }
    // no further back than STOCK_CHAIN_DAYS (a build failed longer): the exact form, a pass over
    // the members — a week of changes read by index cost more than the pass
    expect(STOCK_CHAIN_DAYS).toBe(2)
    await builtOnly([addDays(TODAY, -3)])
    expect(await membersRead(yesterday)).toBe(0)
    expect(await stocks(TODAY, true)).toEqual(await stocks(TODAY, false))
    expect(await membersRead(TODAY)).toBeGreaterThanOrEqual(40)
  })

  it('reads the stocks of several days live in one pass over the members on a new install', async () => {
    // a new install — or a day built without the stocks' figures (before they existed): the
    // chain has nothing to read from
    await builtOnly([])
    await db
      .insertInto('analytics_days')
      .values({ appid: A, day: addDays(TODAY, -2), built_at: NOW })
      .execute()
    const watched = watchedStatements(db)
    /** Rows of `members` the statements made since the last call read. */
    const membersSince = async () => {
      let rows = 0
      for (const q of watched.seen.splice(0)) rows += rowsFrom(await analyzedPlan(db, q), 'members')
      return rows
    }
    // the overview's three days, read at once by one reader (its clock still at first)
    let t = 0
    const live = liveToday(watched.db, 5000, undefined, () => t)
    const days = [addDays(TODAY, -7), addDays(TODAY, -1), TODAY]
    const read = await Promise.all(days.map((day) => live(A, day, TZ, ['followers', 'points'])))
    for (const [i, figures] of read.entries())
      expect(
        STOCKS.map((m) => figures.find((f) => f.metric === m && f.dim === '')?.value),
        days[i],
      ).toEqual(await stocks(days[i]!, false))
    // the 40 members read once (each day's families passed over them three times: 360 rows)
    expect(await membersSince()).toBe(40)
    // a day read within half the reader's 5 s shares that read; one read later has its own
    t = 2_400
    await live(A, addDays(TODAY, -3), TZ, ['followers'])
    expect(await membersSince()).toBe(0)
    t = 2_500
    await live(A, addDays(TODAY, -4), TZ, ['followers'])
    expect(await membersSince()).toBe(40)
  })

  it('reads the exact stocks of any day live, whichever days are built', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.subarray(DAYS.slice(0, -1)),
        fc.integer({ min: 1, max: DAYS.length - 1 }),
        async (built, d) => {
          const day = DAYS[d]!
          await builtOnly(built.filter((b) => b < day))
          expect(await stocks(day, true)).toEqual(await stocks(day, false))
        },
      ),
      { numRuns: 12 },
    )
  })
})
