/**
 * Analytics at scale on PostgreSQL (issue #16 targets), in a throw-away schema:
 *
 *   npm run bench:analytics      # BENCH_MEMBERS=1000000, BENCH_DAYS=90 by default
 *
 * Generates one account with BENCH_MEMBERS members, BENCH_DAYS days of activity (≈ 20 % daily
 * active; check-ins for the last 35 days, all the nightly build reads), ≈ 5 ledger entries per member, one day of inbound messages, 50,000 paid orders and the
 * follow events; then measures (1) the nightly rollup of the last day, next to a baseline measured
 * in the same run (one count over that day's member_days), and (2) the overview, series and
 * invite/cohort-free endpoints' latency at 10 concurrent requests (autocannon, in the same process
 * as the app — the load generator shares the CPU, so the figures are pessimistic).
 * 200 campaigns with 5,000 recipients each are generated for the campaigns endpoint.
 */
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import autocannon from 'autocannon'
import { sql } from 'kysely'
import { createRouter } from '../handlers/index.js'
import { buildCohortCells } from '../src/analytics/cohorts.js'
import { buildDay } from '../src/analytics/rollup.js'
import { createApp } from '../src/app.js'
import { addDays } from '../src/community/community-time.js'
import { loadConfig } from '../src/config.js'
import { addOperator } from '../src/console/operators.js'
import { createSession } from '../src/console/sessions.js'
import { migrateToLatest } from '../src/db/migrate.js'
import { postgresDatabase } from '../src/db/postgres.js'
import { createLogger } from '../src/logger.js'

const url = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const members = Number(process.env.BENCH_MEMBERS ?? 1_000_000)
const days = Number(process.env.BENCH_DAYS ?? 90)
const appid = 'wxbench00000000001'
const tz = 'Asia/Shanghai'
const lastDay = '2026-11-30'
const firstDay = addDays(lastDay, -(days - 1))
// BENCH_SCHEMA=<name> keeps the dataset in that schema: generated on the first run, reused after,
// so a change to the nightly build is measured again without regenerating (≈ 30 min at 1M).
const kept = process.env.BENCH_SCHEMA
const schema = kept ?? `bench_an_${Date.now().toString(36)}`
const admin = postgresDatabase(url)
const generated =
  kept !== undefined &&
  (
    await sql<{ n: number }>`select count(*)::int as n from information_schema.tables
      where table_schema = ${kept} and table_name = 'bench_generated'`.execute(admin)
  ).rows[0]?.n === 1
