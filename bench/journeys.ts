/**
 * The journeys job over 1,000,000 synthetic members on PostgreSQL (issue #19 target: ≤ 30 s per
 * run), in a throw-away schema, next to a baseline measured in the same run: one set-based
 * `insert … select` of an outbox row per member (the least a run that pushes to everyone writes).
 *
 *   npm run bench:journeys            # BENCH_MEMBERS=1000000 by default
 *   BENCH_SCHEMA=bench_jb_jny npm run bench:journeys   # keep the members (and their segment)
 *   BENCH_PROFILE=1 …                 # the slowest statements of each run
 *
 * The account adopts the seeded journeys and switches the welcome series on; then every member
 * enters `new` at once (the worst case: one recompute moves them all). Runs: (1) every member
 * starts the journey and gets day 0; (2) an idle run a minute later (nothing due); (3) day 1 for
 * everyone, with the campaign frequency cap; (4) a run after 2 % of the members acted
 * (conversions).
 */
import { sql } from 'kysely'
import { translator } from '../src/bot/i18n.js'
import { adoptJourneys, setJourneyStatus } from '../src/community/journey-catalog.js'
import { runJourneys } from '../src/community/journeys.js'
import { DEFAULT_SEGMENT_THRESHOLDS, recomputeSegments } from '../src/community/segments.js'
import { migrateToLatest } from '../src/db/migrate.js'
import { keptOrThrowawaySchema, timed } from './throwaway-schema.js'

const count = Number(process.env.BENCH_MEMBERS ?? 1_000_000)
const appid = 'wxbench000000000001'
const TZ = 'Asia/Shanghai'
const { db, drop, profile, generated, markGenerated } = await keptOrThrowawaySchema('bench_jny')
try {
  await migrateToLatest(db)
  const now = new Date('2026-12-03T02:00:00Z') // 10:00 in Shanghai
  if (generated !== null && generated !== count)
    throw new Error(`BENCH_SCHEMA holds ${generated} members, not ${count}`)
  if (generated === null) {
    await timed(`insert ${count.toLocaleString()} members`, async () => {
      await sql`
        insert into members (appid, openid, subscribed, subscribed_at, first_seen_at,
          last_inbound_at, marketing_opt_out, points_balance)
        select ${appid}, 'o_' || g, true, ${now}::timestamptz - interval '1 hour',
          ${now}::timestamptz - interval '1 hour', ${now}::timestamptz - interval '1 hour',
          g % 50 = 0, (g % 997)::int
        from generate_series(1, ${count}::bigint) g`.execute(db)
      await sql`analyze members`.execute(db)
    })
    const [welcome] = await adoptJourneys(db, { appid, now })
    await db
      .transaction()
      .execute((trx) => setJourneyStatus(trx, { appid, id: welcome!.id, status: 'active', now }))
    await timed('recompute segments (every member enters new)', () =>
      recomputeSegments(db, { now, thresholds: DEFAULT_SEGMENT_THRESHOLDS, timeZone: TZ, appid }),
    )
    await markGenerated(count)
  }
  // What the runs change is reset (so a kept dataset starts each time as a fresh one does): the
  // journeys see every transition again, nobody was capped or checked in.
  await timed('reset the journeys, the outbox and what the runs wrote to members', async () => {
    await sql`truncate push_outbox, journey_enrollments, journey_sends, checkins`.execute(db)
    await sql`delete from campaign_watermarks where name = 'journey-conversions'`.execute(db)
    await sql`update journeys set enrolled_through = 0 where appid <> '*'`.execute(db)
    await sql`update members set last_campaign_at = null, last_active_at = null
      where last_campaign_at is not null or last_active_at is not null`.execute(db)
    await sql`vacuum analyze`.execute(db)
  })
  // The least a run that pushes to everyone writes: one outbox row per member, one statement.
  const baseline = await timed('baseline: one outbox row per member', async () => {
    await sql`insert into push_outbox (appid, source, openid, kind, payload, lane,
        next_attempt_at, created_at)
      select appid, 'baseline:' || id, openid, 'custom', '{"msgtype":"text"}', 2, ${now}, ${now}
      from members`.execute(db)
  })
  await sql`truncate push_outbox`.execute(db)
  await sql`vacuum analyze push_outbox`.execute(db)
  profile()
  const settings = { timeZone: TZ, capHours: 24, capSlackMinutes: 30, quietHours: null }
  const t = translator('zh-CN')
  const run = (at: Date) => runJourneys(db, { slot: at, now: at, settings, t })
  const at = (ms: number) => new Date(now.getTime() + ms)
  const first = await timed('run 1: all start, day 0 to all', () => run(at(60_000)))
  profile()
  await sql`vacuum analyze journey_enrollments`.execute(db)
  const idle = await timed('run 2: idle (nothing due)', () => run(at(120_000)))
  profile()
  const day1 = await timed('run 3: day 1 to all (cap applies)', () => run(at(86_400_000 + 60_000)))
  profile()
  // Day 1's goal is a check-in: 2 % check in (and so act) an hour later.
  const checkedIn = at(86_400_000 + 3_600_000)
  await sql`insert into checkins (member_id, day, appid, streak, points, created_at)
    select id, '2026-12-04', appid, 2, 5, ${checkedIn} from members where id % 50 = 1`.execute(db)
  await sql`update members set last_active_at = ${checkedIn} where id % 50 = 1`.execute(db)
  const converted = await timed('run 4: 2 % checked in (conversions)', () =>
    run(at(86_400_000 + 3_660_000)),
  )
  profile()
  console.log(
    `\n| run | seconds | × baseline |\n|---|---:|---:|\n${[
      ['baseline: one outbox row per member', baseline],
      ['run 1: all start, day 0 to all', first],
      ['run 2: idle (nothing due)', idle],
      ['run 3: day 1 to all (cap applies)', day1],
      ['run 4: 2 % checked in (conversions)', converted],
    ]
      .map(
        ([name, ms]) =>
          `| ${name} | ${((ms as number) / 1000).toFixed(2)} | ${((ms as number) / baseline).toFixed(2)} |`,
      )
      .join('\n')}`,
  )
} finally {
  await drop()
}
