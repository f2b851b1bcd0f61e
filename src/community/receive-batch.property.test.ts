/**
 * The set-based claim batch (`quanzi_receive_batch`, migrations/0094) against the per-push
 * function it stands for: for any batch — new members and returning ones (active today already,
 * yesterday, never; at any balance, lifetime and level), any push (a message, a follow with or
 * without a scene, a scan, an unfollow, a menu click, a system event; inbound or not), stamped or
 * not, its stamp claimed before with the same body (a retry) or another (a replay), its dedupe key
 * claimed before (answered from the stored reply), its daily login key used before or capped
 * earlier, the `daily_login` rule missing, disabled, capped by day, week or ever, overridden per
 * account, a moderator sender; two accounts; a member, a key or a stamp named twice (the fallback)
 * — it answers every push as `quanzi_receive` answered it (the app's batched statement before),
 * and leaves the same members, claims, activity days, follow facts, ledger entries and lots. Each
 * side runs in a transaction rolled back.
 */
import fc from 'fast-check'
import { type Kysely, sql } from 'kysely'
import { expect, it } from 'vitest'
import { databaseNames, forEachDatabase } from '../../test/databases.js'
import { holdTransaction, stillPending, waitingForLock } from '../../test/held-transaction.js'
import type { Database } from '../db/schema.js'
import { addDays, weekStart } from './community-time.js'
import { LEVELS } from './levels.js'
import { LEVELS_JSON } from './points-ledger.js'

const DAY = '2026-12-07'
const NOW = new Date('2026-12-07T02:00:00Z')
const TIME_ZONE = 'Asia/Shanghai'
const APPIDS = ['wx_recv_a', 'wx_recv_b'] as const

/** True now and then (one time in eight). */
const seldom = fc.oneof(
  { arbitrary: fc.constant(false), weight: 7 },
  { arbitrary: fc.constant(true), weight: 1 },
)
const rule = fc.option(
  fc.record({
    points: fc.integer({ min: 1, max: 9 }),
    enabled: fc.oneof(
      { arbitrary: fc.constant(true), weight: 3 },
      { arbitrary: fc.constant(false), weight: 1 },
    ),
    cap_count: fc.option(fc.constantFrom(0, 1, 1, 2)),
    cap_period: fc.option(fc.constantFrom('day', 'week', 'ever')),
  }),
)
/** A time relative to NOW, in hours back (today, yesterday in Shanghai, long ago), or never. */
const when = fc.option(fc.constantFrom(1, 5, 20, 30, 500))
const member = fc.record({
  appid: fc.constantFrom(...APPIDS),
  /** Not in the table before the batch. */
  fresh: fc.boolean(),
  balance: fc.integer({ min: 0, max: 25_000 }),
  lifetime: fc.oneof(
    fc.integer({ min: 0, max: 25_000 }),
    fc
      .constantFrom(...LEVELS.map((l) => l.min))
      .chain((min) => fc.integer({ min: Math.max(0, min - 20), max: min + 3 })),
  ),
  level: fc.constantFrom(...LEVELS.map((l) => l.key), 'unknown'),
  /** Last active: mostly before today (its push earns the daily login). */
  active: fc.constantFrom(null, null, 1, 20, 30, 500).map((h) => h),
  inbound: when,
  subscribed: fc.boolean(),
  scene: fc.constantFrom(null, 'qrscene_shop', 'inv_ABCDEFGH'),
  /** Today's daily login key used before. */
  used: seldom,
  /** Other `daily_login` entries, days back (towards the rule's cap). */
  earlier: fc.array(fc.constantFrom(0, 0, 3, 20), { maxLength: 2 }),
  /** A moderator of the whole account (`*`), of one group only, or none. */
  moderator: fc.constantFrom(null, '*', 'group:g1'),
})
const KINDS = [
  'text',
  'subscribe',
  'SCAN',
  'unsubscribe',
  'CLICK',
  'VIEW',
  'view_miniprogram',
  'LOCATION',
] as const
const push = fc.record({
  kind: fc.constantFrom(...KINDS),
  /** Overrides of the flags the kind implies (the function takes them as given). */
  active: fc.constantFrom(null, null, null, true, false),
  inbound: fc.constantFrom(null, null, null, true, false),
  minutes: fc.integer({ min: 0, max: 600 }),
  yesterday: seldom,
  scene: fc.constantFrom(null, 'qrscene_new', 'inv_JKLMNPQR_x'),
  stamped: fc.oneof(
    { arbitrary: fc.constant(true), weight: 5 },
    { arbitrary: fc.constant(false), weight: 1 },
  ),
  /** The stamp claimed before: with this body (a retry), another (a replay). */
  stampBefore: fc.constantFrom(null, null, null, 'same', 'other'),
  /** The dedupe key claimed before, its status. */
  claimedBefore: fc.constantFrom(null, null, null, 'replied', 'processing'),
})
export const scenario = fc.array(member, { minLength: 3, maxLength: 8 }).chain((members) =>
  fc.record({
    members: fc.constant(members),
    pushes: fc.array(fc.record({ member: fc.nat({ max: members.length - 1 }), push }), {
      minLength: 3,
      maxLength: 12,
    }),
    rules: fc.record({ '*': rule, wx_recv_a: rule, wx_recv_b: rule }),
    /** Now and then the fallback: a member, a dedupe key or a stamp named twice. */
    twice: fc.oneof(
      { arbitrary: fc.constant(null), weight: 6 },
      {
        arbitrary: fc.constantFrom('member' as const, 'key' as const, 'stamp' as const),
        weight: 1,
      },
    ),
  }),
)
export type Scenario = typeof scenario extends fc.Arbitrary<infer T> ? T : never

