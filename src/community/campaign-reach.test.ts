/**
 * Reach as a report shows it (campaignReachShown): a large campaign's figures from the cache, as
 * of the time they were counted, recounted in the background when stale. Against the exact count
 * (campaignCounts, the count every view ran before) and a model in memory over random recipients,
 * runs, sends, conversions and roll-ups; and the recount's claim — one at a time per campaign,
 * however many views (and pools) ask at once; a dead one's claim taken over after its lease.
 */
import fc from 'fast-check'
import type { Kysely } from 'kysely'
import { expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { watchedStatements } from '../../test/plan-rows.js'
import type { Database } from '../db/schema.js'
import {
  type CampaignReach,
  campaignCounts,
  type MemberReach,
  type RecipientSlice,
  recipientSlices,
} from './campaign-counts.js'
import { campaignReachShown, claimReachRecount, recountReach } from './campaign-reach.js'
import type { VariantCounts } from './campaign-report.js'
import { rollUpBatchStatement } from './campaign-retention.js'

const APPID = 'wxreachcache000001'
const MEMBERS = 6
const T0 = new Date('2026-11-20T02:00:00Z')

/** One recipient of a run, as generated. */
interface Recipient {
  member: number
  variant: 'A' | 'B'
  outcome: 'enqueued' | 'capped'
  status: 'pending' | 'sent' | 'failed'
  converted: boolean
}
type Op =
  | { kind: 'run'; recipients: Recipient[] }
  | { kind: 'send'; pick: number }
  | { kind: 'convert'; pick: number }
  | { kind: 'prune' }
  | { kind: 'view'; advanceMs: number; settle: boolean }

const recipient = fc.record({
  member: fc.integer({ min: 0, max: MEMBERS - 1 }),
  variant: fc.constantFrom('A' as const, 'B' as const),
  outcome: fc.constantFrom('enqueued' as const, 'enqueued' as const, 'capped' as const),
  status: fc.constantFrom('pending' as const, 'sent' as const, 'failed' as const),
  converted: fc.boolean(),
})
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant('run' as const),
    // one row per member and run (the primary key)
    recipients: fc.uniqueArray(recipient, { selector: (r) => r.member, maxLength: MEMBERS }),
  }),
  fc.record({ kind: fc.constant('send' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('convert' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('prune' as const) }),
  fc.record({
    kind: fc.constant('view' as const),
    advanceMs: fc.integer({ min: 1, max: 90_000 }),
    settle: fc.boolean(),
  }),
)

/** The model's reach: members counted once per variant and once in all, over the kept runs. */
function modelReach(runs: Map<number, Recipient[]>, pruned: number): CampaignReach {
  const of = (variant: string | null): MemberReach => {
    const rows = [...runs.values()].flat().filter((r) => variant === null || r.variant === variant)
    const members = (keep: (r: Recipient) => boolean) =>
      new Set(rows.filter(keep).map((r) => r.member)).size
    const enqueued = members((r) => r.outcome === 'enqueued')
    const converted = members((r) => r.outcome === 'enqueued' && r.converted)
    return {
      variant,
      audience: members(() => true),
      enqueued,
      sent: members((r) => r.outcome === 'enqueued' && r.status === 'sent'),
      converted,
      conversionRate: enqueued ? Math.round((converted / enqueued) * 10_000) / 10_000 : null,
    }
  }
  const variants = [...new Set([...runs.values()].flat().map((r) => r.variant))].sort()
  return {
    variants: variants.map(of),
    total: of(null),
    runs: [...runs.values()].filter((rows) => rows.length > 0).length,
    prunedRuns: pruned,
  }
}

async function seedCampaign(db: Kysely<Database>, name: string) {
  const { id } = await db
    .insertInto('campaigns')
    .values({
      appid: APPID,
      name,
      status: 'scheduled',
      audience: JSON.stringify({ segment: 'active' }),
      variants: JSON.stringify([{ key: 'A', weight: 100, template: { template_id: 'T' } }]),
      schedule_cron: '0 10 * * *',
      conversion_days: 7,
      created_at: T0,
      updated_at: T0,
    })
    .returning('id')
    .executeTakeFirstOrThrow()
  return id
}

/** A campaign with one capped recipient, and a view's options that collect its background work. */
async function oneRecipient(db: Kysely<Database>, name: string, openid: string) {
  const campaignId = await seedCampaign(db, name)
  const [m] = await db
    .insertInto('members')
    .values({ appid: APPID, openid, subscribed: true, first_seen_at: T0 })
    .returning('id')
    .execute()
  await db
    .insertInto('campaign_recipients')
    .values({
      campaign_id: campaignId,
      slot: T0,
      member_id: m!.id,
      variant: 'A',
      outcome: 'capped',
      enqueued_at: T0,
    })
    .execute()
  const work: Promise<unknown>[] = []
  const o = (now: Date) => ({ now, liveMax: 0, waitUntil: (p: Promise<unknown>) => work.push(p) })
  return { campaignId, work, o }
}

/** `n` members of the account, openids `<prefix><i>`; their ids in order. */
function insertMembers(db: Kysely<Database>, prefix: string, n: number) {
  return db
    .insertInto('members')
    .values(
      Array.from({ length: n }, (_, i) => ({
        appid: APPID,
        openid: `${prefix}${i}`,
        subscribed: true,
        first_seen_at: T0,
      })),
    )
    .returning('id')
    .execute()
}

/** Run `run` (a day after T0 each) of campaign `campaignId` to `members`, each capped. */
function cappedRun(
  db: Kysely<Database>,
  campaignId: number,
  run: number,
  members: { id: number }[],
) {
  return db
    .insertInto('campaign_recipients')
    .values(
      members.map((m) => ({
        campaign_id: campaignId,
        slot: new Date(T0.getTime() + run * 86_400_000),
        member_id: m.id,
        variant: 'A',
        outcome: 'capped' as const,
        enqueued_at: T0,
      })),
    )
    .execute()
}

forEachDatabase('campaign reach shown from the cache', (get) => {
  let n = 0
  it('shows the exact figures of the time it says, and recounts them once stale', async () => {
    const db = get().db
    const ids = await db
      .insertInto('members')
      .values(
        Array.from({ length: MEMBERS }, (_, i) => ({
          appid: APPID,
          openid: `o_reach_cache_${i}`,
          subscribed: true,
          first_seen_at: T0,
        })),
      )
      .returning('id')
      .execute()
    const memberId = (i: number) => ids[i]!.id
    let exactChecks = 0
    let cachedViews = 0
    let staleViews = 0
    await fc.assert(
      fc.asyncProperty(
        fc.array(op, { minLength: 1, maxLength: 25 }),
        fc.integer({ min: 0, max: 8 }),
        // recipients per counting statement: from one member id per slice up to all in one
        fc.integer({ min: 1, max: 12 }),
        async (ops, liveMax, sliceRows) => {
          const campaignId = await seedCampaign(db, `prop ${n++}`)
          const runs = new Map<number, Recipient[]>()
          let pruned = 0
          let slotN = 0
          let now = T0
          const maxAgeMs = 60_000
          /** The exact count at each view's time: what figures "as of" that time must be. */
          const exactAt = new Map<number, CampaignReach>()
          // the report's per-variant counts at the same moments (kept with the reach)
          const countsAt = new Map<number, VariantCounts[]>()
          const liveCounts = async () => (await campaignCounts(db, campaignId, sliceRows)).counts
          let pending: Promise<unknown>[] = []
          let large = false
          const settle = async () => {
            await Promise.all(pending)
            pending = []
          }
          for (const o of ops) {
            // a recount under way finishes before the recipients change (it counts as of the
            // view that started it); views may come while it runs
            if (o.kind !== 'view') await settle()
            if (o.kind === 'run') {
              const slot = new Date(T0.getTime() + slotN++ * 86_400_000)
              const source = `campaign:${campaignId}:${slot.toISOString()}`
              runs.set(slot.getTime(), o.recipients)
              if (o.recipients.length === 0) continue
              await db
                .insertInto('campaign_recipients')
                .values(
                  o.recipients.map((r) => ({
                    campaign_id: campaignId,
                    slot,
                    member_id: memberId(r.member),
                    variant: r.variant,
                    outcome: r.outcome,
                    outbox_source: r.outcome === 'enqueued' ? source : null,
                    enqueued_at: slot,
                    converted_at: r.outcome === 'enqueued' && r.converted ? slot : null,
                  })),
                )
                .execute()
              const enqueued = o.recipients.filter((r) => r.outcome === 'enqueued')
              if (enqueued.length > 0)
                await db
                  .insertInto('push_outbox')
                  .values(
                    enqueued.map((r) => ({
                      appid: APPID,
                      source,
                      openid: `o_reach_cache_${r.member}`,
                      kind: 'template' as const,
                      payload: '{}',
                      status: r.status,
                      next_attempt_at: slot,
                      created_at: slot,
                    })),
                  )
                  .execute()
            } else if (o.kind === 'send' || o.kind === 'convert') {
              const all = [...runs.entries()].flatMap(([slot, rows]) =>
                rows.filter((r) => r.outcome === 'enqueued').map((r) => ({ slot, r })),
              )
              const hit = all[o.pick % Math.max(1, all.length)]
              if (!hit) continue
              const source = `campaign:${campaignId}:${new Date(hit.slot).toISOString()}`
              if (o.kind === 'send') {
                hit.r.status = 'sent'
                await db
                  .updateTable('push_outbox')
                  .set({ status: 'sent' })
                  .where('source', '=', source)
                  .where('openid', '=', `o_reach_cache_${hit.r.member}`)
                  .execute()
              } else {
                hit.r.converted = true
                await db
                  .updateTable('campaign_recipients')
                  .set({ converted_at: new Date(hit.slot) })
                  .where('campaign_id', '=', campaignId)
                  .where('slot', '=', new Date(hit.slot))
                  .where('member_id', '=', memberId(hit.r.member))
                  .execute()
              }
            } else if (o.kind === 'prune') {
              // retention's roll-up of the oldest kept run: its recipients go, a rollup stays
              const oldest = [...runs.keys()].sort((a, b) => a - b)[0]
              if (oldest === undefined) continue
              const rows = runs.get(oldest)!
              runs.delete(oldest)
              await db
                .deleteFrom('campaign_recipients')
                .where('campaign_id', '=', campaignId)
                .where('slot', '=', new Date(oldest))
                .execute()
              if (rows.length === 0) continue
              pruned++
              await db
                .insertInto('campaign_rollups')
                .values({
                  campaign_id: campaignId,
                  slot: new Date(oldest),
                  variant: 'A',
                  ...{ audience: rows.length, enqueued: 0, capped: 0, opted_out: 0 },
                  ...{ unreachable: 0, sent: 0, failed: 0, delivered: 0, clicked: 0 },
                  converted: 0,
                })
                .execute()
            } else {
              now = new Date(now.getTime() + o.advanceMs)
              const exact = (await campaignCounts(db, campaignId, sliceRows)).reach
              // the exact count is the model's, and the counts are the same however sliced
              expect(exact).toEqual(modelReach(runs, pruned))
              exactChecks++
              exactAt.set(now.getTime(), exact)
              const counts = await liveCounts()
              expect((await campaignCounts(db, campaignId)).counts).toEqual(counts)
              countsAt.set(now.getTime(), counts)
              const started = pending.length
              const shown = await campaignReachShown(db, campaignId, {
                now,
                liveMax,
                maxAgeMs,
                sliceRows,
                waitUntil: (p) => void pending.push(p),
              })
              const kept = [...runs.values()].flat().length
              // counted now while small; once found large, from the cache for good
              if (kept > liveMax) large = true
              if (!large) {
                expect(shown).toEqual({
                  reach: exact,
                  counts,
                  asOf: null,
                  recountAgeMs: null,
                  refreshing: false,
                })
              } else {
                cachedViews++
                // figures shown are the exact ones of the time they say
                if (shown.reach === null) {
                  expect(shown.asOf).toBeNull()
                  expect(shown.counts).toBeNull()
                } else {
                  expect(shown.asOf).not.toBeNull()
                  expect(shown.reach).toEqual(exactAt.get(shown.asOf!.getTime()))
                  expect(shown.counts).toEqual(countsAt.get(shown.asOf!.getTime()))
                }
                const age = shown.asOf ? now.getTime() - shown.asOf.getTime() : Infinity
                // stale or missing: a recount is under way (started now, or still running)
                if (age >= maxAgeMs) {
                  staleViews++
                  expect(shown.refreshing).toBe(true)
                } else expect(pending).toHaveLength(started)
              }
              // the recount finishes before the next view, or runs on into it
              if (o.settle) await settle()
            }
          }
          await settle()
          // in the end, a view after the figures' age shows today's exact count
          now = new Date(now.getTime() + maxAgeMs)
          const view = () =>
            campaignReachShown(db, campaignId, {
              now,
              liveMax,
              maxAgeMs,
              sliceRows,
              waitUntil: (p) => void pending.push(p),
            })
          await view()
          await settle()
          const last = await view()
          expect(last.reach).toEqual(modelReach(runs, pruned))
          expect(last.counts).toEqual(await liveCounts())
        },
      ),
      { numRuns: Number(process.env.REACH_RUNS ?? 40), seed: Number(process.env.REACH_SEED ?? 7) },
    )
    // the property exercised both paths, and stale figures
    expect(exactChecks).toBeGreaterThan(0)
    expect(cachedViews).toBeGreaterThan(0)
    expect(staleViews).toBeGreaterThan(0)
  })

  it('answers at once while counting: the first view says so, a stale one shows the old figures', async () => {
    const db = get().db
    const { campaignId, work, o } = await oneRecipient(db, 'first view', 'o_reach_first')
    // never counted: no figures, counting
    expect(await campaignReachShown(db, campaignId, o(T0))).toEqual({
      reach: null,
      counts: null,
      asOf: null,
      recountAgeMs: null,
      refreshing: true,
    })
    expect(work).toHaveLength(1)
    // a second view while it counts starts nothing more (says it is counting — or, on
    // PostgreSQL, where the count runs on another connection, shows it if it is already done)
    const second = await campaignReachShown(db, campaignId, o(T0))
    expect(second.refreshing || second.asOf?.getTime() === T0.getTime()).toBe(true)
    expect(work).toHaveLength(1)
    await Promise.all(work.splice(0))
    const counted = await campaignReachShown(db, campaignId, o(new Date(T0.getTime() + 59_999)))
    expect(counted).toMatchObject({ asOf: T0, refreshing: false })
    expect(counted.reach?.total.audience).toBe(1)
    expect(work).toHaveLength(0)
    // a minute on: the same figures, as of T0, and one recount
    const later = new Date(T0.getTime() + 60_000)
    expect(await campaignReachShown(db, campaignId, o(later))).toEqual({
      ...counted,
      refreshing: true,
    })
    expect(work).toHaveLength(1)
    await Promise.all(work.splice(0))
    expect(await campaignReachShown(db, campaignId, o(later))).toMatchObject({
      asOf: later,
      refreshing: false,
    })
  })

  it('recounts figures whose count took long 20 times as long after, not every minute', async () => {
    const db = get().db
    const { campaignId, work, o } = await oneRecipient(db, 'slow count', 'o_reach_slow')
    const started = performance.now()
    await campaignReachShown(db, campaignId, o(T0))
    await Promise.all(work.splice(0))
    const whole = performance.now() - started
    // the count's time is kept with its figures, in ms of wall time: no more than the whole call's
    const kept = await db
      .selectFrom('campaign_reach')
      .select(['count_ms', 'computed_at'])
      .where('campaign_id', '=', campaignId)
      .executeTakeFirstOrThrow()
    expect(kept.computed_at).toEqual(T0)
    expect(kept.count_ms).toBeGreaterThanOrEqual(0)
    expect(kept.count_ms).toBeLessThanOrEqual(Math.ceil(whole))
    // a count that took 10 s: recounted 200 s after it began, not a minute
    await db
      .updateTable('campaign_reach')
      .set({ count_ms: 10_000 })
      .where('campaign_id', '=', campaignId)
      .execute()
    const at = (ms: number) => new Date(T0.getTime() + ms)
    expect(await campaignReachShown(db, campaignId, o(at(60_000)))).toMatchObject({
      asOf: T0,
      recountAgeMs: 200_000,
      refreshing: false,
    })
    expect(work).toHaveLength(0)
    // …and the claim says the same, for an instance asking on its own
    const claim = { maxAgeMs: 60_000, leaseMs: 300_000 }
    expect(await claimReachRecount(db, campaignId, { ...claim, now: at(199_999) })).toBe(false)
    expect(await campaignReachShown(db, campaignId, o(at(200_000)))).toMatchObject({
      asOf: T0,
      refreshing: true,
    })
    expect(work).toHaveLength(1)
    await Promise.all(work.splice(0))
  })

  it('starts one recount however many views ask at once, from several pools', async () => {
    const db = get().db
    const campaignId = await seedCampaign(db, 'concurrent')
    // PostgreSQL: three pools (three instances); PGlite: its one connection
    const pools =
      get().name === 'postgres' ? [db, get().open({ max: 5 }), get().open({ max: 5 })] : [db]
    try {
      for (const round of [0, 1, 2]) {
        // never counted (round 0), then stale: 20 views at the same moment
        const now = new Date(T0.getTime() + round * 120_000)
        const work: Promise<unknown>[] = []
        const shown = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            campaignReachShown(pools[i % pools.length]!, campaignId, {
              now,
              liveMax: -1,
              waitUntil: (p) => work.push(p),
            }),
          ),
        )
        expect(work).toHaveLength(1)
        // each one says it is counting, or (read after the count finished) shows its figures
        for (const s of shown)
          expect(s.refreshing || s.asOf?.getTime() === now.getTime()).toBe(true)
        await Promise.all(work)
        const claims = await Promise.all(
          pools.map((p) => claimReachRecount(p, campaignId, { now, maxAgeMs: 1, leaseMs: 1 })),
        )
        // just counted at `now`: not stale, nothing to claim
        expect(claims.every((c) => !c)).toBe(true)
      }
    } finally {
      await Promise.all(pools.slice(1).map((p) => p.destroy()))
    }
  })

  it('shows a row counted before migration 0089 (no counts) without them, and its next recount keeps them', async () => {
    const db = get().db
    const { campaignId, work, o } = await oneRecipient(db, 'before 0089', 'o_reach_0089')
    // As 0087 wrote it: the reach and its time, no counts.
    const { reach } = await campaignCounts(db, campaignId)
    await db
      .insertInto('campaign_reach')
      .values({ campaign_id: campaignId, reach: JSON.stringify(reach), computed_at: T0 })
      .execute()
    // fresh: the reach from the row, no counts (the report counts them on the spot)
    expect(await campaignReachShown(db, campaignId, o(new Date(T0.getTime() + 1_000)))).toEqual({
      reach,
      counts: null,
      asOf: T0,
      recountAgeMs: 60_000, // a row counted before migration 0090: count_ms null
      refreshing: false,
    })
    // a minute on: recounted, and the counts kept from then on
    const later = new Date(T0.getTime() + 60_000)
    await campaignReachShown(db, campaignId, o(later))
    await Promise.all(work.splice(0))
    const shown = await campaignReachShown(db, campaignId, o(later))
    expect(shown.asOf).toEqual(later)
    expect(shown.counts).toEqual((await campaignCounts(db, campaignId)).counts)
    expect(shown.counts?.[0]).toMatchObject({ variant: 'A', audience: 1, capped: 1 })
  })

  it('slices a sparse campaign of many runs by its recipients, each slice at most its size', async () => {
    const db = get().db
    const campaignId = await seedCampaign(db, 'sparse')
    // 40 members among 2,000 (one id in 50), in 5 runs
    const ids = (await insertMembers(db, 'o_sparse_', 2_000)).filter((_, i) => i % 50 === 0)
    for (let run = 0; run < 5; run++) await cappedRun(db, campaignId, run, ids)
    const slices: RecipientSlice[] = []
    for await (const slice of recipientSlices(db, campaignId, 20)) slices.push(slice)
    // 200 recipients, 20 a slice (4 members × 5 runs): 10 slices — by ids it was ~100 (the span
    // of ids ÷ 4), most of them empty
    expect(slices).toHaveLength(10)
    const rows = await db
      .selectFrom('campaign_recipients')
      .select('member_id')
      .where('campaign_id', '=', campaignId)
      .execute()
    for (const slice of slices)
      expect(
        rows.filter((r) => r.member_id > slice.after && r.member_id <= slice.upTo),
      ).toHaveLength(20)
    const sliced = await campaignCounts(db, campaignId, 20)
    expect(sliced).toEqual(await campaignCounts(db, campaignId, Number.POSITIVE_INFINITY))
    expect(sliced.reach.total.audience).toBe(40)
  })

  it('slices runs of different members by their own budget, not one shared by all runs', async () => {
    const db = get().db
    const campaignId = await seedCampaign(db, 'newcomers')
    // each day's newcomers: run 0 has members 0–99, run 1 members 100–199
    const members = await insertMembers(db, 'o_newcomers_', 200)
    for (const run of [0, 1])
      await cappedRun(db, campaignId, run, members.slice(run * 100, run * 100 + 100))
    const sizes: number[] = []
    for await (const slice of recipientSlices(db, campaignId, 20))
      sizes.push(members.filter((m) => m.id > slice.after && m.id <= slice.upTo).length)
    // 200 recipients in slices of 20 (a budget shared by both runs: 20 slices of 10)
    expect(sizes).toEqual(Array(10).fill(20))
    expect(await campaignCounts(db, campaignId, 20)).toEqual(
      await campaignCounts(db, campaignId, Number.POSITIVE_INFINITY),
    )
  })

  it('counts a run rolled up by retention while the count runs once, not twice', async () => {
    const db = get().db
    const campaignId = await seedCampaign(db, 'pruned meanwhile')
    const members = await insertMembers(db, 'o_pruned_meanwhile_', 30)
    for (const run of [0, 1]) await cappedRun(db, campaignId, run, members)
    const exact = await campaignCounts(db, campaignId, Number.POSITIVE_INFINITY)
    expect(exact.counts[0]?.audience).toBe(60)
    // retention rolls the first run up after the first slice was counted (it holds some of it)
    let asked = 0
    const counted = await campaignCounts(db, campaignId, 10, async () => {
      if (++asked === 2) await rollUpBatchStatement(campaignId, T0, 1_000).execute(db)
      return true
    })
    // the pushes: the same 60 (30 of them in the rollup now); not 60 + the first slice's again
    expect(counted.counts).toEqual(exact.counts)
    expect(counted.reach.prunedRuns).toBe(1)
  })

  it('stops a recount whose claim was taken over before it counts on', async () => {
    const db = get().db
    const { campaignId } = await oneRecipient(db, 'taken over', 'o_reach_taken_over')
    const o = { maxAgeMs: 60_000, leaseMs: 300_000 }
    expect(await claimReachRecount(db, campaignId, { ...o, now: T0 })).toBe(true)
    const after = new Date(T0.getTime() + 300_000)
    expect(await claimReachRecount(db, campaignId, { ...o, now: after })).toBe(true)
    const watched = watchedStatements(db)
    expect(await recountReach(watched.db, campaignId, T0)).toBe(false)
    // no slice counted (before: it counted them all, then found the claim gone)
    expect(watched.seen.filter((q) => q.sql.includes('from campaign_recipients r'))).toEqual([])
  })

  it('stops a recount when the server stops, and gives its claim up', async () => {
    const db = get().db
    const campaignId = await seedCampaign(db, 'stopping')
    const members = await insertMembers(db, 'o_reach_stopping_', 30)
    await cappedRun(db, campaignId, 0, members)
    const o = { maxAgeMs: 60_000, leaseMs: 300_000 }
    expect(await claimReachRecount(db, campaignId, { ...o, now: T0 })).toBe(true)
    // the server stops once the first of three slices has been counted
    const stopping = new AbortController()
    const watched = watchedStatements(db)
    const counting = () => watched.seen.filter((q) => q.sql.includes('from campaign_recipients r'))
    const slicing = watched.db.withPlugin({
      transformQuery: (args) => args.node,
      transformResult: async (args) => {
        if (counting().length === 1) stopping.abort()
        return args.result
      },
    })
    expect(
      await recountReach(slicing, campaignId, T0, { sliceRows: 10, stopping: stopping.signal }),
    ).toBe(false)
    expect(counting()).toHaveLength(1)
    // no figures written, and the claim given up: the next view recounts at once
    const row = await db
      .selectFrom('campaign_reach')
      .selectAll()
      .where('campaign_id', '=', campaignId)
      .executeTakeFirstOrThrow()
    expect(row).toMatchObject({ computed_at: null, refreshing_since: null, reach: null })
    const soon = new Date(T0.getTime() + 1_000)
    expect(await claimReachRecount(db, campaignId, { ...o, now: soon })).toBe(true)
  })

  it('takes over a claim older than its lease; the late count then writes nothing', async () => {
    const db = get().db
    const campaignId = await seedCampaign(db, 'lease')
    const o = { maxAgeMs: 60_000, leaseMs: 300_000 }
    expect(await claimReachRecount(db, campaignId, { ...o, now: T0 })).toBe(true)
    const within = new Date(T0.getTime() + 299_999)
    expect(await claimReachRecount(db, campaignId, { ...o, now: within })).toBe(false)
    const after = new Date(T0.getTime() + 300_000)
    expect(await claimReachRecount(db, campaignId, { ...o, now: after })).toBe(true)
    // the first count finishes late: its claim is gone, the row is the second's
    expect(await recountReach(db, campaignId, T0)).toBe(false)
    expect(await recountReach(db, campaignId, after)).toBe(true)
    const row = await db
      .selectFrom('campaign_reach')
      .selectAll()
      .where('campaign_id', '=', campaignId)
      .executeTakeFirstOrThrow()
    expect(row).toMatchObject({ computed_at: after, refreshing_since: null })
  })
})
