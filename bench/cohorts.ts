/**
 * Retention cohorts and LTV over 1,000,000 synthetic members on PostgreSQL (issue #16 target:
 * cohort reads p95 ≤ 100 ms at 10 concurrent requests), in a throw-away schema:
 *
 *   npx tsx bench/cohorts.ts          # BENCH_MEMBERS=1000000, BENCH_BUILD_DAYS=200 by default
 *
 * Members follow evenly over the year before TODAY (3 % unfollow and follow again), each active
 * on their follow day and then with probability 0.06 + 0.4·e^{−k/5} on day k (≈ 8 member days
 * each); 6 % of them pay (one order 0–80 days after following, a fifth of those refunded in part).
 * The nightly cohort build runs for the last BENCH_BUILD_DAYS days, oldest first; before each
 * night BENCH_MOVES_PERCENT (default 1) % of the members change segment (with their
 * segment_transitions), which the build moves between segment cells. The baseline, in the same
 * run, counts one day of member_days. Each read then runs 5 times to warm up, 40 times alone and
 * 80 times as 10 concurrent streams.
 */
import { sql } from 'kysely'
import { analyticsFits } from '../src/analytics/analytics-fits.js'
import { type LtvQuery, ltvTriangle } from '../src/analytics/cohort-ltv.js'
import { buildCohortCells, type CohortQuery, cohortTriangle } from '../src/analytics/cohorts.js'
import { addDays } from '../src/community/community-time.js'
import { migrateToLatest } from '../src/db/migrate.js'
import { postgresDatabase } from '../src/db/postgres.js'

const url = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const count = Number(process.env.BENCH_MEMBERS ?? 1_000_000)
const buildDays = Number(process.env.BENCH_BUILD_DAYS ?? 200)
const movesPercent = Number(process.env.BENCH_MOVES_PERCENT ?? 1)
const APPID = 'wxbench000000000001'
const TODAY = '2026-11-25'
const FIRST = addDays(TODAY, -365)
/** BENCH_SCHEMA: keep the data in this schema (made once, reused by later runs, not dropped). */
const kept = process.env.BENCH_SCHEMA
const schema = kept ?? `bench_coh_${Date.now().toString(36)}`
const admin = postgresDatabase(url)
await sql`create schema if not exists ${sql.id(schema)}`.execute(admin)
const db = postgresDatabase(url, { schema, max: 10 })
const timed = async <T>(name: string, fn: () => Promise<T>) => {
  const started = performance.now()
  const result = await fn()
  console.log(`${name}: ${((performance.now() - started) / 1000).toFixed(2)} s`)
  return result
}
const quantile = (xs: number[], q: number) =>
  [...xs].sort((a, b) => a - b)[Math.ceil(q * xs.length) - 1]!
try {
  await migrateToLatest(db)
  const made = kept
    ? (await sql<{ n: number }>`select count(*)::int as n from members`.execute(db)).rows[0]!.n > 0
    : false
  if (!made) await generate()
  const built = (await sql<{ n: number }>`select count(*)::int as n from cohort_days`.execute(db))
    .rows[0]!.n
  if (built === 0) await build()
  await reads()
} finally {
  await db.destroy()
  if (!kept) await sql`drop schema ${sql.id(schema)} cascade`.execute(admin)
  await admin.destroy()
}

