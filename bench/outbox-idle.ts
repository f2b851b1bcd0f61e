/**
 * The outbox's idle cost (issue #14 target: ≤ 1 ms per poll) on PostgreSQL, in a throw-away schema:
 * 1,000,000 sent rows, 25,000 items of a paused campaign (`held`) and 25,000 campaign items waiting
 * for the end of the quiet hours (pending, due tomorrow) — a 50k backlog held back and nothing due.
 * Times the dispatcher's idle poll (`dueLanes`: one index probe per lane) next to a baseline measured
 * in the same run (`select 1`, a round trip that does no work), and prints the plan.
 *
 *   npm run bench:outbox-idle          # BENCH_SENT=1000000 BENCH_HELD=50000 BENCH_POLLS=2000
 */
import { sql } from 'kysely'
import { dueLanes } from '../src/community/outbox.js'
import { migrateToLatest } from '../src/db/migrate.js'
import { postgresDatabase } from '../src/db/postgres.js'

const url = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const sent = Number(process.env.BENCH_SENT ?? 1_000_000)
const held = Number(process.env.BENCH_HELD ?? 50_000)
const polls = Number(process.env.BENCH_POLLS ?? 2000)
const schema = `bench_idle_${Date.now().toString(36)}`
const admin = postgresDatabase(url)
await sql`create schema ${sql.id(schema)}`.execute(admin)
const db = postgresDatabase(url, { schema, max: 1 })
const appid = 'wxbenchidle0000001'
try {
  await migrateToLatest(db)
  const now = new Date()
  const tomorrow = new Date(now.getTime() + 10 * 3600_000)
  const payload = JSON.stringify({ template_id: 'T', data: {} })
  await sql`insert into push_outbox (appid, source, openid, kind, payload, status, lane,
      next_attempt_at, created_at, sent_at, wechat_msgid)
    select ${appid}, 'campaign:1:x', 'o' || g, 'template', ${payload}, 'sent', 2,
      ${now}::timestamptz, ${now}::timestamptz, ${now}::timestamptz, g::text
    from generate_series(1, ${sent}) g`.execute(db)
  await sql`insert into push_outbox (appid, source, openid, kind, payload, status, lane,
      next_attempt_at, created_at)
    select ${appid}, 'campaign:2:x', 'h' || g, 'template', ${payload},
      case when g % 2 = 0 then 'held' else 'pending' end, 2,
      case when g % 2 = 0 then ${now}::timestamptz else ${tomorrow}::timestamptz end,
      ${now}::timestamptz
    from generate_series(1, ${held}) g`.execute(db)
  await sql`analyze push_outbox`.execute(db)

  const time = async (fn: () => Promise<unknown>) => {
    for (let i = 0; i < 100; i++) await fn() // warm up
    const started = performance.now()
    for (let i = 0; i < polls; i++) await fn()
    return (performance.now() - started) / polls
  }
  const baseline = await time(() => sql`select 1`.execute(db))
  const idle = await time(() => dueLanes(db, appid, new Date()))
  if ((await dueLanes(db, appid, new Date())).length !== 0) throw new Error('something is due')
  const plan = await sql<{ 'QUERY PLAN': string }>`explain (analyze, costs off, timing off)
    select exists (select 1 from push_outbox where appid = ${appid} and lane = 2
      and status in ('pending', 'sending') and next_attempt_at <= ${new Date()}::timestamptz)`.execute(
    db,
  )
  console.log(`rows: ${sent} sent, ${held} held back (half held, half due tomorrow)`)
  console.log(`| poll | ms per poll | × baseline |\n|---|---:|---:|`)
  console.log(`| select 1 (baseline) | ${baseline.toFixed(3)} | 1.00 |`)
  console.log(`| dueLanes (3 probes) | ${idle.toFixed(3)} | ${(idle / baseline).toFixed(2)} |`)
  console.log(`\nplan of one lane's probe:\n${plan.rows.map((r) => r['QUERY PLAN']).join('\n')}`)
} finally {
  await db.destroy()
  await sql`drop schema ${sql.id(schema)} cascade`.execute(admin)
  await admin.destroy()
}
