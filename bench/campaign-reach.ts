/**
 * The campaign report's reach (distinct members, src/community/campaign-reach.ts) at 1,000,000
 * recipients on PostgreSQL, in a throw-away schema (or PGlite in memory: `BENCH_PGLITE=1`):
 *
 *   npm run bench:campaign-reach   # BENCH_RECIPIENTS=1000000 over BENCH_RUNS=4 weekly runs
 *
 * One A/B campaign, BENCH_RECIPIENTS / BENCH_RUNS members in each of BENCH_RUNS runs (one member in
 * ten changes variant from run to run; 90 % enqueued, their pushes 85 % sent, 5 % failed, the rest
 * queued; 3 % converted), written set-based. Then, in the same run: the **baseline**, the exact
 * count every view ran before (`campaignCounts`, the median of BENCH_EXACT_ROUNDS), the first whole
 * report view of the never-counted campaign (`campaignReportView`: no figures while the count
 * runs), and what a report view's reach costs now (`campaignReachShown`): the first view of a
 * never-counted campaign (it starts the
 * count in the background and says so), a view of fresh figures (the median and p95 of
 * BENCH_VIEWS), a view of stale figures (it starts a recount and answers the old figures), each as
 * a ratio to the baseline; the whole report view (`campaignReportView`, the funnel included) before
 * and after; and a check that the figures shown are the exact ones. Also the count (funnel and
 * reach) in one statement over the whole campaign against slices of COUNT_SLICE_ROWS recipients
 * (the total, and the longest statement). `BENCH_DATABASE_URL`: the
 * PostgreSQL to use (default the local test database).
 */
import { sql } from 'kysely'
import { campaignReportView } from '../src/admin/reads/campaign-views.js'
import {
  COUNT_SLICE_ROWS,
  campaignCounts,
  campaignCountsStatement,
  campaignReport,
  countSliceRows,
  recipientSlices,
} from '../src/community/campaign-counts.js'
import { campaignReachShown } from '../src/community/campaign-reach.js'
import { quotaPausedUntil } from '../src/community/campaigns.js'
import { migrateToLatest } from '../src/db/migrate.js'
import { pgliteDatabase } from '../src/db/open-database.js'
import { throwawaySchema } from './throwaway-schema.js'

const recipients = Number(process.env.BENCH_RECIPIENTS ?? 1_000_000)
const runs = Number(process.env.BENCH_RUNS ?? 4)
const exactRounds = Number(process.env.BENCH_EXACT_ROUNDS ?? 5)
const views = Number(process.env.BENCH_VIEWS ?? 50)
const members = Math.ceil(recipients / runs)
// As the server counts on this database: by slices on PGlite, in one statement on PostgreSQL.
const sliceRows = countSliceRows(Boolean(process.env.BENCH_PGLITE))
const appid = 'wxbench000000000001'
const { db, drop } = process.env.BENCH_PGLITE
  ? await pgliteDatabase().then((lite) => ({ db: lite, drop: () => lite.destroy() }))
  : await throwawaySchema('bench_reach', { max: 4 })
