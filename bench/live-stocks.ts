/**
 * Today's stocks read live (followers in total, points outstanding and frozen: the overview's and
 * the dashboards' live figures) at 1,000,000 members, on PGlite in memory (the default install)
 * or PostgreSQL in a throw-away schema (`BENCH_POSTGRES=1`, `BENCH_DATABASE_URL`):
 *
 *   npm run bench:live-stocks   # BENCH_MEMBERS=1000000, BENCH_ROUNDS=5
 *
 * BENCH_MEMBERS members who followed over 90 days (5 % of them unfollowed since), two points
 * entries each over those days (one in ten frozen). In the same run, the median of BENCH_ROUNDS
 * live reads of today's `followers` and `points` families (src/analytics/families):
 * - **baseline**: no built day within `STOCK_CHAIN_DAYS` — the exact form, a pass over every
 *   member; before session 35 every live read whose day before was not built took it (every night
 *   until the 04:00 build, for today);
 * - chained from the day before yesterday (built, yesterday not: the night before the build; the
 *   furthest back a chain goes, `STOCK_CHAIN_DAYS`);
 * - chained from yesterday (built: the day).
 * Each as a ratio to the baseline, with a check that the three read the same figures. Then a new
 * install's overview (no day built): the live reads of three days (a week ago, yesterday, today)
 * each passing over the members (baseline, the form before session 35), against a reader
 * (`liveToday`, a new one each round) whose stocks of the three days share one pass.
 */
import { sql } from 'kysely'
import { STOCKS as ALL_STOCKS } from '../src/analytics/families/index.js'
import { computeDay } from '../src/analytics/rollup.js'
import { liveToday } from '../src/analytics/series.js'
import { addDays } from '../src/community/community-time.js'
import { migrateToLatest } from '../src/db/migrate.js'
import { pgliteDatabase } from '../src/db/open-database.js'
import { throwawaySchema } from './throwaway-schema.js'

const members = Number(process.env.BENCH_MEMBERS ?? 1_000_000)
const rounds = Number(process.env.BENCH_ROUNDS ?? 5)
const appid = 'wxbench000000000001'
const tz = 'Asia/Shanghai'
const today = '2026-11-30'
const { db, drop } = process.env.BENCH_POSTGRES
  ? await throwawaySchema('bench_stocks', { max: 2 })
  : await pgliteDatabase().then((lite) => ({ db: lite, drop: () => lite.destroy() }))
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const families = ['followers', 'points']
const STOCKS = Object.keys(ALL_STOCKS)

/** Today's stocks read live, and the median time of `rounds` reads. */
async function liveRead() {
  const times: number[] = []
  let figures: number[] = []
  for (let i = 0; i < rounds; i++) {
    const started = performance.now()
    const all = await computeDay(db, { appid, day: today, timeZone: tz, live: true }, { families })
    times.push(performance.now() - started)
    figures = STOCKS.map((m) => all.find((f) => f.metric === m && f.dim === '')!.value)
  }
  return { ms: median(times), figures }
}

/** Only `day` built, with its exact stocks (what the nightly build writes for them). */
async function builtOnly(day: string | null) {
  await db.deleteFrom('analytics_daily').where('appid', '=', appid).execute()
  await db.deleteFrom('analytics_days').where('appid', '=', appid).execute()
  if (!day) return
  const exact = await computeDay(db, { appid, day, timeZone: tz }, { families })
  await db.insertInto('analytics_days').values({ appid, day, built_at: new Date() }).execute()
  await db
    .insertInto('analytics_daily')
    .values(exact.map((f) => ({ appid, day, ...f })))
    .execute()
}

