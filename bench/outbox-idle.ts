/**
 * The outbox's idle cost (issue #14 target: ≤ 1 ms per poll) on PostgreSQL, in a throw-away schema:
 * 1,000,000 sent rows, 25,000 items of a paused campaign (`held`) and 25,000 campaign items waiting
 * for the end of the quiet hours (pending, due tomorrow) — a 50k backlog held back and nothing due.
 * Times the dispatcher's idle poll (`dueLanes`: one index probe per lane) next to a baseline measured
 * in the same run (`select 1`, a round trip that does no work), and prints the plan.
 *
 * Then a claim (200 items) behind a backlog held back behind members' earlier items, in the same
 * schema, against the same claim with nothing held back (the baseline): `BENCH_CLAIM_HELD` due
 * items (default 50,000) of members whose first item waits for its retry — many per member (500
 * members, 100 each) and one per member (50,000 members, two each) — ahead of 200 that can go.
 * Each claim is rolled back, so every one claims from the same backlog. The statement before
 * migration 0086 (every due item's member probed) is timed beside it. `BENCH_CLAIM_HELD=0` skips it.
 *
 *   npm run bench:outbox-idle   # BENCH_SENT=1000000 BENCH_HELD=50000 BENCH_POLLS=2000
 *                               # BENCH_CLAIM_HELD=50000 BENCH_CLAIMS=20
 */
import { sql } from 'kysely'
import { type ClaimRequest, claimWithin, dueLanes } from '../src/community/outbox.js'
import { migrateToLatest } from '../src/db/migrate.js'
import { postgresDatabase } from '../src/db/postgres.js'

const url = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const sent = Number(process.env.BENCH_SENT ?? 1_000_000)
const held = Number(process.env.BENCH_HELD ?? 50_000)
const polls = Number(process.env.BENCH_POLLS ?? 2000)
const claimHeld = Number(process.env.BENCH_CLAIM_HELD ?? 50_000)
const claims = Number(process.env.BENCH_CLAIMS ?? 20)
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

  if (claimHeld > 0) {
    // due a minute ago: 200 members' items that can go
    const free = (account: string) => sql`insert into push_outbox (appid, source, openid, kind,
        payload, lane, next_attempt_at, created_at)
      select ${account}, 'notice:' || g, 'free' || g, 'template', ${payload}, 1,
        ${now}::timestamptz - interval '1 minute', ${now}::timestamptz
      from generate_series(1, 200) g`
    // per member: the first waits for its retry (30 min), the others were due ten minutes ago
    const heldBack = (account: string, members: number, each: number) => sql`insert into
        push_outbox (appid, source, openid, kind, payload, lane, next_attempt_at, attempts,
          retrying, created_at)
      select ${account}, 'notice:' || m || ':' || k, 'held' || m, 'template', ${payload}, 1,
        case when k = 1 then ${now}::timestamptz + interval '30 minutes'
          else ${now}::timestamptz - interval '10 minutes' end,
        case when k = 1 then 1 else 0 end, k = 1, ${now}::timestamptz
      from generate_series(1, ${members}) m, generate_series(1, ${each}) k order by m, k`
    const shapes = [
      { appid: 'wxbenchclaim000000', label: 'nothing held back (baseline)', members: 0, each: 0 },
      {
        appid: 'wxbenchclaim000001',
        label: `${claimHeld} held: 500 members, ${claimHeld / 500} each behind a retry`,
        members: 500,
        each: claimHeld / 500 + 1,
      },
      {
        appid: 'wxbenchclaim000002',
        label: `${claimHeld} held: ${claimHeld} members, one each behind a retry`,
        members: claimHeld,
        each: 2,
      },
    ]
    for (const shape of shapes) {
      if (shape.members > 0) await heldBack(shape.appid, shape.members, shape.each).execute(db)
      await free(shape.appid).execute(db)
    }
    await sql`vacuum analyze push_outbox`.execute(db)
    const at = new Date()
    const request = (appid: string): ClaimRequest => ({
      appid,
      lane: 1,
      limit: 200,
      token: 'bench',
      lease: new Date(at.getTime() + 60_000),
      now: at,
    })
    /** One claim, rolled back: the next one claims from the same backlog. */
    const rolledBack = async (work: (trx: typeof db) => Promise<unknown[]>) => {
      let n = -1
      await db
        .transaction()
        .execute(async (trx) => {
          n = (await work(trx)).length
          throw new Error('roll back')
        })
        .catch(() => {})
      if (n !== 200) throw new Error(`claimed ${n}, not 200`)
    }
    // The statement before migration 0086: every due item's member probed, in due order.
    const before = (appid: string) => (trx: typeof db) =>
      sql`select pg_advisory_xact_lock(hashtext(${`quanzi:outbox-claim:${appid}`}))`
        .execute(trx)
        .then(
          async () =>
            (
              await sql`with picked as (
          select o.id from push_outbox o
          where o.appid = ${appid} and o.lane = 1 and o.status in ('pending', 'sending')
            and o.next_attempt_at <= ${at}::timestamptz
            and not exists (select 1 from push_outbox e
              where e.appid = o.appid and e.openid = o.openid and e.id <> o.id
                and e.status in ('pending', 'sending')
                and ((e.status = 'sending' and e.next_attempt_at > ${at}::timestamptz)
                  or (e.lane = o.lane and e.id < o.id
                    and (e.next_attempt_at <= ${at}::timestamptz or e.attempts > 0))))
          order by o.next_attempt_at limit 200 for update of o skip locked)
        update push_outbox o set status = 'sending', claim_token = 'bench'
        from picked where o.id = picked.id returning o.id`.execute(trx)
            ).rows,
        )
    const timeClaims = async (work: (trx: typeof db) => Promise<unknown[]>) => {
      for (let i = 0; i < 3; i++) await rolledBack(work) // warm up
      const started = performance.now()
      for (let i = 0; i < claims; i++) await rolledBack(work)
      return (performance.now() - started) / claims
    }
    const results: { label: string; now: number; before: number }[] = []
    for (const shape of shapes) {
      results.push({
        label: shape.label,
        now: await timeClaims((trx) => claimWithin(trx, request(shape.appid))),
        before: await timeClaims(before(shape.appid)),
      })
    }
    const base = results[0]!.now
    console.log(`\nclaim of 200 (lane 1), ${claims} claims each, rolled back:`)
    console.log(`| backlog | ms per claim | × baseline | before 0086 ms | × baseline |`)
    console.log(`|---|---:|---:|---:|---:|`)
    for (const r of results)
      console.log(
        `| ${r.label} | ${r.now.toFixed(1)} | ${(r.now / base).toFixed(2)} | ${r.before.toFixed(1)} | ${(r.before / base).toFixed(2)} |`,
      )
  }
} finally {
  await db.destroy()
  await sql`drop schema ${sql.id(schema)} cascade`.execute(admin)
  await admin.destroy()
}
