/**
 * A campaign's statements over its recipients and their outbox items, on tables the planner knows
 * nothing about — a campaign's first run on PGlite, which has no autovacuum, or any table not
 * analyzed yet. Every outbox item of a run shares its `source`: joined on it alone, a run to N
 * members reads N × N rows (a soak of the default install: the minute's conversion marking read
 * 55 million rows for 7,448 recipients, and each view of the campaign's report 5 s, the server's
 * one thread stalled meanwhile). Counted, not timed: `EXPLAIN ANALYZE` of the statements, rolled
 * back, and no plan node may produce more rows than a few per recipient: the conversion marking,
 * the report and reach, the day's campaign figures (analytics) and a retention batch.
 */
import { type RawBuilder, sql } from 'kysely'
import { expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { analyzedPlan, mostRows, statementsOf } from '../../test/plan-rows.js'
import { campaigns as campaignFigures } from '../analytics/families/campaigns.js'
import { campaignCountsStatement, type RecipientSlice, recipientSlices } from './campaign-counts.js'
import { claimReachRecount, recountReach } from './campaign-reach.js'
import { conversionsStatement, markConversions, redemptionsStatement } from './campaign-report.js'
import { rollUpBatchStatement } from './campaign-retention.js'

/** Recipients of the one campaign run (enough for N × N to stand far above any linear plan). */
const N = 2_000

forEachDatabase('campaign statements without planner statistics', (get, dbName) => {
  it('read rows in proportion to the recipients, not recipients × items of the run', async () => {
    const { db } = get()
    const appid = `wxconvplan${dbName.padEnd(8, '0')}`
    const sent = new Date('2026-12-06T01:00:00Z')
    const active = new Date('2026-12-06T01:05:00Z')
    const now = new Date('2026-12-06T01:10:00Z')
    const { id: campaignId } = await db
      .insertInto('campaigns')
      .values({
        appid,
        name: 'plan',
        status: 'running',
        audience: '{}',
        variants: '[]',
        schedule_cron: null,
        run_at: sent,
        created_at: sent,
        updated_at: sent,
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    const source = `campaign:${campaignId}:${sent.toISOString()}`
    await db
      .insertInto('campaign_runs')
      .values({
        campaign_id: Number(campaignId),
        slot: sent,
        status: 'enqueued',
        lease_until: sent,
        created_at: sent,
        finished_at: sent,
      })
      .execute()
    const members = await db
      .insertInto('members')
      .values(
        Array.from({ length: N }, (_, i) => ({
          appid,
          openid: `o_conv_${i}`,
          subscribed: true,
          first_seen_at: sent,
          last_active_at: active,
        })),
      )
      .returning(['id', 'openid'])
      .execute()
    await db
      .insertInto('campaign_recipients')
      .values(
        members.map((m) => ({
          campaign_id: Number(campaignId),
          slot: sent,
          member_id: m.id,
          variant: 'a',
          outcome: 'enqueued' as const,
          outbox_source: source,
          enqueued_at: sent,
        })),
      )
      .execute()
    await db
      .insertInto('push_outbox')
      .values(
        members.map((m) => ({
          appid,
          source,
          openid: m.openid,
          kind: 'template' as const,
          payload: '{}',
          lane: 2 as const,
          status: 'pending' as const,
          next_attempt_at: sent,
          created_at: sent,
          sent_at: sent,
        })),
      )
      .execute()
    // Sent as the outbox sends: claimed, then sent (each an update, as under the outbox).
    await db
      .updateTable('push_outbox')
      .set({ status: 'sending' })
      .where('source', '=', source)
      .execute()
    await db
      .updateTable('push_outbox')
      .set({ status: 'sent', sent_at: sent, wechat_msgid: sql`'m' || id` })
      .where('source', '=', source)
      .execute()
    // Half of them delivered, by a receipt that raced the send's result write (only in
    // push_receipts, as the report and the day's figures read it).
    await sql`insert into push_receipts (appid, msgid, status, received_at)
      select appid, wechat_msgid, 'success', ${active}::timestamptz from push_outbox
      where source = ${source} and id % 2 = 0`.execute(db)
    // Half of them redeemed a reward after the push.
    const { id: rewardId } = await db
      .insertInto('rewards')
      .values({
        appid,
        code: 1,
        name: 'plan',
        cost: 1,
        stock: null,
        per_member_limit: null,
        created_at: sent,
        cashback_fen: null,
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    await db
      .insertInto('redemptions')
      .values(
        members
          .filter((_, i) => i % 2 === 0)
          .map((m, i) => ({
            appid,
            member_id: m.id,
            reward_id: Number(rewardId),
            cost: 1,
            code: `R${i}`,
            status: 'issued' as const,
            created_at: active,
            cancelled_at: null,
            request_key: null,
          })),
      )
      .execute()

    // As on a server at a run's first minutes: its maintenance has analyzed the members, not yet
    // the run's fresh tables (PGlite has no autovacuum; PostgreSQL's comes after enough changes).
    await sql`analyze members`.execute(db)
    const since = new Date(sent.getTime() - 60_000)
    const plan = (statement: RawBuilder<unknown>) => analyzedPlan(db, statement)
    expect(mostRows(await plan(conversionsStatement(since, now)))).toBeLessThanOrEqual(5 * N)
    expect(mostRows(await plan(redemptionsStatement(since, now)))).toBeLessThanOrEqual(5 * N)
    const id = Number(campaignId)
    // The report and reach, counted slice by slice: each statement reads rows in proportion to
    // its slice — the whole run in one, and a tenth of it in each of ten (not the run: on PGlite
    // a statement holds the server's one thread, so a count of a large campaign goes by slices).
    const slicesOf = async (rows: number) => {
      const all: RecipientSlice[] = []
      for await (const slice of recipientSlices(db, id, rows)) all.push(slice)
      return all
    }
    // one statement (PostgreSQL: joins), one slice of it all (PGlite: probes)
    const [whole, ...none] = await slicesOf(Number.POSITIVE_INFINITY)
    expect([whole?.whole, none]).toEqual([true, []])
    const [all, ...more] = await slicesOf(N)
    expect([all?.whole, more]).toEqual([false, []])
    for (const slice of [whole!, all!])
      expect(mostRows(await plan(campaignCountsStatement(id, slice)))).toBeLessThanOrEqual(5 * N)
    const slices = await slicesOf(N / 10)
    expect(slices).toHaveLength(10)
    for (const slice of slices)
      expect(mostRows(await plan(campaignCountsStatement(id, slice)))).toBeLessThanOrEqual(N / 2)
    // …and so does every statement of a whole recount, finding the slices included (one
    // statement over the whole run before: every recipient, and every push held behind it).
    await claimReachRecount(db, id, { now, maxAgeMs: 0, leaseMs: 0 })
    const recount = await statementsOf(db, (d) => recountReach(d, id, now, { sliceRows: N / 10 }))
    expect(recount.length).toBeGreaterThan(10)
    for (const statement of recount)
      expect(mostRows(await analyzedPlan(db, statement))).toBeLessThanOrEqual(N / 2)
    // The day's campaign figures (analytics: today's, read live while the run goes on).
    const day = { appid, day: '2026-12-06', timeZone: 'UTC', dau: 0 }
    expect(mostRows(await plan(campaignFigures.query(day)))).toBeLessThanOrEqual(5 * N)
    // A retention batch (campaign-retention.ts): at the real size (5,000, here the whole run), and
    // smaller than the run — rows in proportion to the batch, not the run's recipients × batch.
    expect(mostRows(await plan(rollUpBatchStatement(id, sent, 5_000)))).toBeLessThanOrEqual(5 * N)
    const batch = N / 4
    expect(mostRows(await plan(rollUpBatchStatement(id, sent, batch)))).toBeLessThanOrEqual(
      5 * batch,
    )
    // …the figures count every push (all sent, half delivered by a raced receipt)…
    const { rows: figures } = await campaignFigures.query(day).execute(db)
    const total = (metric: string) =>
      figures.find((f) => f.metric === `campaigns.${metric}` && f.dim === '')?.value
    expect([total('sent'), total('delivered'), total('quota_used')]).toEqual([N, N / 2, N])
    // …and the marking itself converts every recipient, and marks the redemptions.
    expect(await markConversions(db, now)).toBe(N)
    const { n } = await db
      .selectFrom('campaign_recipients')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('campaign_id', '=', Number(campaignId))
      .where('redeemed_at', 'is not', null)
      .executeTakeFirstOrThrow()
    expect(Number(n)).toBe(N / 2)
    // Last, the tables analyzed: the recount's statements still read rows in proportion to their
    // slice — with statistics the planner hashed the whole outbox (and the members) for each slice
    // of a count, 180,000 items read for 10,000 recipients (bench/README.md, session 34).
    await sql`analyze`.execute(db)
    for (const statement of recount)
      expect(mostRows(await analyzedPlan(db, statement))).toBeLessThanOrEqual(N / 2)
    // (one slice of the whole run on PGlite probes too: joined, it would hash the whole outbox)
    expect(mostRows(await plan(campaignCountsStatement(id, all!)))).toBeLessThanOrEqual(5 * N)
  })
})