/** Thrown to roll a side's transaction back with what it saw. */
class Seen {
  constructor(readonly value: unknown) {}
}

const hoursBack = (h: number | null) =>
  h === null ? null : new Date(NOW.getTime() - h * 3_600_000).toISOString()

/** The batch's per-push arguments, in the batch's order (the app sorts them before the call). */
function pushArgs(s: Scenario) {
  const pushes = s.pushes.filter(
    // one push a member in a set-based batch (unless the scenario names one twice)
    (p, i) => s.twice === 'member' || s.pushes.findIndex((q) => q.member === p.member) === i,
  )
  const args = pushes.map(({ member: m, push: p }, i) => {
    const who = s.members[m]!
    const event = p.kind === 'text' ? null : p.kind
    const follow = p.kind === 'subscribe' || p.kind === 'SCAN'
    const unfollow = p.kind === 'unsubscribe'
    const inbound = p.inbound ?? p.kind === 'text'
    const day = p.yesterday ? addDays(DAY, -1) : DAY
    const active = p.active ?? (p.kind !== 'unsubscribe' && p.kind !== 'LOCATION')
    return {
      appid: who.appid,
      dedupe_key: `k${i}`,
      openid: `o_recv_${m}`,
      msg_type: event ? 'event' : 'text',
      event,
      now: new Date(NOW.getTime() + p.minutes * 60_000).toISOString(),
      active,
      inbound,
      subscribed: follow || (!unfollow && inbound) ? true : unfollow ? false : null,
      subscribe: p.kind === 'subscribe',
      unsubscribe: unfollow,
      follow,
      scene: follow ? p.scene : null,
      event_key: follow && p.scene ? `qrscene_${p.scene}` : null,
      daily_login: active,
      day,
      week_start: weekStart(day),
      door: p.stamped ? 'wechat' : null,
      ts: p.stamped ? 1_700_000_000 + i : null,
      nonce: p.stamped ? `n${i}` : null,
      digest: p.stamped ? `d${i}` : null,
      stampBefore: p.stamped ? p.stampBefore : null,
      claimedBefore: p.claimedBefore,
    }
  })
  if (s.twice === 'key' && args.length > 1) args[1]!.dedupe_key = args[0]!.dedupe_key
  if (s.twice === 'stamp' && args.length > 1 && args[0]!.door && args[1]!.door) {
    args[1]!.ts = args[0]!.ts
    args[1]!.nonce = args[0]!.nonce
  }
  return args
}
type PushArgs = ReturnType<typeof pushArgs>[number]

const ARRAYS: [keyof PushArgs, string][] = [
  ['appid', 'text'],
  ['dedupe_key', 'text'],
  ['openid', 'text'],
  ['msg_type', 'text'],
  ['event', 'text'],
  ['now', 'timestamptz'],
  ['active', 'boolean'],
  ['inbound', 'boolean'],
  ['subscribed', 'boolean'],
  ['subscribe', 'boolean'],
  ['unsubscribe', 'boolean'],
  ['follow', 'boolean'],
  ['scene', 'text'],
  ['event_key', 'text'],
  ['daily_login', 'boolean'],
  ['day', 'date'],
  ['week_start', 'date'],
  ['door', 'text'],
  ['ts', 'bigint'],
  ['nonce', 'text'],
  ['digest', 'text'],
]