await sql`create schema if not exists ${sql.id(schema)}`.execute(admin)
// BENCH_PROFILE=1: the nightly's statements, slowest first, after its timing.
const statements: { ms: number; sql: string }[] = []
const db = postgresDatabase(url, {
  schema,
  max: 10,
  log: process.env.BENCH_PROFILE
    ? (e) => {
        if (e.level === 'query') statements.push({ ms: e.queryDurationMillis, sql: e.query.sql })
      }
    : undefined,
})
const printSlowest = (n: number) => {
  for (const st of [...statements].sort((a, b) => b.ms - a.ms).slice(0, n))
    console.log(`${st.ms.toFixed(0).padStart(6)} ms  ${st.sql.replace(/\s+/g, ' ').slice(0, 200)}`)
}
const rows: [string, number, string][] = []
const timed = async (name: string, fn: () => Promise<unknown>) => {
  const started = performance.now()
  await fn()
  const ms = performance.now() - started
  console.log(`${name}: ${(ms / 1000).toFixed(2)} s`)
  return ms
}
try {
  await migrateToLatest(db)
  const today = addDays(lastDay, 1)
  if (!generated) {
    await timed(`generate ${members.toLocaleString()} members, ${days} days`, async () => {
      await sql`
        insert into members (appid, openid, subscribed, subscribed_at, first_seen_at, last_active_at,
          points_balance, points_lifetime)
        select ${appid}, 'o_' || g, g % 13 <> 0,
          ${firstDay}::date - 30 + (g % (${days} + 30)) * interval '1 day' + interval '2 hours',
          ${firstDay}::date - 30 + (g % (${days} + 30)) * interval '1 day' + interval '2 hours',
          ${lastDay}::date + interval '1 hour', g % 500, g % 500
        from generate_series(1, ${members}::bigint) g`.execute(db)
      await sql`insert into follow_events (appid, member_id, at, day, kind, scene, source)
        select appid, id, subscribed_at, (subscribed_at at time zone ${tz})::date, 'follow',
          case when id % 5 = 0 then 'inv_ABCDEFGH' end,
          case when id % 5 = 0 then 'invite' when id % 7 = 0 then 'qr' else 'organic' end
        from members`.execute(db)
      await sql`insert into follow_events (appid, member_id, at, day, kind, scene, source)
        select appid, id, subscribed_at + interval '20 days',
          ((subscribed_at + interval '20 days') at time zone ${tz})::date, 'unfollow', null, 'organic'
        from members where not subscribed`.execute(db)
      // ≈ 20 % of members active each day (a member is active on days d where (id + d) % 5 = 0)
      await sql`insert into member_days (appid, day, member_id, kinds)
        select ${appid}, d::date, m.id, (1 + (m.id % 2) * 2)::smallint
        from generate_series(${firstDay}::date, ${lastDay}::date, interval '1 day') d
        join members m on (m.id + extract(doy from d)::int) % 5 = 0`.execute(db)
      await sql`insert into checkins (member_id, day, appid, streak, points, created_at)
        select member_id, day, appid, 1 + (member_id % 40)::int, 10,
          day::timestamp at time zone ${tz} + interval '9 hours'
        from member_days where kinds & 2 <> 0 and day > ${lastDay}::date - 35`.execute(db)
      // ≈ 5 ledger entries per member, spread over the days
      await sql`insert into points_ledger (appid, member_id, delta, rule, idempotency_key,
          balance_after, earned, day, created_at)
        select ${appid}, m.id, case when k = 5 then -3 else 10 end,
          case when k = 5 then 'redeem' when k = 1 then 'checkin' else 'daily_login' end,
          'b:' || m.id || ':' || k, 10, case when k = 5 then 0 else 10 end,
          ${firstDay}::date + ((m.id * k) % ${days})::int,
          (${firstDay}::date + ((m.id * k) % ${days})::int)::timestamp at time zone ${tz}
        from members m, generate_series(1, 5) k`.execute(db)
      await sql`insert into inbound_events (appid, dedupe_key, openid, msg_type, event, status,
          received_at)
        select ${appid}, 'msg:' || id, openid, 'text', null, 'replied',
          ${lastDay}::timestamp at time zone ${tz} + (id % 86400) * interval '1 second'
        from members where id % 3 = 0`.execute(db)
      await sql`insert into products (appid, sku, kind, name, price_fen, stock, created_at)
        values (${appid}, 'bench-gift', 'flash_sale', '礼品', 9900, null, now())`.execute(db)
      // 50,000 paid orders over the days (≈ 550 a day)
      await sql`insert into orders (appid, out_trade_no, member_id, mp_openid, product_id, kind,
          description, amount_fen, status, expires_at, created_at, paid_at, paid_total_fen)
        select ${appid}, 'B' || g, (g * 7919) % ${members} + 1, 'o_mp_' || g,
          (select id from products limit 1), 'flash_sale', '礼品', 9900, 'paid', now(), now(),
          ${firstDay}::timestamp at time zone ${tz} + (g % (${days} * 86400)) * interval '1 second',
          9900
        from generate_series(1, 50000) g`.execute(db)
      // 200 campaigns of two variants over the days, 5,000 recipients each (1M recipient rows,
      // those older than 61 days pruned into campaign_rollups)
      await sql`insert into campaigns (appid, name, status, audience, variants, run_at,
          created_at, updated_at)
        select ${appid}, 'bench campaign ' || g, 'finished', '{}',
          '[{"key":"a","weight":1,"template":{"template_id":"T","data":{}}},{"key":"b","weight":1,"template":{"template_id":"T","data":{}}}]',
          ${firstDay}::timestamp at time zone ${tz} + ((g * ${days}) / 200) * interval '1 day'
            + interval '10 hours', now(), now()
        from generate_series(1, 200) g`.execute(db)
      await sql`insert into campaign_runs (campaign_id, slot, status, lease_until, created_at,
          finished_at)
        select id, run_at, 'enqueued', run_at, run_at, run_at from campaigns`.execute(db)
      await sql`insert into campaign_recipients (campaign_id, slot, member_id, variant, outcome,
          enqueued_at, clicks, clicked_at, converted_at)
        select c.id, c.run_at, (c.id * 4999 + k) % ${members} + 1,
          case when k % 2 = 0 then 'a' else 'b' end,
          case when k % 50 = 0 then 'capped' else 'enqueued' end, c.run_at,
          case when k % 9 = 0 then 1 else 0 end,
          case when k % 9 = 0 then c.run_at + interval '1 hour' end,
          case when k % 40 = 0 then c.run_at + interval '1 day' end
        from campaigns c, generate_series(1, 5000) k`.execute(db)
      await sql`insert into campaign_rollups (campaign_id, slot, variant, audience, enqueued, capped,
          opted_out, unreachable, sent, failed, delivered, clicked, converted)
        select campaign_id, slot, variant, count(*), count(*) filter (where outcome = 'enqueued'),
          count(*) filter (where outcome = 'capped'), 0, 0,
          count(*) filter (where outcome = 'enqueued'), 0,
          count(*) filter (where outcome = 'enqueued'), count(clicked_at), count(converted_at)
        from campaign_recipients where slot < ${lastDay}::date - 61
        group by campaign_id, slot, variant`.execute(db)
      // Recipients older than the retention (≥ 61 days) are pruned into rollups, as in production.
      await sql`delete from campaign_recipients where slot < ${lastDay}::date - 61`.execute(db)
      await sql`update campaign_runs set pruned_at = slot + interval '61 days'
        where slot < ${lastDay}::date - 61`.execute(db)
      await sql`analyze`.execute(db)
    })
    // The 30 nights before, as the job ran them (the series read them; the cohorts are incremental).
    await timed('the 30 nights before (not measured)', async () => {
      for (let d = addDays(lastDay, -30); d < lastDay; d = addDays(d, 1)) {
        await buildDay(db, { appid, day: d, timeZone: tz, now: new Date(), today })
        await buildCohortCells(db, { appid, day: d, timeZone: tz })
      }
    })
    await sql`create table bench_generated (at timestamptz default now())`.execute(db)
  }
  const baseline = await timed('baseline: count one day of member_days', async () => {
    await sql`select count(*) from member_days where appid = ${appid} and day = ${lastDay}::date`.execute(
      db,
    )
  })
  rows.push(['baseline: count one day of member_days', baseline, '1.00'])
  // What the nightly job does for a day (jobs/analytics-rollup.ts): the rollup, then the cohorts.
  // On a kept dataset (BENCH_SCHEMA) the last day is already built: both runs are rebuilds, and
  // BENCH_NIGHTLY=0 skips them to time only the endpoints.
  const nightlyJob = async () => {
    await buildDay(db, { appid, day: lastDay, timeZone: tz, now: new Date(), today })
    await buildCohortCells(db, { appid, day: lastDay, timeZone: tz })
  }
  if (process.env.BENCH_NIGHTLY !== '0') {
    statements.length = 0
    const nightly = await timed('nightly rollup of the last day (+ cohort cells)', nightlyJob)
    printSlowest(15)
    rows.push(['nightly rollup of one day', nightly, (nightly / baseline).toFixed(1)])
    const again = await timed('the same day rebuilt', nightlyJob)
    rows.push(['the same day rebuilt', again, (again / baseline).toFixed(1)])
  }

  const now = new Date(`${today}T04:00:00+08:00`)
  const app = createApp({
    config: loadConfig({
      WECHAT_APPID: appid,
      WECHAT_TOKEN: 'benchtoken',
      ADMIN_TOKEN: 'bench-admin-token-000001',
      QUANZI_TIME_ZONE: tz,
    }),
    db,
    router: createRouter(),
    logger: createLogger({ level: 'error' }),
    clock: { now: () => now },
  })
  // An operator's session for the console pages (first render, issue #17: ≤ 300 ms).
  const operator =
    (await db
      .selectFrom('operators')
      .select('id')
      .where('name', '=', 'bench')
      .executeTakeFirst()) ??
    (await addOperator(db, { name: 'bench', role: 'owner', password: 'bench-password-1', now }))
  const session = await createSession(db, { operatorId: operator.id, now })
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' })
  await new Promise((r) => server.once('listening', r))
  const port = (server.address() as AddressInfo).port
  const endpoints = [
    ['overview', '/admin/api/analytics/overview'],
    ['series: DAU, 30 days', `/admin/api/analytics/series?metric=activity.dau&to=${lastDay}`],
    [
      'series: new followers by week, 90 days',
      `/admin/api/analytics/series?metric=followers.new&from=${firstDay}&to=${lastDay}&granularity=week`,
    ],
    ['cohorts: by day, 30 days', `/admin/api/analytics/cohorts?to=${lastDay}`],
    [
      'cohorts: by week, invite source, 90 days',
      `/admin/api/analytics/cohorts?grain=week&source=invite&from=${firstDay}&to=${lastDay}`,
    ],
    ['fits: growth and retention', `/admin/api/analytics/fits?to=${lastDay}`],
    [
      'campaigns: 90 days (200 campaigns, 1M recipients)',
      `/admin/api/analytics/campaigns?from=${firstDay}&to=${lastDay}`,
    ],
  ]
  const pages = [
    ['console 概览', '/console'],
    ['console 会员: search by openid', '/console/members?q=o_123457'],
    ['console member page', '/console/members/o_123457'],
    ['console 留存与分层', '/console/retention'],
    ['console 邀请裂变', '/console/invites'],
    ['console 推送 (200 campaigns)', '/console/campaigns'],
  ]
  const cookie = `qz_session=${session.token}`
  console.log('\n| console page | first render ms | HTML KB |\n|---|---:|---:|')
  for (const [name, path] of pages) {
    statements.length = 0
    const started = performance.now()
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers: { cookie } })
    const html = await res.text()
    const ms = performance.now() - started
    if (res.status !== 200) throw new Error(`${path} answered ${res.status}`)
    console.log(`| ${name} | ${ms.toFixed(0)} | ${(Buffer.byteLength(html) / 1024).toFixed(1)} |`)
    if (process.env.BENCH_PROFILE) printSlowest(5)
  }
  console.log('\n| endpoint (10 connections, 5 s) | req/s | p50 ms | p90 ms | p97.5 ms | errors |')
  console.log('|---|---:|---:|---:|---:|---:|')
  for (const [name, path] of endpoints) {
    if (process.env.BENCH_PROFILE) {
      statements.length = 0
      const started = performance.now()
      await fetch(`http://127.0.0.1:${port}${path}`, {
        headers: { authorization: 'Bearer bench-admin-token-000001' },
      }).then((r) => r.arrayBuffer())
      console.log(`${name}: one request ${(performance.now() - started).toFixed(0)} ms`)
      printSlowest(5)
    }
    const r = await autocannon({
      url: `http://127.0.0.1:${port}${path}`,
      connections: 10,
      duration: 5,
      headers: { authorization: 'Bearer bench-admin-token-000001' },
    })
    console.log(
      `| ${name} | ${Math.round(r.requests.average)} | ${r.latency.p50} | ${r.latency.p90} | ${r.latency.p97_5} | ${r.non2xx + r.errors} |`,
    )
  }
  // Requests autocannon left in flight end before the database closes.
  ;(server as unknown as { closeAllConnections(): void }).closeAllConnections()
  await new Promise((r) => server.close(r))
  // Handlers autocannon abandoned may still be querying: let them end before the pool closes.
  await new Promise((r) => setTimeout(r, 2000))
  console.log('\n| run | seconds | × baseline |\n|---|---:|---:|')
  for (const [name, ms, ratio] of rows)
    console.log(`| ${name} | ${(ms / 1000).toFixed(2)} | ${ratio} |`)
} finally {
  await db.destroy()
  if (kept === undefined) await sql`drop schema ${sql.id(schema)} cascade`.execute(admin)
  await admin.destroy()
}
