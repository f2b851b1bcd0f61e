/**
 * Segment recompute over 1,000,000 synthetic members on PostgreSQL (issue #20 target 5: first
 * compute ≤ 5 s, nightly ≤ 2 s), in a throw-away schema (`bench_sp_*`), next to two figures
 * measured in the same run:
 *   - the baseline: a plain full-table `update members set last_campaign_at = last_campaign_at`
 *     (the cost of writing every member row once);
 *   - the floor: the rows a first recompute must write and nothing else — one `member_segments`
 *     row and one `segment_transitions` row per member, into copies of the two tables with their
 *     indexes and identity (rolled back), straight from `members`, no segment computed, no join;
 *   - before (BENCH_BEFORE=0 skips it): the previous design's first recompute — the segment a
 *     column of `members` (indexed with appid), every change an `UPDATE members` and a transition
 *     checked against `members` by a foreign key — on the same members, in the same schema.
 *
 *   npm run bench:segments            # BENCH_MEMBERS=1000000 by default
 *
 * Runs: (1) the first recompute (every member gets a segment), (2) the nightly case a day later
 * with ~2 % of members active since, (3) an unchanged night. Prints the load average with them.
 */
import { loadavg } from 'node:os'
import { sql } from 'kysely'
import { DEFAULT_SEGMENT_THRESHOLDS, recomputeSegments } from '../src/community/segments.js'
import { migrateToLatest } from '../src/db/migrate.js'
import { insertSpreadMembers, throwawaySchema, timed } from './throwaway-schema.js'

/** Thrown to roll the previous design's run back. */
class RolledBack extends Error {}

const count = Number(process.env.BENCH_MEMBERS ?? 1_000_000)
const { db, drop } = await throwawaySchema('bench_sp')
const load = () => loadavg().map((x) => x.toFixed(1))
try {
  await migrateToLatest(db)
  const now = new Date('2026-11-25T03:30:00Z')
  await timed(`insert ${count.toLocaleString()} members`, () =>
    insertSpreadMembers(db, { appid: 'wxbench000000000001', prefix: 'o_', count, now }),
  )
  console.log(`load average ${load()}`)
  const baseline = await timed('baseline: touch every member once', async () => {
    await sql`update members set last_campaign_at = last_campaign_at`.execute(db)
    await sql`vacuum members`.execute(db)
  })
  const figures: [string, number][] = [['baseline: touch every member once', baseline]]
  if (process.env.BENCH_BEFORE !== '0') {
    // The previous design on the same members, rolled back: the segment in `members`.
    const before = await timed('before: first recompute with the segment in members', () =>
      db
        .transaction()
        .execute(async (trx) => {
          await sql`alter table members add column old_segment text,
            add column old_segment_since timestamptz`.execute(trx)
          await sql`create index members_old_segment_idx on members (appid, old_segment)`.execute(
            trx,
          )
          await sql`create table old_transitions (like segment_transitions including all)`.execute(
            trx,
          )
          await sql`alter table old_transitions add foreign key (member_id) references members (id)`.execute(
            trx,
          )
          await sql`with computed as (
              select m.id, m.appid, m.old_segment as previous,
                case when not m.subscribed and m.unsubscribed_at is not null then 'churned'
                  when coalesce(m.last_active_at, m.first_seen_at) <= ${now}::timestamptz - interval '90 days' then 'dormant'
                  when coalesce(m.last_active_at, m.first_seen_at) <= ${now}::timestamptz - interval '30 days' then 'at_risk'
                  when m.first_seen_at >= ${now}::timestamptz - interval '7 days' then 'new'
                  when m.purchase_count >= 2 then 'loyal' else 'active' end as segment
              from members m
            ), changed as (
              update members m set old_segment = c.segment, old_segment_since = ${now}
              from computed c where m.id = c.id and m.old_segment is distinct from c.segment
              returning m.id, m.appid, c.previous, c.segment
            ), recorded as (
              insert into old_transitions (appid, member_id, from_segment, to_segment, at)
              select appid, id, previous, segment, ${now} from changed
            )
            select count(*)::int from changed`.execute(trx)
          throw new RolledBack()
        })
        .catch((e) => {
          if (!(e instanceof RolledBack)) throw e
        }),
    )
    figures.push(['before: first recompute, segment in members (rolled back)', before])
    await sql`vacuum members`.execute(db)
  }
  // The floor: what a first recompute must write, written without computing anything.
  const floor = await timed("floor: write the first recompute's rows, nothing else", () =>
    db
      .transaction()
      .execute(async (trx) => {
        await sql`create table floor_segments (like member_segments including all)`.execute(trx)
        await sql`create table floor_transitions (like segment_transitions including all)`.execute(
          trx,
        )
        await sql`insert into floor_segments (member_id, appid, segment, since)
          select id, appid, 'active', ${now} from members`.execute(trx)
        await sql`insert into floor_transitions (appid, member_id, from_segment, to_segment, at)
          select appid, id, null, 'active', ${now} from members`.execute(trx)
        throw new RolledBack()
      })
      .catch((e) => {
        if (!(e instanceof RolledBack)) throw e
      }),
  )
  figures.push(["floor: the first recompute's rows alone (rolled back)", floor])
  const run = (at: Date) =>
    recomputeSegments(db, {
      now: at,
      thresholds: DEFAULT_SEGMENT_THRESHOLDS,
      timeZone: 'Asia/Shanghai',
    })
  console.log(`load average ${load()}`)
  const first = await timed('recompute, first (all members change)', () => run(now))
  await sql`vacuum analyze members, member_segments`.execute(db)
  const nextDay = new Date(now.getTime() + 86_400_000)
  const touched =
    await sql`update members set last_active_at = ${nextDay} where id % 50 = 0`.execute(db)
  console.log(`(${touched.numAffectedRows} members active again)`)
  await sql`vacuum analyze members`.execute(db)
  const nightly = await timed('recompute, next night (~2 % active since)', () => run(nextDay))
  const quiet = await timed('recompute, unchanged night', () => run(nextDay))
  console.log(`load average ${load()}`)
  figures.push(
    ['recompute, first (all change)', first],
    ['recompute, next night (~2 % active since)', nightly],
    ['recompute, unchanged night', quiet],
  )
  console.log(
    `\n| run | seconds | × baseline |\n|---|---:|---:|\n${figures
      .map(
        ([name, ms]) => `| ${name} | ${(ms / 1000).toFixed(2)} | ${(ms / baseline).toFixed(2)} |`,
      )
      .join('\n')}`,
  )
} finally {
  await drop()
}