/** Seeds the scenario in `trx`. */
async function seed(trx: Kysely<Database>, s: Scenario, args: PushArgs[]) {
  await sql`delete from point_rules where rule = 'daily_login'`.execute(trx)
  for (const [appid, r] of Object.entries(s.rules))
    if (r)
      await trx
        .insertInto('point_rules')
        .values({ appid, rule: 'daily_login', ...r })
        .execute()
  for (const [i, m] of s.members.entries()) {
    const openid = `o_recv_${i}`
    if (m.moderator)
      await trx
        .insertInto('moderators')
        .values({
          channel: 'oa',
          external_id: openid,
          scope: m.moderator,
          role: 'moderator',
          source: 't',
        })
        .execute()
    if (m.fresh) continue
    const { id } = await trx
      .insertInto('members')
      .values({
        appid: m.appid,
        openid,
        first_seen_at: new Date(NOW.getTime() - 1_000 * 3_600_000),
        points_balance: m.balance,
        points_lifetime: m.lifetime,
        level: m.level,
        last_active_at: hoursBack(m.active),
        last_inbound_at: hoursBack(m.inbound),
        subscribed: m.subscribed,
        subscribe_scene: m.scene,
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    const entry = (key: string, day: string) =>
      sql`insert into points_ledger (appid, member_id, delta, rule, idempotency_key,
          balance_after, earned, day, created_at)
        values (${m.appid}, ${id}, 1, 'daily_login', ${key}, 1, 1, ${day}::date, ${NOW})`.execute(
        trx,
      )
    if (m.used) await entry(`daily_login:${id}:${DAY}`, DAY)
    for (const [k, back] of m.earlier.entries())
      await entry(`earlier:${id}:${k}`, addDays(DAY, -back))
  }
  for (const a of args) {
    if (a.stampBefore)
      await sql`insert into replay_claims (door, key, ts, nonce, body_digest, created_at)
        values (${a.door}, ${a.appid}, ${a.ts}, ${a.nonce},
          ${a.stampBefore === 'same' ? a.digest : 'another body'}, ${NOW})
        on conflict do nothing`.execute(trx)
    if (a.claimedBefore)
      await sql`insert into inbound_events (appid, dedupe_key, openid, msg_type, status, reply,
          received_at) values (${a.appid}, ${a.dedupe_key}, ${a.openid}, 'text',
          ${a.claimedBefore}, ${a.claimedBefore === 'replied' ? 'stored reply' : null}, ${NOW})
        on conflict do nothing`.execute(trx)
  }
}

/** Rows ordered by their ledger key (ids made openids: the ids differ between the sides). */
const byKey = (a: Record<string, unknown>, b: Record<string, unknown>) =>
  String(a.idempotency_key).localeCompare(String(b.idempotency_key))

/** Runs the scenario's batch `how`; its answers and the rows it leaves, ids made openids. */
export async function run(
  db: Kysely<Database>,
  s: Scenario,
  how: 'rows' | 'batch',
): Promise<unknown> {
  const args = pushArgs(s)
  try {
    await db.transaction().execute(async (trx) => {
      await seed(trx, s, args)
      const arrays = sql.join(
        ARRAYS.map(([k, type]) => sql`${args.map((a) => a[k])}::${sql.raw(type)}[]`),
      )
      const { rows: answers } =
        how === 'rows'
          ? // the app's batched statement before migration 0094: the function push by push
            await sql<{ result: Record<string, unknown> }>`select case when u.door is null
                then quanzi_receive(u.appid, u.dedupe_key, u.openid, u.msg_type, u.event, u.now,
                  u.active, u.inbound, u.subscribed, u.subscribe, u.unsubscribe, u.follow,
                  u.scene, u.event_key, u.daily_login, ${TIME_ZONE}::text, u.day, u.week,
                  ${LEVELS_JSON}::jsonb)
                else quanzi_receive(u.appid, u.dedupe_key, u.openid, u.msg_type, u.event, u.now,
                  u.active, u.inbound, u.subscribed, u.subscribe, u.unsubscribe, u.follow,
                  u.scene, u.event_key, u.daily_login, ${TIME_ZONE}::text, u.day, u.week,
                  ${LEVELS_JSON}::jsonb, u.door, u.ts, u.nonce, u.digest) end as result
              from unnest(${arrays}) with ordinality u(appid, dedupe_key, openid, msg_type,
                event, now, active, inbound, subscribed, subscribe, unsubscribe, follow, scene,
                event_key, daily_login, day, week, door, ts, nonce, digest, i)
              order by u.i`.execute(trx)
          : await sql<{ result: Record<string, unknown> }>`select outcome as result
              from quanzi_receive_batch(${arrays}, ${TIME_ZONE}::text, ${LEVELS_JSON}::jsonb)
              order by n`.execute(trx)
      const members = await trx.selectFrom('members').selectAll().orderBy('openid').execute()
      const who = new Map(members.map((m) => [String(m.id), m.openid]))
      const key = (k: string) => k.replace(/:(\d+):/, (_, id: string) => `:${who.get(id)}:`)
      const ownKey = (e: Record<string, unknown>) => ({
        ...e,
        idempotency_key: key(String(e.idempotency_key)),
      })
      const table = async (query: string) =>
        (await sql.raw<Record<string, unknown>>(query).execute(trx)).rows.map((r) =>
          'member_id' in r ? { ...r, member_id: who.get(String(r.member_id)) } : r,
        )
      throw new Seen({
        answers: answers.map(({ result }) => {
          const member = result.member as Record<string, unknown> | undefined
          return member
            ? { ...result, member: { ...member, id: who.get(String(member.id)) } }
            : result
        }),
        members: members.map(({ id, ...m }) => m),
        inbound: await table(`select appid, dedupe_key, openid, msg_type, event, status, reply,
          received_at from inbound_events order by appid, dedupe_key`),
        replay: await table('select * from replay_claims order by ts, nonce'),
        days: await table(
          'select appid, day::text, member_id, kinds from member_days order by appid, day, kinds',
        ),
        follows: (
          await table(`select appid, member_id, at, day::text, kind, scene, source
            from follow_events order by at, kind`)
        ).sort((a, b) => String(a.member_id).localeCompare(String(b.member_id))),
        ledger: (
          await table(`select member_id, appid, rule, delta, reference, idempotency_key,
            balance_after, earned, day::text, state, created_at, expires_at
            from points_ledger order by idempotency_key`)
        )
          .map(ownKey)
          .sort(byKey),
        lots: (
          await table(`select l.member_id, l.appid, l.points, l.remaining, l.expired, l.earned_at,
            l.expires_at, e.idempotency_key from points_lots l
            join points_ledger e on e.id = l.ledger_id order by e.idempotency_key`)
        )
          .map(ownKey)
          .sort(byKey),
      })
    })
  } catch (error) {
    if (error instanceof Seen) return error.value
    return { error: (error as Error).message }
  }
  throw new Error('the transaction was not rolled back')
}

forEachDatabase('the set-based claim batch against the per-push function', (get) => {
  it('answers and writes what quanzi_receive does push by push, for any batch', async () => {
    const { db } = get()
    let setBased = 0
    await fc.assert(
      fc.asyncProperty(scenario, async (s) => {
        if (s.twice === null) setBased++
        const rows = await run(db, s, 'rows')
        expect(rows).not.toHaveProperty('error')
        expect(await run(db, s, 'batch')).toEqual(rows)
      }),
      { numRuns: 400 },
    )
    // most runs go through the set-based statements, not the fallback
    expect(setBased).toBeGreaterThan(250)
  }, 180_000)
})

/** A signed text push's arguments from `openid` (dedupe key `<tag>:<openid>`), `i` its nonce. */
const textArgs = (tag: string, openid: string, i: number) => ({
  appid: APPIDS[0],
  dedupe_key: `${tag}:${openid}`,
  openid,
  msg_type: 'text',
  event: null,
  now: NOW.toISOString(),
  active: true,
  inbound: true,
  subscribed: true,
  subscribe: false,
  unsubscribe: false,
  follow: false,
  scene: null,
  event_key: null,
  daily_login: true,
  day: DAY,
  week_start: weekStart(DAY),
  door: 'wechat',
  ts: 1_700_000_000,
  nonce: `${tag}${i}`,
  digest: 'd',
})

/** Text pushes of `openids` claimed by one set-based batch call, in order. */
function textBatch(db: Kysely<Database>, tag: string, openids: string[]) {
  const args = openids.map((openid, i) => textArgs(tag, openid, i))
  return sql<{ n: string; outcome: Record<string, unknown> }>`select n, outcome
    from quanzi_receive_batch(${sql.join(
      ARRAYS.map(
        ([k, type]) =>
          sql`${args.map((a) => a[k as keyof (typeof args)[number]])}::${sql.raw(type)}[]`,
      ),
    )}, ${TIME_ZONE}::text, ${LEVELS_JSON}::jsonb) order by n`.execute(db)
}

/** One text push claimed by `quanzi_receive` (with its replay stamp), as a small batch sends it. */
function textPush(db: Kysely<Database>, tag: string, openid: string) {
  const a = textArgs(tag, openid, 0)
  return sql<{ outcome: Record<string, unknown> }>`select quanzi_receive(${a.appid},
      ${a.dedupe_key}, ${a.openid}, ${a.msg_type}, null, ${a.now}::timestamptz, true, true, true,
      false, false, false, null, null, true, ${TIME_ZONE}::text, ${a.day}::date,
      ${a.week_start}::date, ${LEVELS_JSON}::jsonb, ${a.door}, ${a.ts}::bigint, ${a.nonce},
      ${a.digest}) as outcome`.execute(db)
}

/** Daily login entries of `openid`'s member. */
async function dailyLogins(db: Kysely<Database>, openid: string): Promise<number> {
  const { rows } = await sql<{ n: string }>`select count(*) as n from points_ledger l
    join members m on m.id = l.member_id
    where m.openid = ${openid} and l.rule = 'daily_login'`.execute(db)
  return Number(rows[0]!.n)
}

/** Whether an answer's daily login was paid. */
const paid = (o: Record<string, unknown> | undefined) =>
  (o?.daily_login as { status?: string } | null)?.status === 'applied'

forEachDatabase(
  'the set-based claim batch, a member another transaction is creating',
  (get) => {
    it('meets another set-based batch on their first shared member, then sees what it committed', async () => {
      const held = await holdTransaction(get().db, (trx) =>
        textBatch(trx, 'first', ['o_recv_race_a', 'o_recv_race_b', 'o_recv_race_c']),
      )
      const second = textBatch(get().open(), 'second', [
        'o_recv_race_b',
        'o_recv_race_e',
        'o_recv_race_f',
      ])
      // waits on the member's key (an advisory lock), before any member row
      await waitingForLock(get().db, '%quanzi_receive_batch%')
      expect(await stillPending(second, 100)).toBe(true)
      held.commit()
      const first = (await held.done).rows.map((r) => r.outcome)
      const [b, ...others] = (await second).rows.map((r) => r.outcome)
      expect(first.map((o) => o.is_new)).toEqual([true, true, true])
      // read after the first batch committed: an existing member, active at the first's push
      expect(b).toMatchObject({ claimed: true, is_new: false })
      expect(new Date(String(b!.previous_active_at))).toEqual(NOW)
      expect((b!.member as { id: unknown }).id).toBe((first[1]!.member as { id: unknown }).id)
      expect(others.map((o) => o!.is_new)).toEqual([true, true])
      // the day's login paid once: by the first batch (when the rule pays), not again
      expect(paid(b)).toBe(false)
      expect(await dailyLogins(get().db, 'o_recv_race_b')).toBe(paid(first[1]) ? 1 : 0)
    })

    it('waits on a per-push claim inserting a member, then receives it: not new, no activity before', async () => {
      const held = await holdTransaction(get().db, (trx) => textPush(trx, 'alone', 'o_recv_race_h'))
      const second = textBatch(get().open(), 'third', [
        'o_recv_race_h',
        'o_recv_race_i',
        'o_recv_race_j',
      ])
      await waitingForLock(get().db, '%quanzi_receive_batch%')
      expect(await stillPending(second, 100)).toBe(true)
      held.commit()
      const alone = (await held.done).rows[0]!.outcome
      const [h, ...others] = (await second).rows.map((r) => r.outcome)
      // its insert met the other's row: updated by the statement after (as the per-push upsert's
      // conflict path answers), not new, no activity read before the push
      expect(h).toMatchObject({ claimed: true, is_new: false, previous_active_at: null })
      expect((h!.member as { id: unknown }).id).toBe((alone.member as { id: unknown }).id)
      expect(others.map((o) => o!.is_new)).toEqual([true, true])
      expect(paid(h)).toBe(false)
      expect(await dailyLogins(get().db, 'o_recv_race_h')).toBe(paid(alone) ? 1 : 0)
    })
  },
  databaseNames.filter((name) => name === 'postgres'),
)
