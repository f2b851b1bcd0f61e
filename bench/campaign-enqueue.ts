/**
 * A campaign enqueue over 1,000,000 synthetic members on PostgreSQL (issue #14 target: linear —
 * every 100k members within ±20 % of the first 100k — and ≤ 30 s in all), in a throw-away schema,
 * next to a baseline measured in the same run: the same rows written set-based, i.e. one
 * `insert … select` of N recipients and one of N outbox rows into scratch copies of the two tables
 * (same columns and indexes), and one `update` of N members' last campaign time.
 *
 *   npm run bench:enqueue             # BENCH_MEMBERS=1000000; BENCH_BATCH (default: dispatch's 1000)
 *
 * Then conversion marking, steady state (1,000 members active since the last mark), against the
 * previous full-scan statement run in a rolled-back transaction; its plan is printed.
 */
import { sql } from 'kysely'
import { translator } from '../src/bot/i18n.js'
import { markConversions } from '../src/community/campaign-report.js'
import { dispatchCampaigns } from '../src/community/campaigns.js'
import { migrateToLatest } from '../src/db/migrate.js'
import { postgresDatabase } from '../src/db/postgres.js'

const url = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const count = Number(process.env.BENCH_MEMBERS ?? 1_000_000)
const batchSize = process.env.BENCH_BATCH ? Number(process.env.BENCH_BATCH) : undefined
const group = 100_000
const schema = `bench_camp_${Date.now().toString(36)}`
const appid = 'wxbench000000000001'
const admin = postgresDatabase(url)
await sql`create schema ${sql.id(schema)}`.execute(admin)
const db = postgresDatabase(url, { schema, max: 2 })
const seconds = (ms: number) => (ms / 1000).toFixed(2)
const timed = async (name: string, fn: () => Promise<unknown>) => {
  const started = performance.now()
  await fn()
  const ms = performance.now() - started
  console.log(`${name}: ${seconds(ms)} s`)
  return ms
}
try {
  await migrateToLatest(db)
  const now = new Date('2026-11-25T02:00:00Z') // 10:00 in Shanghai
  await timed(`insert ${count.toLocaleString()} members`, async () => {
    await sql`
      insert into members (appid, openid, subscribed, first_seen_at, last_active_at,
        points_balance)
      select ${appid}, 'o_' || g, true, ${now}::timestamptz - interval '300 days',
        ${now}::timestamptz - make_interval(days => (100 + g % 100)::int), g % 500
      from generate_series(1, ${count}::bigint) g`.execute(db)
    await sql`insert into member_segments (member_id, appid, segment, since)
      select id, appid, 'active', ${now} from members`.execute(db)
    await sql`vacuum analyze members`.execute(db)
  })

  // Baseline: the rows the enqueue writes, written set-based.
  await sql`create table scratch_recipients (like campaign_recipients including all)`.execute(db)
  await sql`create table scratch_outbox (like push_outbox including all)`.execute(db)
  const baseline = await timed('baseline: the same rows written set-based', async () => {
    await sql`
      insert into scratch_recipients (campaign_id, slot, member_id, variant, outcome,
        outbox_source, link_code, target_url, enqueued_at)
      select 1, ${now}, id, 'A', 'enqueued', 'campaign:1:x', md5(id::text), 'https://shop.example/a',
        ${now}
      from members`.execute(db)
    await sql`
      insert into scratch_outbox (appid, source, openid, kind, payload, lane, next_attempt_at,
        created_at)
      select appid, 'campaign:1:x', openid, 'template',
        '{"template_id":"TPL_RECALL","data":{"thing1":{"value":"回归礼"},"number2":{"value":"' ||
        points_balance || '"}},"url":"https://quanzi.example/r/' || md5(id::text) || '"}', 2,
        ${now}, ${now}
      from members`.execute(db)
    await sql`update members set last_campaign_at = ${now}`.execute(db)
  })
  await sql`drop table scratch_recipients, scratch_outbox`.execute(db)
  await sql`update members set last_campaign_at = null`.execute(db)
  await sql`vacuum analyze members`.execute(db)

  await db
    .insertInto('campaigns')
    .values({
      appid,
      name: 'bench',
      status: 'scheduled',
      audience: JSON.stringify({ segment: 'active' }),
      variants: JSON.stringify([
        {
          key: 'A',
          weight: 50,
          template: {
            template_id: 'TPL_RECALL',
            data: { thing1: { value: '回归礼A' }, number2: { value: '{{points}}' } },
            url: 'https://shop.example/recall?v=A',
          },
        },
        {
          key: 'B',
          weight: 50,
          template: {
            template_id: 'TPL_RECALL',
            data: { thing1: { value: '回归礼B' }, number2: { value: '{{points}}' } },
            url: 'https://shop.example/recall?v=B',
          },
        },
      ]),
      run_at: now,
      created_at: now,
      updated_at: now,
    })
    .execute()
  const marks: number[] = []
  const started = performance.now()
  let last = started
  const result = await dispatchCampaigns(db, {
    slot: now,
    now,
    settings: {
      timeZone: 'Asia/Shanghai',
      capHours: 24,
      capSlackMinutes: 30,
      quietHours: null,
      publicBaseUrl: 'https://quanzi.example',
    },
    t: translator('zh-CN'),
    batchSize,
    leaseMs: 600_000,
    onBatch: ({ enqueued }) => {
      if (enqueued % group === 0 || enqueued === count) {
        const t = performance.now()
        marks.push(t - last)
        last = t
      }
    },
  })
  const total = performance.now() - started
  if (result.enqueued !== count) throw new Error(`enqueued ${result.enqueued}, not ${count}`)
  const first = marks[0]!
  console.log(
    `\n| members | seconds | × first 100k |\n|---|---:|---:|\n` +
      marks
        .map(
          (ms, i) =>
            `| ${(i * group).toLocaleString()}–${Math.min((i + 1) * group, count).toLocaleString()} | ${seconds(ms)} | ${(ms / first).toFixed(2)} |`,
        )
        .join('\n'),
  )
  const spread = Math.max(...marks.map((ms) => Math.abs(ms / first - 1)))
  console.log(
    `\nenqueue, ${count.toLocaleString()} members in batches of ${batchSize ?? 1000}: ${seconds(total)} s ` +
      `(${(total / baseline).toFixed(2)} × baseline ${seconds(baseline)} s); ` +
      `largest deviation from the first 100k: ${(spread * 100).toFixed(0)} %`,
  )

  // Conversions, steady state: a first mark sets the watermark, then 1,000 members are active.
  await sql`vacuum analyze`.execute(db)
  await markConversions(db, new Date(now.getTime() + 60_000))
  const later = new Date(now.getTime() + 3600_000)
  await sql`update members set last_active_at = ${later} where id % ${Math.max(1, Math.floor(count / 1000))} = 0`.execute(
    db,
  )
  const markAt = new Date(later.getTime() + 60_000)
  const plan = await sql<{ 'QUERY PLAN': string }>`explain
    with active as (
      select id, last_active_at, last_purchased_at from members where last_active_at > ${new Date(later.getTime() - 300_000)}
      union
      select id, last_active_at, last_purchased_at from members where last_purchased_at > ${new Date(later.getTime() - 300_000)}
    )
    select count(*) from campaign_recipients r join active a on r.member_id = a.id
    join campaigns c on c.id = r.campaign_id
    where r.outcome = 'enqueued' and r.converted_at is null
      and r.enqueued_at > ${markAt}::timestamptz - make_interval(days => 60)
      and r.enqueued_at > ${markAt}::timestamptz - make_interval(days => c.conversion_days)`.execute(
    db,
  )
  console.log(
    `\nplan of the incremental mark:\n${plan.rows.map((r) => r['QUERY PLAN']).join('\n')}`,
  )
  let converted = 0
  const incremental = await timed('mark conversions, incremental (1,000 active)', async () => {
    converted = await markConversions(db, markAt)
  })
  console.log(`(${converted} converted)`)
  const full = await timed('mark conversions, the previous full scan', () =>
    db
      .transaction()
      .execute(async (trx) => {
        await sql`
          update campaign_recipients r
          set converted_at = least(
            case when m.last_active_at > r.enqueued_at then m.last_active_at end,
            case when m.last_purchased_at > r.enqueued_at then m.last_purchased_at end)
          from members m, campaigns c
          where m.id = r.member_id and c.id = r.campaign_id
            and r.outcome = 'enqueued' and r.converted_at is null
            and r.enqueued_at > ${markAt}::timestamptz - make_interval(days => c.conversion_days)
            and (m.last_active_at > r.enqueued_at or m.last_purchased_at > r.enqueued_at)`.execute(
          trx,
        )
        throw new Error('rollback')
      })
      .catch(() => undefined),
  )
  console.log(`incremental / full: ${(incremental / full).toFixed(3)}`)
} finally {
  await db.destroy()
  await sql`drop schema ${sql.id(schema)} cascade`.execute(admin)
  await admin.destroy()
}
