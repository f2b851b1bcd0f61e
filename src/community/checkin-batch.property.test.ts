/**
 * The set-based check-in batch (`quanzi_checkin_batch`, migrations/0093) against the per-row
 * function it stands for: for any batch — members at any balance, lifetime and level, checked in
 * today already or not, with or without yesterday's streak, their award keys used before or not,
 * earlier awards towards the rule's cap, a pending invite or none; the `checkin` rule missing,
 * disabled, capped by day, week or ever, overridden per account; any streak bonuses; two accounts;
 * a member named twice or monthly rewards (the fallback) — it answers every row as
 * `quanzi_checkin_day` answered it (the app's batched statement before), and leaves the same
 * members, ledger entries, lots and check-in rows. Each side runs in a transaction rolled back.
 */
import fc from 'fast-check'
import { type Kysely, sql } from 'kysely'
import { expect, it } from 'vitest'
import { databaseNames, forEachDatabase } from '../../test/databases.js'
import { holdTransaction, stillPending, waitingForLock } from '../../test/held-transaction.js'
import type { Database } from '../db/schema.js'
import { type CheckinCall, type CheckinRow, checkinBatchStatement } from './checkins.js'
import { addDays, weekStart } from './community-time.js'
import { LEVELS } from './levels.js'
import { LEVELS_JSON } from './points-ledger.js'

const DAY = '2026-12-07'
const NOW = new Date('2026-12-07T02:00:00Z')
const APPIDS = ['wx_batch_a', 'wx_batch_b'] as const

const rule = fc.option(
  fc.record({
    points: fc.integer({ min: 1, max: 9 }),
    enabled: fc.boolean(),
    cap_count: fc.option(fc.integer({ min: 0, max: 2 })),
    cap_period: fc.option(fc.constantFrom('day', 'week', 'ever')),
  }),
)
const member = fc.record({
  appid: fc.constantFrom(...APPIDS),
  balance: fc.integer({ min: 0, max: 25_000 }),
  /** Anywhere, or just under or at a level's threshold (an award crosses it). */
  lifetime: fc.oneof(
    fc.integer({ min: 0, max: 25_000 }),
    fc
      .constantFrom(...LEVELS.map((l) => l.min))
      .chain((min) => fc.integer({ min: Math.max(0, min - 60), max: min + 3 })),
  ),
  level: fc.constantFrom(...LEVELS.map((l) => l.key), 'unknown'),
  /** The streak of today's check-in, when made already. */
  today: fc.option(fc.integer({ min: 1, max: 9 })),
  /** The streak of yesterday's check-in, when made. */
  yesterday: fc.option(fc.integer({ min: 1, max: 9 })),
  /** Today's award keys used before (`checkin:…`, `streak:…`). */
  used: fc.subarray(['checkin', 'streak_bonus'] as const),
  /** Other `checkin` entries, days back (towards the rule's cap). */
  earlier: fc.array(fc.constantFrom(0, 3, 20), { maxLength: 2 }),
  invite: fc.constantFrom(null, 'pending' as const, 'qualified' as const),
})
/** True now and then (one time in eight). */
const seldom = fc.oneof(
  { arbitrary: fc.constant(false), weight: 7 },
  { arbitrary: fc.constant(true), weight: 1 },
)
const bonusTable = fc.dictionary(
  fc.integer({ min: 1, max: 10 }).map(String),
  fc.integer({ min: 0, max: 30 }),
  { maxKeys: 4 },
)
const scenario = fc.array(member, { minLength: 1, maxLength: 6 }).chain((members) =>
  fc.record({
    members: fc.constant(members),
    order: fc.shuffledSubarray(
      members.map((_, i) => i),
      { minLength: 1 },
    ),
    // now and then the fallback: a member named twice, monthly rewards
    twice: seldom,
    rules: fc.record({ '*': rule, wx_batch_a: rule, wx_batch_b: rule }),
    bonuses: bonusTable,
    /** Each call's own: its time, its day (today, or now and then yesterday), its bonuses, its
     * account (now and then not its member's). Past the list, the scenario's. */
    calls: fc.array(
      fc.record({
        minutes: fc.integer({ min: 0, max: 600 }),
        yesterday: seldom,
        bonuses: fc.option(bonusTable),
        otherAccount: seldom,
      }),
      { maxLength: 7 },
    ),
    monthly: seldom,
  }),
)
type Scenario = typeof scenario extends fc.Arbitrary<infer T> ? T : never

/** Thrown to roll a side's transaction back with what it saw. */
class Seen {
  constructor(readonly value: unknown) {}
}