async function generate() {
  await timed(`insert ${count.toLocaleString()} members and their follows`, async () => {
    await sql`
      insert into members (appid, openid, subscribed, subscribed_at, first_seen_at)
      select ${APPID}, 'o_' || g, true, t, t
      from generate_series(1, ${count}::bigint) g,
        lateral (select (${FIRST}::date + (g * 7919 % 365)::int)::timestamp
          + interval '2 hours' as t) x`.execute(db)
    await sql`insert into member_segments (member_id, appid, segment, since)
      select id, appid,
        (array['new', 'active', 'loyal', 'at_risk', 'dormant', 'churned'])[1 + (id * 104729 % 6)],
        first_seen_at
      from members`.execute(db)
    await sql`
      insert into follow_events (appid, member_id, at, day, kind, scene, source)
      select appid, id, subscribed_at, (subscribed_at at time zone 'UTC')::date, 'follow', null,
        (array['invite', 'qr', 'organic'])[1 + (id * 31 % 3)]
      from members`.execute(db)
    await sql`
      insert into follow_events (appid, member_id, at, day, kind, scene, source)
      select appid, id, subscribed_at + interval '3 days' * k, 
        (subscribed_at at time zone 'UTC')::date + 3 * k,
        case k when 1 then 'unfollow' else 'follow' end, null, 'organic'
      from members, generate_series(1, 2) k
      where id % 33 = 0 and (subscribed_at at time zone 'UTC')::date + 6 < ${TODAY}::date`.execute(
      db,
    )
  })
  await timed('insert member days', async () => {
    await sql`
      insert into member_days (appid, day, member_id, kinds)
      select m.appid, (m.subscribed_at at time zone 'UTC')::date + k, m.id, 32
      from members m, generate_series(0, 90) k
      where (m.subscribed_at at time zone 'UTC')::date + k < ${TODAY}::date
        and (k = 0 or ((m.id * 2654435761 + k * 40503) % 1000003) / 1000003.0
          < 0.06 + 0.4 * exp(-k / 5.0))
      on conflict do nothing`.execute(db)
    await sql`analyze`.execute(db)
  })
  const { rows } = await sql<{ n: number }>`select count(*)::int as n from member_days`.execute(db)
  console.log(`(${rows[0]!.n.toLocaleString()} member days)`)
  await timed('insert orders and refunds', async () => {
    await sql`
      insert into products (appid, sku, kind, name, price_fen, created_at)
      values (${APPID}, 'bench', 'flash_sale', 'bench', 100, now())`.execute(db)
    await sql`
      insert into orders (appid, out_trade_no, member_id, mp_openid, product_id, kind, description,
        amount_fen, status, expires_at, created_at, paid_at, paid_total_fen)
      select m.appid, 'b' || m.id, m.id, 'mp' || m.id, p.id, 'flash_sale', 'bench',
        990 + (m.id * 37 % 20000)::int, 'paid', x.t, x.t, x.t, 990 + (m.id * 37 % 20000)::int
      from members m cross join (select id from products limit 1) p,
        lateral (select m.subscribed_at + interval '1 day' * (m.id * 13 % 81) as t) x
      where m.id % 50 in (1, 2, 3) and x.t < ${TODAY}::date`.execute(db)
    await sql`
      insert into refunds (order_id, out_refund_no, amount_fen, reason, status, created_at,
        updated_at)
      select id, 'r' || id, amount_fen / 2, 'bench', 'success', paid_at + interval '3 days',
        paid_at + interval '3 days'
      from orders where id % 5 = 0`.execute(db)
    await sql`analyze`.execute(db)
  })
  await sql`
    insert into analytics_daily (appid, metric, day, dim, value)
    select ${APPID}, 'followers.total', d::date, '',
      (select count(*) from members where subscribed_at < d + interval '1 day')
    from generate_series(${FIRST}::date, ${addDays(TODAY, -1)}::date, interval '1 day') d`.execute(
    db,
  )
}

/** Moves `movesPercent` % of the members to another segment, as the nightly recompute would. */
async function moveSegments(day: string, night: number) {
  await sql`
    with moved as (
      update member_segments m set segment = (array['new', 'active', 'loyal', 'at_risk',
        'dormant', 'churned'])[1 + ((m.member_id + ${night}) % 6)]
      where (m.member_id * 7 + ${night} * 7919) % 10000 < ${movesPercent * 100}
        and m.segment is distinct from (array['new', 'active', 'loyal', 'at_risk', 'dormant',
          'churned'])[1 + ((m.member_id + ${night}) % 6)]
      returning m.member_id as id, m.segment
    )
    insert into segment_transitions (appid, member_id, from_segment, to_segment, at)
    select ${APPID}, id, null, segment, ${day}::date + interval '3 hours' from moved`.execute(db)
}

async function build() {
  const nights: { day: string; ms: number; saturday: boolean; moved: number }[] = []
  await timed(`cohort builds, ${buildDays} nights`, async () => {
    for (let i = buildDays; i >= 1; i--) {
      const day = addDays(TODAY, -i)
      if (i < buildDays) await moveSegments(day, i)
      const started = performance.now()
      const r = await buildCohortCells(db, { appid: APPID, day, timeZone: 'UTC' })
      nights.push({
        day,
        ms: performance.now() - started,
        saturday: r.weekCells > 0,
        moved: r.segments,
      })
    }
  })
  console.log(
    `members moved between segments per night: p50 ${quantile(
      nights.slice(1).map((n) => n.moved),
      0.5,
    )}`,
  )
  const first = nights[0]!
  const plain = nights.slice(1).filter((n) => !n.saturday)
  const saturdays = nights.filter((n) => n.saturday)
  console.log(
    `first night (reads ${194 + 1} cohort days): ${first.ms.toFixed(0)} ms; other nights ` +
      `p50 ${quantile(
        plain.map((n) => n.ms),
        0.5,
      ).toFixed(0)} ms, ` +
      `max ${Math.max(...plain.map((n) => n.ms)).toFixed(0)} ms; Saturdays (week cells) p50 ` +
      `${quantile(
        saturdays.map((n) => n.ms),
        0.5,
      ).toFixed(0)} ms`,
  )
}

