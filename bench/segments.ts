/**
 * Segment recompute over 1,000,000 synthetic members on PostgreSQL (issue target: ≤ 5 s), in a
 * throw-away schema, next to a baseline measured in the same run: a plain full-table
 * `update members set segment_since = segment_since` (the cost of touching every row once).
 *
 *   npm run bench:segments            # BENCH_MEMBERS=1000000 by default
 *
 * Runs: (1) the first recompute (every member gets a segment), (2) the nightly case a day later
 * with ~2 % of members active since, (3) an unchanged night.
 */
import { sql } from 'kysely'
import { DEFAULT_SEGMENT_THRESHOLDS, recomputeSegments } from '../src/community/segments.js'
import { migrateToLatest } from '../src/db/migrate.js'
import { throwawaySchema, timed } from './throwaway-schema.js'

const count = Number(process.env.BENCH_MEMBERS ?? 1_000_000)
const { db, drop } = await throwawaySchema('bench_seg')
try {
  await migrateToLatest(db)
  const now = new Date('2026-11-25T03:30:00Z')
  // A spread: joined up to 2 years ago, active up to 200 days ago, 30 % bought something, 8 %
  // unfollowed.
  await timed(`insert ${count.toLocaleString()} members`, async () => {
    await sql`
      insert into members (appid, openid, subscribed, unsubscribed_at, first_seen_at, last_active_at,
        purchase_count, last_purchased_at)
      select 'wxbench000000000001', 'o_' || g,
        r.u >= 0.08, case when r.u < 0.08 then ${now}::timestamptz - interval '3 days' end,
        ${now}::timestamptz - make_interval(days => (r.j * 730)::int),
        ${now}::timestamptz - make_interval(days => (r.a * 200)::int),
        case when r.p < 0.3 then (r.p * 30)::int else 0 end,
        case when r.p < 0.3 then ${now}::timestamptz - make_interval(days => (r.a * 120)::int) end
      from generate_series(1, ${count}::bigint) g,
        -- deterministic, well spread pseudo-random fractions per member (repeatable runs)
        lateral (select (g * 7919 % 1000) / 1000.0 u, (g * 104729 % 1009) / 1009.0 j,
          (g * 1299709 % 997) / 997.0 a, (g * 15485863 % 1013) / 1013.0 p) r`.execute(db)
    await sql`analyze members`.execute(db)
  })
  const baseline = await timed('baseline: touch every member once', async () => {
    await sql`update members set segment_since = segment_since`.execute(db)
    await sql`vacuum members`.execute(db)
  })
  const run = (at: Date) =>
    recomputeSegments(db, {
      now: at,
      thresholds: DEFAULT_SEGMENT_THRESHOLDS,
      timeZone: 'Asia/Shanghai',
    })
  const first = await timed('recompute, first (all members change)', () => run(now))
  await sql`vacuum members`.execute(db)
  const nextDay = new Date(now.getTime() + 86_400_000)
  const touched =
    await sql`update members set last_active_at = ${nextDay} where id % 50 = 0`.execute(db)
  console.log(`(${touched.numAffectedRows} members active again)`)
  await sql`vacuum analyze members`.execute(db)
  const nightly = await timed('recompute, next night (~2 % active since)', () => run(nextDay))
  const quiet = await timed('recompute, unchanged night', () => run(nextDay))
  console.log(
    `\n| run | seconds | × baseline |\n|---|---:|---:|\n` +
      [
        ['baseline: touch every member once', baseline],
        ['recompute, first (all change)', first],
        ['recompute, next night (~2 % active since)', nightly],
        ['recompute, unchanged night', quiet],
      ]
        .map(
          ([name, ms]) =>
            `| ${name} | ${((ms as number) / 1000).toFixed(2)} | ${((ms as number) / baseline).toFixed(2)} |`,
        )
        .join('\n'),
  )
} finally {
  await drop()
}