/** Seeds the scenario in `trx`; the batch's member ids, in call order, and each id's index. */
async function seed(trx: Kysely<Database>, s: Scenario) {
  await sql`delete from point_rules where rule = 'checkin'`.execute(trx)
  for (const [appid, r] of Object.entries(s.rules))
    if (r)
      await trx
        .insertInto('point_rules')
        .values({ appid, rule: 'checkin', ...r })
        .execute()
  const inviter = await trx
    .insertInto('members')
    .values({ appid: APPIDS[0], openid: 'o_batch_inviter', first_seen_at: NOW })
    .returning('id')
    .executeTakeFirstOrThrow()
  const ids: number[] = []
  for (const [i, m] of s.members.entries()) {
    const { id } = await trx
      .insertInto('members')
      .values({
        appid: m.appid,
        openid: `o_batch_${i}`,
        first_seen_at: NOW,
        points_balance: m.balance,
        points_lifetime: m.lifetime,
        level: m.level,
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    ids.push(Number(id))
    const checkin = (day: string, streak: number) =>
      trx
        .insertInto('checkins')
        .values({ member_id: id, day, appid: m.appid, streak, points: 0, created_at: NOW })
        .execute()
    if (m.today !== null) await checkin(DAY, m.today)
    if (m.yesterday !== null) await checkin(addDays(DAY, -1), m.yesterday)
    const entry = (rule: string, key: string, day: string) =>
      sql`insert into points_ledger (appid, member_id, delta, rule, idempotency_key,
          balance_after, earned, day, created_at)
        values (${m.appid}, ${id}, 1, ${rule}, ${key}, 1, 1, ${day}::date, ${NOW})`.execute(trx)
    for (const used of m.used)
      await entry(used, `${used === 'checkin' ? 'checkin' : 'streak'}:${id}:${DAY}`, DAY)
    for (const [k, back] of m.earlier.entries())
      await entry('checkin', `earlier:${id}:${k}`, addDays(DAY, -back))
    if (m.invite !== null)
      await trx
        .insertInto('invites')
        .values({
          appid: m.appid,
          invitee_key: `batch:${id}`,
          invitee_member_id: id,
          inviter_member_id: inviter.id,
          source: 'oa_qr',
          status: m.invite,
          created_at: NOW,
          qualified_at: m.invite === 'qualified' ? NOW : null,
        })
        .execute()
  }
  const order = s.twice ? [...s.order, s.order[0]!] : s.order
  return { batch: order.map((i) => ids[i]!), index: new Map(ids.map((id, i) => [id, i])) }
}

/** Runs the scenario's batch `how`; its answers and the rows it leaves, ids made indexes. */
async function run(db: Kysely<Database>, s: Scenario, how: 'rows' | 'batch'): Promise<unknown> {
  try {
    await db.transaction().execute(async (trx) => {
      const { batch, index } = await seed(trx, s)
      const calls = batch.map((id, i) => {
        const own = s.calls[i]
        const account = s.members[index.get(id)!]!.appid
        const day = own?.yesterday ? addDays(DAY, -1) : DAY
        return {
          appid: own?.otherAccount ? APPIDS.find((a) => a !== account)! : account,
          now: new Date(NOW.getTime() + (own?.minutes ?? 0) * 60_000).toISOString(),
          day,
          week: weekStart(day),
          bonuses: JSON.stringify(own?.bonuses ?? s.bonuses),
        }
      })
      const column = <K extends keyof (typeof calls)[number]>(k: K) => calls.map((c) => c[k])
      const appids = column('appid')
      const monthly = JSON.stringify(s.monthly ? { 1: 4 } : {})
      const n = batch.length
      const { rows: answers } =
        how === 'rows'
          ? // the app's batched statement before migration 0093: the function row by row
            await sql<{ result: unknown }>`select quanzi_checkin_day(v.appid, v.member_id,
                v.now, v.day, v.week, v.bonuses, ${monthly}::jsonb, ${LEVELS_JSON}::jsonb) as result
              from unnest(${appids}::text[], ${batch}::bigint[], ${column('now')}::timestamptz[],
                ${column('day')}::date[], ${column('week')}::date[], ${column('bonuses')}::jsonb[])
                with ordinality v(appid, member_id, now, day, week, bonuses, i)
              order by v.i`.execute(trx)
          : await sql<{ result: unknown }>`select outcome as result from quanzi_checkin_batch(
                ${appids}::text[], ${batch}::bigint[], ${column('now')}::timestamptz[],
                ${column('day')}::date[], ${column('week')}::date[], ${column('bonuses')}::jsonb[],
                ${Array(n).fill(monthly)}::jsonb[], ${LEVELS_JSON}::jsonb) order by n`.execute(trx)
      const who = (id: unknown) => index.get(Number(id)) ?? 'inviter'
      const key = (k: string) => k.replace(/:(\d+):/, (_, id: string) => `:${who(id)}:`)
      const members = await trx
        .selectFrom('members')
        .select(['id', 'points_balance', 'points_lifetime', 'level'])
        .orderBy('id')
        .execute()
      const { rows: ledger } = await sql<
        Record<string, unknown>
      >`select member_id, appid, rule, delta,
          reference, idempotency_key, balance_after, earned, day::text, state, created_at,
          expires_at from points_ledger order by member_id, id`.execute(trx)
      const { rows: lots } = await sql<Record<string, unknown>>`select member_id, appid, points,
          remaining, expired, earned_at, expires_at, notified
        from points_lots order by member_id, ledger_id`.execute(trx)
      const checkins = await trx
        .selectFrom('checkins')
        .select(['member_id', sql<string>`day::text`.as('day'), 'appid', 'streak', 'points'])
        .orderBy('member_id')
        .orderBy('day')
        .execute()
      throw new Seen({
        answers: answers.map((a) => a.result),
        members: members.map(({ id, ...m }) => ({ ...m, who: who(id) })),
        ledger: ledger.map((e) => ({
          ...e,
          member_id: who(e.member_id),
          idempotency_key: key(String(e.idempotency_key)),
        })),
        lots: lots.map((l) => ({ ...l, member_id: who(l.member_id) })),
        checkins: checkins.map((c) => ({ ...c, member_id: who(c.member_id) })),
      })
    })
  } catch (error) {
    if (error instanceof Seen) return error.value
    return { error: (error as Error).message }
  }
  throw new Error('the transaction was not rolled back')
}

forEachDatabase('the set-based check-in batch against the per-row function', (get) => {
  it('answers and writes what quanzi_checkin_day does row by row, for any batch', async () => {
    const { db } = get()
    let setBased = 0
    await fc.assert(
      fc.asyncProperty(scenario, async (s) => {
        if (!s.twice && !s.monthly) setBased++
        const rows = await run(db, s, 'rows')
        expect(rows).not.toHaveProperty('error')
        expect(await run(db, s, 'batch')).toEqual(rows)
      }),
      { numRuns: 150 },
    )
    // most runs go through the set-based statement, not the fallback
    expect(setBased).toBeGreaterThan(75)
  }, 180_000)
})

/** A check-in call of the app's batched statement for member `id`. */
const call = (id: number, openid: string): CheckinCall => ({
  appid: APPIDS[0],
  memberId: id,
  openid,
  now: NOW,
  day: DAY,
  settings: { streakBonuses: { 1: 3 } },
})

/** Members committed for the tests below: their ids. */
async function members(db: Kysely<Database>, prefix: string, n: number): Promise<number[]> {
  const rows = await db
    .insertInto('members')
    .values(
      Array.from({ length: n }, (_, i) => ({
        appid: APPIDS[0],
        openid: `${prefix}_${i}`,
        first_seen_at: NOW,
      })),
    )
    .returning('id')
    .execute()
  return rows.map((r) => Number(r.id))
}

forEachDatabase('the set-based check-in batch, its locks', (get) => {
  it("fails a batch that names a missing member with quanzi_checkin's error, writing nothing", async () => {
    const { db } = get()
    const [id] = await members(db, 'o_batch_missing', 1)
    await expect(
      checkinBatchStatement([call(id!, 'a'), call(987_654_321, 'b')]).execute(db),
    ).rejects.toThrow('quanzi: member 987654321 does not exist')
    const rows = await db
      .selectFrom('checkins')
      .select('day')
      .where('member_id', '=', id!)
      .execute()
    expect(rows).toEqual([])
  })
})

forEachDatabase(
  'the set-based check-in batch, a member another batch holds',
  (get) => {
    it('waits for the lock, then answers already from what that batch committed', async () => {
      const [first, shared, last] = await members(get().db, 'o_batch_wait', 3)
      const held = await holdTransaction(get().db, (trx) =>
        checkinBatchStatement([call(first!, 'a'), call(shared!, 'b')]).execute(trx),
      )
      const second = checkinBatchStatement([call(shared!, 'b'), call(last!, 'c')]).execute(
        get().open(),
      )
      // waits on the shared member's row (seen waiting for a lock, not merely slow)
      await waitingForLock(get().db, '%quanzi_checkin_batch%')
      expect(await stillPending(second, 100)).toBe(true)
      held.commit()
      const outcome = (r: { rows: CheckinRow[] }) =>
        r.rows.map((x) => (x.result as { status: string; streak: number }).status)
      expect(outcome(await held.done)).toEqual(['checked_in', 'checked_in'])
      expect(outcome(await second)).toEqual(['already', 'checked_in'])
      const { rows } = await sql<{ n: string }>`select count(*) as n from points_ledger
        where member_id = ${shared} and rule in ('checkin', 'streak_bonus')`.execute(get().db)
      expect(Number(rows[0]!.n)).toBe(2) // the check-in award and its bonus, once
    })
  },
  databaseNames.filter((name) => name === 'postgres'),
)