async function baseline() {
  const started = performance.now()
  await sql`select count(*) from member_days where appid = ${APPID}
    and day = ${addDays(TODAY, -1)}::date`.execute(db)
  return performance.now() - started
}

async function reads() {
  for (let i = 0; i < 3; i++) await baseline()
  const base = quantile(await Promise.all([0, 1, 2, 3, 4].map(() => baseline())), 0.5)
  console.log(`baseline: count one day of member_days: ${base.toFixed(1)} ms`)
  const last = addDays(TODAY, -1)
  const reads: [string, () => Promise<unknown>][] = [
    ...(
      [
        ['day, 30 cohorts, ages 0–30', { grain: 'day', from: addDays(last, -29), maxAge: 30 }],
        ['day, 90 cohorts, ages 0–90', { grain: 'day', from: addDays(last, -89), maxAge: 90 }],
        [
          'day, 30 cohorts, source invite',
          { grain: 'day', from: addDays(last, -29), maxAge: 30, source: 'invite' },
        ],
        ['week, 26 cohorts, ages 0–26', { grain: 'week', from: addDays(last, -181), maxAge: 26 }],
        [
          'day, 30 cohorts, segment loyal',
          { grain: 'day', from: addDays(last, -29), maxAge: 30, segment: 'loyal' },
        ],
        [
          'day, 90 cohorts, segment loyal',
          { grain: 'day', from: addDays(last, -89), maxAge: 30, segment: 'loyal' },
        ],
        [
          'week, 12 cohorts, segment active',
          { grain: 'week', from: addDays(last, -83), maxAge: 12, segment: 'active' },
        ],
      ] as [string, Omit<CohortQuery, 'appid' | 'to'>][]
    ).map(
      ([name, q]) =>
        [name, () => cohortTriangle(db, { appid: APPID, to: last, ...q })] as [
          string,
          () => Promise<unknown>,
        ],
    ),
    ...(
      [
        ['LTV day, 90 cohorts, ages 0–90', { grain: 'day', from: addDays(last, -89), maxAge: 90 }],
        [
          'LTV day, 30 cohorts, source qr',
          { grain: 'day', from: addDays(last, -29), maxAge: 30, source: 'qr' },
        ],
        [
          'LTV week, 26 cohorts, ages 0–26',
          { grain: 'week', from: addDays(last, -181), maxAge: 26 },
        ],
      ] as [string, Omit<LtvQuery, 'appid' | 'to'>][]
    ).map(
      ([name, q]) =>
        [name, () => ltvTriangle(db, { appid: APPID, to: last, ...q })] as [
          string,
          () => Promise<unknown>,
        ],
    ),
    [
      'analyticsFits, 90 days',
      () => analyticsFits(db, { appid: APPID, from: addDays(last, -89), to: last }),
    ],
  ]
  const time = async (read: () => Promise<unknown>) => {
    const started = performance.now()
    await read()
    return performance.now() - started
  }
  console.log(
    '\n| read | alone p50 ms | alone p95 ms | 10 concurrent p50 ms | p95 ms | max ms |' +
      '\n|---|---:|---:|---:|---:|---:|',
  )
  for (const [name, read] of reads) {
    for (let i = 0; i < 5; i++) await read()
    const alone: number[] = []
    for (let i = 0; i < 40; i++) alone.push(await time(read))
    const together: number[] = []
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        for (let i = 0; i < 8; i++) together.push(await time(read))
      }),
    )
    const f = (x: number) => x.toFixed(1)
    console.log(
      `| ${name} | ${f(quantile(alone, 0.5))} | ${f(quantile(alone, 0.95))} | ` +
        `${f(quantile(together, 0.5))} | ${f(quantile(together, 0.95))} | ` +
        `${f(Math.max(...together))} |`,
    )
  }
}
