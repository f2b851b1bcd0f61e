/**
 * The outbox's claim right after a campaign run was enqueued, on tables the planner knows nothing
 * about yet (a fresh table on PGlite, which has no autovacuum; or statistics taken before the run,
 * when the outbox held no backlog). A soak of the default install (bench/README.md, session 31)
 * saw the first claims of a 3,400-item run take 182–287 ms, the server's one thread stalled: the
 * planner, believing the backlog empty, read the whole backlog once per candidate — to find each
 * candidate by its key and to probe its member's earlier items — N × batch rows per claim (an
 * N-member run, N² / batch in all). Counted, not timed: `EXPLAIN ANALYZE` of the claim's
 * statements, rolled back; the first reads rows in proportion to the batch whatever the backlog
 * and the statistics, and the second (members' heads, when the first's window was full) in
 * proportion to the backlog it groups, never backlog × batch.
 */
import { sql } from 'kysely'
import { expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { analyzedPlan, mostRows } from '../../test/plan-rows.js'
import { translator } from '../bot/i18n.js'
import { dispatchCampaigns } from './campaigns.js'
import {
  type ClaimRequest,
  claim,
  claimFirstStatement,
  claimHeadsStatement,
  enqueue,
  LANE,
} from './outbox.js'

/** The dispatcher's default claim. */
const BATCH = 200

/** A claim of the campaign lane's batch at `now`, leased for a minute. */
const claimRequest = (appid: string, now: Date): ClaimRequest => ({
  appid,
  lane: LANE.campaign,
  limit: BATCH,
  token: 'plan',
  lease: new Date(now.getTime() + 60_000),
  now,
})

for (const N of [2_000, 8_000])
  for (const stats of ['never analyzed', 'analyzed before the run'] as const)
    forEachDatabase(`outbox claim of a fresh ${N}-item run, push_outbox ${stats}`, (get) => {
      it('reads rows in proportion to the batch, not the backlog × the batch', async () => {
        const { db } = get()
        const appid = 'wxclaimplan'
        const earlier = new Date('2026-12-05T01:00:00Z')
        const runAt = new Date('2026-12-06T01:00:00Z')
        const now = new Date('2026-12-06T01:10:00Z')
        await sql`insert into members (appid, openid, subscribed, first_seen_at, last_active_at)
          select ${appid}, 'o_claim_' || g, true, ${earlier}::timestamptz, ${earlier}::timestamptz
          from generate_series(1, ${N}) g`.execute(db)
        const run = (at: Date) =>
          Array.from({ length: N }, (_, i) => ({
            appid,
            source: `campaign:1:${at.toISOString()}`,
            openid: `o_claim_${i + 1}`,
            kind: 'template' as const,
            payload: { template_id: 't', data: {} },
            lane: LANE.campaign,
          }))
        if (stats === 'analyzed before the run') {
          // The day before's run, all sent, analyzed by the maintenance job: no backlog then.
          await enqueue(db, run(earlier), earlier)
          await db.updateTable('push_outbox').set({ status: 'sent', sent_at: earlier }).execute()
          await sql`analyze push_outbox`.execute(db)
        }
        // As on a server at a run's first minutes: the members analyzed, the run's items not yet.
        await sql`analyze members`.execute(db)
        expect(await enqueue(db, run(runAt), runAt)).toBe(N)
        const c = claimRequest(appid, now)
        const first = async () => mostRows(await analyzedPlan(db, claimFirstStatement(c)))
        const heads = async () => mostRows(await analyzedPlan(db, claimHeadsStatement(c, BATCH)))
        expect(await first()).toBeLessThanOrEqual(5 * BATCH + 50)
        expect(await heads()).toBeLessThanOrEqual(5 * N + 50)
        // …and once the maintenance job has analyzed the run.
        await sql`analyze push_outbox`.execute(db)
        expect(await first()).toBeLessThanOrEqual(5 * BATCH + 50)
        expect(await heads()).toBeLessThanOrEqual(5 * N + 50)
        // The claim itself takes a batch: one item per member, in queued order.
        const claimed = await claim(db, c)
        expect(claimed).toHaveLength(BATCH)
        expect(new Set(claimed.map((i) => i.openid)).size).toBe(BATCH)
        expect(claimed.every((i) => i.status === 'sending' && i.previous_attempt === null)).toBe(
          true,
        )
      })
    })

forEachDatabase('outbox claim order', (get) => {
  it('hands the claimed items over the longest due first, whatever their ids', async () => {
    const { db } = get()
    const appid = 'wxclaimorder'
    const now = new Date('2026-12-06T02:00:00Z')
    // Ids rise while the due times fall: item i (queued i-th) is due i + 1 minutes before now.
    const items = Array.from({ length: 20 }, (_, i) => ({
      appid,
      source: 'order',
      openid: `o_order_${i}`,
      kind: 'template' as const,
      payload: { template_id: 't', data: {} },
      lane: LANE.campaign,
    }))
    for (const [i, item] of items.entries())
      await enqueue(db, [item], new Date(now.getTime() - (i + 1) * 60_000))
    const claimed = await claim(db, {
      appid,
      lane: LANE.campaign,
      limit: 10,
      token: 'order',
      lease: new Date(now.getTime() + 60_000),
      now,
    })
    // The ten due longest (queued last), the longest due first.
    expect(claimed.map((i) => i.openid)).toEqual(
      items
        .slice(10)
        .reverse()
        .map((i) => i.openid),
    )
  })
})

forEachDatabase('outbox claim of a campaign run, push_outbox analyzed while empty', (get) => {
  it('reads rows in proportion to the batch: the run analyzes the outbox after its first batch', async () => {
    const { db } = get()
    const appid = 'wxclaimempty'
    // Below some 10,000 items the planner probes by the member's queue whatever it believes; at
    // 36,000 it read the backlog (bench/README.md, session 32).
    const N = 40_000
    const now = new Date('2026-12-06T02:00:00Z') // 10:00 in Shanghai: no quiet hours
    await sql`insert into members (appid, openid, subscribed, first_seen_at, last_active_at)
      select ${appid}, 'o_empty_' || g, true, ${now}::timestamptz - interval '30 days',
        ${now}::timestamptz - interval '1 day'
      from generate_series(1, ${N}) g`.execute(db)
    // An idle server's maintenance (or autovacuum) analyzed every table: the outbox was empty.
    await sql`analyze members, push_outbox`.execute(db)
    await db
      .insertInto('campaigns')
      .values({
        appid,
        name: 'empty',
        status: 'scheduled',
        audience: '{}',
        variants: JSON.stringify([
          {
            key: 'A',
            weight: 100,
            template: { template_id: 'T', data: { thing1: { value: 'x' } } },
          },
        ]),
        run_at: now,
        created_at: now,
        updated_at: now,
      })
      .execute()
    const run = await dispatchCampaigns(db, {
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
    })
    expect(run.enqueued).toBe(N)
    const c = claimRequest(appid, new Date(now.getTime() + 60_000))
    // Planned on the empty outbox's statistics, each candidate's member probe read the account's
    // whole backlog: N × batch rows.
    expect(mostRows(await analyzedPlan(db, claimFirstStatement(c)))).toBeLessThanOrEqual(
      5 * BATCH + 50,
    )
    expect(await claim(db, c)).toHaveLength(BATCH)
  })
})
