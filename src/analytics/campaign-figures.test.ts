import { expect, it } from 'vitest'
import { addMembers } from '../../test/analytics-fixtures.js'
import { forEachDatabase } from '../../test/databases.js'
import { campaignReport } from '../community/campaign-counts.js'
import { OPTED_OUT } from '../community/outbox.js'
import { analyticsAdminRoutes } from '../routes/admin-analytics.js'
import { buildDay } from './rollup.js'

const TZ = 'Asia/Shanghai'
const APPID = 'wxcampfigures000001'
/** Beijing `hour`:00 on 2026-11-20 + n days (day 0 is today). */
const at = (n: number, hour = 10) => new Date(Date.UTC(2026, 10, 20 + n, hour - 8))
const dayName = (n: number) => at(n).toISOString().slice(0, 10)
const unbuiltWarnings = (c: { warnings: string[] }) =>
  c.warnings.filter((w) => w.includes('尚未汇总'))
const OUTCOMES = ['enqueued', 'enqueued', 'enqueued', 'enqueued', 'capped', 'opted_out'] as const
/** How an enqueued push that was not sent ended: its status and errmsg. */
const UNSENT = [
  ['failed', null],
  ['skipped', null],
  ['cancelled', OPTED_OUT], // the member opted out after the run
  ['cancelled', 'cancelled'], // the campaign was finished
  ['unknown', 'outcome unknown, not sent again: test'],
] as const

/** The campaigns of the community and the days their recipients' events happen on (offsets). */
const CAMPAIGNS = [
  // run 6 days ago: events over days -6 … -4, all of them built
  { name: '早', run: -6, events: [-6, -5, -4], variants: ['A', 'B'] },
  // run 4 days ago: events on built days, the lag days (-2, -1) and today
  { name: '中', run: -4, events: [-4, -3, -2, -1, 0], variants: ['A', 'B', 'C'] },
  // run yesterday (a lag day): events yesterday and today
  { name: '晚', run: -1, events: [-1, 0], variants: ['A'] },
]