const ms = (x: number) => `${x.toFixed(1)} ms`
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.ceil(xs.length * 0.95) - 1]!
const time = async <T>(fn: () => Promise<T>): Promise<[number, T]> => {
  const started = performance.now()
  const value = await fn()
  return [performance.now() - started, value]
}
try {
  await migrateToLatest(db)
  const first = new Date('2026-11-02T02:00:00Z')
  const [built] = await time(async () => {
    await sql`
      insert into members (appid, openid, subscribed, first_seen_at)
      select ${appid}, 'o_' || g, true, ${first}::timestamptz - interval '300 days'
      from generate_series(1, ${members}::bigint) g`.execute(db)
    const { id } = await db
      .insertInto('campaigns')
      .values({
        appid,
        name: 'bench reach',
        status: 'scheduled',
        audience: JSON.stringify({ segment: 'active' }),
        variants: JSON.stringify([
          { key: 'A', weight: 50, template: { template_id: 'TPL', data: {} } },
          { key: 'B', weight: 50, template: { template_id: 'TPL', data: {} } },
        ]),
        schedule_cron: '0 10 * * 1',
        conversion_days: 7,
        created_at: first,
        updated_at: first,
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    for (let run = 0; run < runs; run++) {
      const slot = new Date(first.getTime() + run * 7 * 86_400_000)
      const source = `campaign:${id}:${slot.toISOString()}`
      await db
        .insertInto('campaign_runs')
        .values({
          campaign_id: id,
          slot,
          status: 'enqueued',
          lease_until: slot,
          created_at: slot,
          finished_at: slot,
        })
        .execute()
      // variant by member, one in ten flipped in odd runs; 90 % enqueued; 3 % converted
      await sql`
        insert into campaign_recipients (campaign_id, slot, member_id, variant, outcome,
          outbox_source, link_code, enqueued_at, converted_at)
        select ${id}, ${slot}, m.id,
          case when (m.id % 2 = 0) <> (${run} % 2 = 1 and m.id % 10 = 3) then 'A' else 'B' end,
          case when (m.id + ${run}) % 10 = 9 then 'capped' else 'enqueued' end,
          case when (m.id + ${run}) % 10 = 9 then null else ${source} end,
          case when (m.id + ${run}) % 10 = 9 then null else md5(m.id || ${source}) end,
          ${slot},
          case when (m.id * 7 + ${run}) % 100 < 3 and (m.id + ${run}) % 10 <> 9
            then ${slot}::timestamptz + interval '1 hour' end
        from members m`.execute(db)
      await sql`
        insert into push_outbox (appid, source, openid, kind, payload, lane, status,
          next_attempt_at, created_at, sent_at)
        select ${appid}, ${source}, m.openid, 'template', '{"template_id":"TPL","data":{}}', 2,
          case when (m.id * 3 + ${run}) % 100 < 85 then 'sent'
            when (m.id * 3 + ${run}) % 100 < 90 then 'failed' else 'pending' end,
          ${slot}, ${slot},
          case when (m.id * 3 + ${run}) % 100 < 85 then ${slot}::timestamptz end
        from members m where (m.id + ${run}) % 10 <> 9`.execute(db)
    }
    await sql`vacuum analyze`.execute(db)
    return id
  })
  const id = (await db.selectFrom('campaigns').select('id').executeTakeFirstOrThrow()).id
  const campaign = await db
    .selectFrom('campaigns')
    .selectAll()
    .where('id', '=', id)
    .executeTakeFirstOrThrow()
  const { n } = await db
    .selectFrom('campaign_recipients')
    .select((e) => e.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow()
  console.log(
    `built ${Number(n).toLocaleString()} recipients (${members.toLocaleString()} members × ${runs} runs) in ${(built / 1000).toFixed(1)} s`,
  )

  // Baseline: the exact count every view ran before.
  const exact: number[] = []
  let truth = (await campaignCounts(db, id, sliceRows)).reach
  for (let i = 0; i < exactRounds; i++) {
    const [t, r] = await time(() => campaignCounts(db, id, sliceRows))
    exact.push(t)
    truth = r.reach
  }
  const baseline = median(exact)
  console.log(
    `baseline, the exact count (campaignCounts: funnel and reach): median ${ms(baseline)} of ${exactRounds} (${exact.map((x) => x.toFixed(0)).join(', ')})`,
  )
  const ratio = (x: number) => `${(x / baseline).toFixed(4)} × baseline`

  // The count (funnel and reach) in one statement over the whole campaign against slices of
  // COUNT_SLICE_ROWS recipients: the total and the longest statement (on PGlite a statement holds
  // the server's one thread; every push waits behind it).
  const whole = Number.MAX_SAFE_INTEGER
  const oneStatement: number[] = []
  const sliced: number[] = []
  for (let i = 0; i < 3; i++) {
    for (const [times, rows] of [
      [oneStatement, whole],
      [sliced, COUNT_SLICE_ROWS],
    ] as const)
      times.push((await time(() => campaignCounts(db, id, rows)))[0])
  }
  let longest = 0
  let slices = 0
  for await (const slice of recipientSlices(db, id)) {
    slices++
    longest = Math.max(
      longest,
      (await time(() => campaignCountsStatement(id, slice).execute(db)))[0],
    )
  }
  console.log(
    `the count (funnel + reach): in one statement ${ms(median(oneStatement))}, by ${slices} slices of ≤ ${COUNT_SLICE_ROWS.toLocaleString()} recipients ${ms(median(sliced))} (${(median(sliced) / median(oneStatement)).toFixed(2)} ×; medians of 3, alternated); the longest sliced statement ${ms(longest)}`,
  )

  // The first whole report view of a never-counted campaign: it starts the count in the
  // background and shows no figures while it runs; before session 33 it counted the funnel on the
  // spot meanwhile (campaignReport, timed below), and the background count counted it again.
  const background: Promise<unknown>[] = []
  const waitUntil = (p: Promise<unknown>) => void background.push(p)
  let now = new Date('2026-12-01T02:00:00Z')
  const [firstReport, report] = await time(() =>
    campaignReportView(db, campaign, now, { waitUntil, sliceRows }),
  )
  await Promise.all(background.splice(0))
  console.log(
    `first whole report view (never counted): ${ms(firstReport)} = ${ratio(firstReport)}; counting: ${report.counting}, ${report.variants.length} variants shown`,
  )
  // The same campaign never counted again, for the reach's own first view.
  await db.deleteFrom('campaign_reach').where('campaign_id', '=', id).execute()
  const [firstView, shownFirst] = await time(() =>
    campaignReachShown(db, id, { now, waitUntil, sliceRows }),
  )
  const [recount] = await time(() => Promise.all(background.splice(0)))
  console.log(
    `first view (never counted): ${ms(firstView)} = ${ratio(firstView)}; figures ${shownFirst.reach ? 'shown' : 'null (being counted)'}, then the background count took ${ms(recount)}`,
  )

  // Views of fresh figures.
  const fresh: number[] = []
  let shown = shownFirst
  for (let i = 0; i < views; i++) {
    now = new Date(now.getTime() + 500)
    const [t, r] = await time(() => campaignReachShown(db, id, { now, waitUntil, sliceRows }))
    fresh.push(t)
    shown = r
  }
  if (background.length > 0) throw new Error('a fresh view started a recount')
  if (JSON.stringify(shown.reach) !== JSON.stringify(truth)) throw new Error('figures differ')
  console.log(
    `view, fresh figures: median ${ms(median(fresh))} = ${ratio(median(fresh))}, p95 ${ms(p95(fresh))} = ${ratio(p95(fresh))} (${views} views); figures equal the exact count`,
  )

  // A view of stale figures: answers them, starts one recount; views meanwhile start none.
  now = new Date(now.getTime() + 120_000)
  const [staleView, stale] = await time(() =>
    campaignReachShown(db, id, { now, waitUntil, sliceRows }),
  )
  const during: number[] = []
  for (let i = 0; i < 5; i++) {
    const [t] = await time(() => campaignReachShown(db, id, { now, waitUntil, sliceRows }))
    during.push(t)
  }
  const recounts = background.length
  await Promise.all(background.splice(0))
  console.log(
    `view, stale figures: ${ms(staleView)} = ${ratio(staleView)} (answered as of ${stale.asOf?.toISOString()}, refreshing: ${stale.refreshing}); views during the recount: median ${ms(median(during))}; recounts started: ${recounts}`,
  )

  // The whole report view, before (funnel + exact reach, both counted) and after (both as last
  // counted: the funnel's counts are kept with the reach since migration 0089).
  const before: number[] = []
  const after: number[] = []
  for (let i = 0; i < 3; i++) {
    const [b] = await time(async () => {
      await quotaPausedUntil(db, appid, now)
      await campaignReport(db, id, sliceRows)
      await campaignCounts(db, id, sliceRows)
    })
    before.push(b)
    const [a] = await time(() => campaignReportView(db, campaign, now, { waitUntil, sliceRows }))
    after.push(a)
  }
  const [funnel] = await time(() => campaignReport(db, id, sliceRows))
  console.log(
    `whole report view (campaignReportView): before ${ms(median(before))}, after ${ms(median(after))} (${(median(after) / median(before)).toFixed(3)} ×); the per-push funnel counted alone (campaignReport, what a view ran before 0089) ${ms(funnel)}`,
  )
} finally {
  await drop()
}