try {
  await migrateToLatest(db)
  const seeding = performance.now()
  await sql`
    insert into members (appid, openid, subscribed, first_seen_at, points_balance, points_frozen)
    select ${appid}, 'o_' || g, g % 20 <> 0, ${today}::date - (g % 90)::int, 10 + g % 50,
      case when g % 10 = 0 then 20 else 0 end
    from generate_series(1, ${members}::bigint) g`.execute(db)
  await sql`
    insert into follow_events (appid, member_id, at, day, kind, source)
    select ${appid}, id, first_seen_at, first_seen_at::date, 'follow', 'organic' from members
    union all
    select ${appid}, id, first_seen_at + interval '1 day', first_seen_at::date + 1, 'unfollow',
      'organic' from members where not subscribed`.execute(db)
  await sql`
    insert into points_ledger (appid, member_id, delta, rule, idempotency_key, balance_after, day,
      created_at, state)
    select ${appid}, id, d, 'grant', 'b' || id || '-' || k, d, day, day, state from (
      select m.id, k, (10 + m.id % 50) / 2 as d,
        (${today}::date - ((m.id + k * 37) % 90)::int) as day,
        case when k = 2 and m.id % 10 = 0 then 'frozen' else 'available' end as state
      from members m cross join generate_series(1, 2) k) e`.execute(db)
  await sql`analyze`.execute(db)
  console.log(
    `${members.toLocaleString('en')} members, their follows and 2 points entries each: ${((performance.now() - seeding) / 1000).toFixed(1)} s (${process.env.BENCH_POSTGRES ? 'PostgreSQL' : 'PGlite'})`,
  )
  await builtOnly(null)
  const baseline = await liveRead()
  await builtOnly(addDays(today, -2))
  const twoDays = await liveRead()
  await builtOnly(addDays(today, -1))
  const oneDay = await liveRead()
  const same = [twoDays, oneDay].every((r) => r.figures.join() === baseline.figures.join())
  console.log(
    `\n| today's followers and points read live | ms (median of ${rounds}) | × baseline |`,
  )
  console.log('|---|---:|---:|')
  for (const [name, r] of [
    ['baseline: no built day within a week (a pass over every member)', baseline],
    ['chained from the day before yesterday (yesterday not built yet)', twoDays],
    ['chained from yesterday (built)', oneDay],
  ] as const)
    console.log(`| ${name} | ${r.ms.toFixed(1)} | ${(r.ms / baseline.ms).toFixed(3)} |`)
  console.log(`\nsame figures: ${same} (${baseline.figures.join(' / ')})`)
  // A new install's overview: three days read live, no day built.
  await builtOnly(null)
  const days = [addDays(today, -7), addDays(today, -1), today]
  const stocksOf = (all: { metric: string; dim: string; value: number }[]) =>
    STOCKS.map((m) => all.find((f) => f.metric === m && f.dim === '')!.value).join()
  /** The three days read at once by `round()`'s reader (a new one each round: nothing kept). */
  const overview = async (
    round: () => (day: string) => Promise<Parameters<typeof stocksOf>[0]>,
  ) => {
    const times: number[] = []
    let figures: string[] = []
    for (let i = 0; i < rounds; i++) {
      const read = round()
      const started = performance.now()
      figures = (await Promise.all(days.map(read))).map(stocksOf)
      times.push(performance.now() - started)
    }
    return { ms: median(times), figures }
  }
  const apart = await overview(
    () => (day) => computeDay(db, { appid, day, timeZone: tz, live: true }, { families }),
  )
  const shared = await overview(() => {
    const reader = liveToday(db)
    return (day) => reader(appid, day, tz, families)
  })
  console.log(
    `\n| a new install: 3 days' followers and points read live | ms (median of ${rounds}) | × baseline |`,
  )
  console.log('|---|---:|---:|')
  console.log(
    `| baseline: each day's families pass over the members (3 passes a day) | ${apart.ms.toFixed(1)} | 1.000 |`,
  )
  console.log(
    `| one reader: the stocks' state now read once | ${shared.ms.toFixed(1)} | ${(shared.ms / apart.ms).toFixed(3)} |`,
  )
  const sameOverview = shared.figures.join('|') === apart.figures.join('|')
  console.log(`\nsame figures: ${sameOverview}`)
  if (!same || !sameOverview) process.exitCode = 1
} finally {
  await drop()
}