forEachDatabase('the campaign list from the rollups', (get) => {
  const db = () => get().db
  const ids: number[] = []
  const routes = () =>
    analyticsAdminRoutes({
      db: db(),
      clock: { now: () => at(0, 15) },
      timeZone: TZ,
      appids: [APPID],
    })
  const list = async () => {
    const res = await routes().request(`/campaigns?from=${dayName(-10)}&to=${dayName(0)}`)
    expect(res.status).toBe(200)
    return res.json()
  }
  const reports = () => Promise.all(ids.map((id) => campaignReport(db(), id)))
  const pick = (c: { variants: unknown; abTest: unknown }) => ({
    variants: c.variants,
    abTest: c.abTest,
  })

  it('seeds campaigns whose events happen over several days', async () => {
    for (const [k, c] of CAMPAIGNS.entries()) {
      const slot = at(c.run, 9)
      const { id } = await db()
        .insertInto('campaigns')
        .values({
          appid: APPID,
          name: c.name,
          status: 'finished',
          audience: '{}',
          variants: '[]',
          schedule_cron: null,
          run_at: slot,
          created_at: slot,
          updated_at: slot,
        })
        .returning('id')
        .executeTakeFirstOrThrow()
      ids.push(id)
      await db()
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
      const members = await addMembers(db(), APPID, `o_${k}_`, 40 + 7 * k, at(-30))
      const source = `campaign:${id}:${slot.toISOString()}`
      for (const [i, member] of members.entries()) {
        const outcome = OUTCOMES[i % OUTCOMES.length]!
        // the day of each step, walking the campaign's event days at different paces
        const day = (step: number) => c.events[(i + step) % c.events.length]!
        const sent = outcome === 'enqueued' && i % 7 !== 3 && i % 7 !== 5
        const [unsent, errmsg] = UNSENT[Math.floor(i / 7) % UNSENT.length]!
        await db()
          .insertInto('campaign_recipients')
          .values({
            campaign_id: id,
            slot,
            member_id: member,
            variant: c.variants[i % c.variants.length]!,
            outcome,
            outbox_source: outcome === 'enqueued' ? source : null,
            enqueued_at: slot,
            clicked_at: sent && i % 3 === 0 ? at(day(1), 12) : null,
            converted_at: sent && i % 4 === 0 ? at(day(2), 13) : null,
            redeemed_at: sent && i % 6 === 1 ? at(day(3), 14) : null,
          })
          .execute()
        if (outcome !== 'enqueued') continue
        const msgid = sent ? `m${id}_${i}` : null
        const raced = sent && i % 5 === 0
        const delivered = sent && i % 2 === 0 ? at(day(1), 11) : null
        await db()
          .insertInto('push_outbox')
          .values({
            appid: APPID,
            source,
            openid: `o_${k}_${i}`,
            kind: 'template',
            payload: '{}',
            status: sent ? 'sent' : unsent,
            errmsg: sent ? null : errmsg,
            lane: 2,
            next_attempt_at: at(day(0), 10),
            first_attempt_at: slot,
            wechat_msgid: msgid,
            delivery: delivered && !raced ? 'success' : null,
            created_at: slot,
            sent_at: sent ? at(day(0), 10) : null,
            delivered_at: delivered && !raced ? delivered : null,
          })
          .execute()
        if (delivered && raced)
          await db()
            .insertInto('push_receipts')
            .values({ appid: APPID, msgid: msgid!, status: 'success', received_at: delivered })
            .execute()
      }
    }
    // the nightly job built days -7 … -3; -2 and -1 are its lag, today is live
    for (let n = -7; n <= -3; n++)
      await buildDay(db(), {
        appid: APPID,
        day: dayName(n),
        timeZone: TZ,
        now: at(n + 1, 3),
        today: dayName(n + 1),
      })
  })

  it('equals each campaign’s report: built days, the job’s lag and today read live', async () => {
    const body = await list()
    expect(body.asOf).toBe(dayName(-3))
    expect(body.campaigns.map((c: { id: number }) => c.id)).toEqual(ids)
    const expected = await reports()
    expect(body.campaigns.map(pick)).toEqual(expected)
    // the seed has every kind of figure: skipped, failed, raced receipts, clicks, conversions,
    // redemptions, pushes withdrawn (opted out since the run, cancelled) and unknown
    const all = expected.flatMap((r) => r.variants)
    for (const key of ['failed', 'delivered', 'clicked', 'converted', 'redeemed'] as const)
      expect(
        all.some((v) => v[key] > 0),
        key,
      ).toBe(true)
    for (const [key, n] of [
      ['withdrawn.optedOut', (v: (typeof all)[number]) => v.withdrawn.optedOut],
      ['withdrawn.cancelled', (v: (typeof all)[number]) => v.withdrawn.cancelled],
      ['unknown', (v: (typeof all)[number]) => v.unknown],
    ] as const)
      expect(
        all.some((v) => n(v) > 0),
        key,
      ).toBe(true)
    // every push settled: each enqueued recipient is sent, failed, withdrawn or unknown
    expect(all.map((v) => v.queued)).toEqual(all.map(() => 0))
    expect(all.some((v) => v.skipped.optedOut > 0 && v.skipped.capped > 0)).toBe(true)
    expect(body.campaigns[0].quotaUsed).toBe(
      expected[0]!.variants.reduce((n, v) => n + v.sent + v.failed, 0),
    )
    expect(body.campaigns.flatMap(unbuiltWarnings)).toEqual([])
  })

  it('does not read the recipients of built days', async () => {
    const before = await reports()
    // the first campaign's events are all on built days: without its recipients and pushes the
    // list must not change (the report, read from them, does)
    await db().deleteFrom('campaign_recipients').where('campaign_id', '=', ids[0]!).execute()
    await db().deleteFrom('push_outbox').where('source', 'like', `campaign:${ids[0]}:%`).execute()
    expect((await campaignReport(db(), ids[0]!)).variants).toEqual([])
    expect((await list()).campaigns.map(pick)).toEqual(before)
  })

  it('warns about days of a campaign that are neither built nor read live', async () => {
    await db().deleteFrom('analytics_days').where('day', '=', dayName(-5)).execute()
    await db().deleteFrom('analytics_daily').where('day', '=', dayName(-5)).execute()
    const body = await list()
    expect(body.asOf).toBe(dayName(-3))
    expect(unbuiltWarnings(body.campaigns[0])).toEqual([
      `有 1 天（${dayName(-5)} 至 ${dayName(-5)}）尚未汇总，这些天的数字未计入；可用 POST analytics/rebuild 补建`,
    ])
    // the second campaign ran after that day
    expect(unbuiltWarnings(body.campaigns[1])).toEqual([])
  })
})
