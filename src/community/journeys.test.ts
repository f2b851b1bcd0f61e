import type { Kysely, Transaction } from 'kysely'
import { describe, expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { setMarketingOptOut } from '../admin/actions/member-actions.js'
import { translator } from '../bot/i18n.js'
import { chunkBudget } from '../budget.js'
import type { Database, NewMember } from '../db/schema.js'
import { adoptJourneys, setJourneyStatus } from './journey-catalog.js'
import { journeyReport } from './journey-report.js'
import { type JourneyStep, journeyStepsProblem, stepMessage } from './journey-steps.js'
import { type JourneyRunOptions, runJourneys } from './journeys.js'
import { CONVERSION_SETTLE_MS, marketingOptOut } from './marketing-opt-out.js'
import { DEFAULT_SEGMENT_THRESHOLDS, recomputeSegments } from './segments.js'

const TZ = 'Asia/Shanghai'
const t = translator('zh-CN')
const HOUR = 3_600_000
const DAY = 24 * HOUR
/** When activity at `at` counts as a conversion (marketing-opt-out.ts). */
const settled = (at: Date) => new Date(at.getTime() + CONVERSION_SETTLE_MS)
const template = (id: string) => ({
  template_id: id,
  data: {
    number1: { value: '{{points}}' },
    thing2: { value: '{{offer}} 分券' },
    time3: { value: '{{expires}}' },
  },
})

describe('journey steps', () => {
  const step: JourneyStep = {
    key: 'offer',
    delayHours: 0,
    channel: 'custom',
    message: 'journey.recall.offer',
    template: template('T1'),
    cap: true,
    goal: 'active',
    offer: { points: 50, days: 3 },
  }

  it('renders the copy with the offer and leaves {{points}} and {{level}} for each member', () => {
    const m = stepMessage(step, t, new Date('2026-12-01T04:00:00Z'), TZ)
    expect(m.kind).toBe('custom')
    const content = JSON.parse(m.payload).text.content as string
    expect(content).toContain('3 天内回来签到，送你 50 积分（2026-12-04 前有效）')
    expect(content).toContain('退订')
    expect(JSON.parse(m.fallback!)).toEqual({
      kind: 'template',
      payload: {
        template_id: 'T1',
        data: {
          number1: { value: '{{points}}' },
          thing2: { value: '50 分券' },
          time3: { value: '2026-12-04' },
        },
      },
    })
    const tpl = stepMessage({ ...step, channel: 'template' }, t, new Date(), TZ)
    expect([tpl.kind, tpl.fallback]).toEqual(['template', null])
  })

  it('refuses steps that cannot run', () => {
    expect(journeyStepsProblem([])).toBe('steps: at least one')
    expect(journeyStepsProblem([{ ...step, channel: 'template', template: undefined }])).toBe(
      'steps.0.template: required',
    )
    expect(journeyStepsProblem([{ ...step, message: undefined }])).toBe('steps.0.text: required')
    expect(journeyStepsProblem([{ ...step, delayHours: 5 }, step])).toBe(
      'steps.1.delayHours: not before the step before it',
    )
    expect(journeyStepsProblem([step, { ...step, delayHours: 1 }])).toBe('steps: keys must differ')
    expect(journeyStepsProblem([step])).toBeUndefined()
  })

  it('refuses a step whose template WeChat would refuse, naming the step and field', () => {
    const bad = (data: Record<string, { value: string }>) => ({ template_id: 'T1', data })
    // a template step's message and a custom step's fallback alike
    expect(
      journeyStepsProblem([
        step,
        { ...step, key: 'late', channel: 'template', template: bad({ first: { value: 'x' } }) },
      ]),
    ).toMatch(/^steps\.1\.template\.data\.first: /)
    expect(
      journeyStepsProblem([{ ...step, template: bad({ thing1: { value: '第一行\n第二行' } }) }]),
    ).toMatch(/^steps\.0\.template\.data\.thing1\.value: no line breaks/)
    expect(
      journeyStepsProblem([
        {
          ...step,
          template: bad({ thing1: { value: '一二三四五六七八九十一二三四五六七八九十一' } }),
        },
      ]),
    ).toMatch(/^steps\.0\.template\.data\.thing1\.value: 21 characters/)
  })
})

forEachDatabase('lifecycle journeys', (get, dbName) => {
  let n = 0
  /** A fresh account per test; each test's clock starts later than the one before it. */
  const account = () => `wxj${dbName === 'pglite' ? 'a' : 'b'}${String(++n).padStart(12, '0')}`
  const base = () => new Date(Date.UTC(2026, 11, 1 + n * 10, 4)) // 12:00 in Shanghai
  const settings = { timeZone: TZ, capHours: 24, capSlackMinutes: 30, quietHours: null }
  const run = (now: Date, db: Kysely<Database> = get().db, extra?: Partial<JourneyRunOptions>) =>
    runJourneys(db, { slot: now, now, settings, t, ...extra })
  const recompute = (appid: string, now: Date) =>
    recomputeSegments(get().db, {
      now,
      thresholds: DEFAULT_SEGMENT_THRESHOLDS,
      timeZone: TZ,
      appid,
    })

  /**
   * Members of the account; unless `fields` says otherwise, each wrote to the account as they
   * followed (`last_inbound_at`: their 48-hour window, which a customer-service step needs).
   */
  async function members(appid: string, count: number, fields: Partial<NewMember>) {
    const rows = await get()
      .db.insertInto('members')
      .values(
        Array.from({ length: count }, (_, i) => ({
          appid,
          openid: `o_${appid}_${fields.purchase_count ?? 0}_${i}_${Math.random().toString(36).slice(2, 8)}`,
          first_seen_at: new Date(0),
          subscribed: true,
          last_inbound_at: fields.subscribed_at ?? null,
          ...fields,
        })),
      )
      .returning(['id', 'openid'])
      .execute()
    return rows
  }

  async function journey(appid: string, key: string, now: Date) {
    const { db } = get()
    await adoptJourneys(db, {
      appid,
      now,
      templates: { new: template('TN'), at_risk: template('TR'), loyal: template('TL') },
    })
    const j = await db
      .selectFrom('journeys')
      .selectAll()
      .where('appid', '=', appid)
      .where('key', '=', key)
      .executeTakeFirstOrThrow()
    const moved = await db
      .transaction()
      .execute((trx) => setJourneyStatus(trx, { appid, id: j.id, status: 'active', now }))
    expect(moved).toMatchObject({ moved: true, status: 'active' })
    return j
  }

  const outbox = (appid: string) =>
    get()
      .db.selectFrom('push_outbox')
      .select(['source', 'openid', 'kind', 'payload', 'status', 'lane', 'next_attempt_at'])
      .where('appid', '=', appid)
      .orderBy('id')
      .execute()
  /**
   * What the outbox worker does with the account's queued pushes (those to `openids`, else all):
   * sends them at `at`, or WeChat refuses them (45015).
   */
  const settle = (appid: string, at: Date, result: 'sent' | 'failed', openids?: string[]) =>
    get()
      .db.updateTable('push_outbox')
      .set(
        result === 'sent'
          ? { status: 'sent', sent_at: at }
          : { status: 'failed', errcode: 45015, errmsg: 'response out of time limit' },
      )
      .where('appid', '=', appid)
      .where('status', '=', 'pending')
      .$if(openids !== undefined, (q) => q.where('openid', 'in', openids!))
      .execute()
  const enrollments = (journeyId: number) =>
    get()
      .db.selectFrom('journey_enrollments')
      .selectAll()
      .where('journey_id', '=', journeyId)
      .orderBy('id')
      .execute()

  it('adopts the three seeded journeys once, paused, with the templates as fallbacks', async () => {
    const appid = account()
    const now = base()
    const made = await adoptJourneys(get().db, {
      appid,
      now,
      templates: { new: template('TN'), at_risk: template('TR'), loyal: template('TL') },
    })
    expect(made.map((j) => [j.key, j.segment, j.status])).toEqual([
      ['welcome', 'new', 'paused'],
      ['recall', 'at_risk', 'paused'],
      ['vip', 'loyal', 'paused'],
    ])
    const welcome = JSON.parse(made[0]!.steps) as JourneyStep[]
    expect(welcome.map((s) => [s.key, s.delayHours, s.channel, s.template?.template_id])).toEqual([
      ['day0', 0, 'custom', undefined],
      ['day1', 24, 'custom', 'TN'],
      ['day3', 72, 'custom', 'TN'],
    ])
    expect(await adoptJourneys(get().db, { appid, now })).toEqual([])
    // a journey whose template step has no template cannot be switched on
    const bare = account()
    const [, recall] = await adoptJourneys(get().db, { appid: bare, now })
    const refused = await get()
      .db.transaction()
      .execute((trx) =>
        setJourneyStatus(trx, { appid: bare, id: recall!.id, status: 'active', now }),
      )
    expect(refused).toEqual({
      moved: false,
      status: 'paused',
      problem: 'steps.0.template: required',
      issue: {
        path: 'steps.0.template',
        problem: 'required',
        code: 'template_required',
        step: (JSON.parse(recall!.steps) as JourneyStep[])[0]!.key,
      },
    })
    // nor one whose template WeChat would refuse (stored before templates were checked)
    const legacy = account()
    const first = { template_id: 'TR', data: { first: { value: '第一行\n第二行' } } }
    const [, old] = await adoptJourneys(get().db, {
      appid: legacy,
      now,
      templates: { at_risk: first },
    })
    const stale = await get()
      .db.transaction()
      .execute((trx) =>
        setJourneyStatus(trx, { appid: legacy, id: old!.id, status: 'active', now }),
      )
    expect(stale).toMatchObject({ moved: false, status: 'paused' })
    expect((stale as { problem: string }).problem).toMatch(/^steps\.0\.template\.data\.first: /)
  })

  it('runs the welcome series day 0/1/3 once per transition, with cap, opt-out and quiet hours, and reports it', async () => {
    const appid = account()
    const t0 = base()
    // members that followed before the journey was switched on are not started
    await members(appid, 2, { subscribed_at: new Date(t0.getTime() - DAY), first_seen_at: t0 })
    await recompute(appid, t0)
    const j = await journey(appid, 'welcome', t0)
    const t1 = new Date(t0.getTime() + HOUR)
    const fresh = await members(appid, 5, {
      subscribed_at: t1,
      first_seen_at: t1,
      points_balance: 7,
    })
    const [optedOut] = await members(appid, 1, {
      subscribed_at: t1,
      first_seen_at: t1,
      marketing_opt_out: true,
    })
    expect(await recompute(appid, t1)).toBe(6)

    const r1 = await run(t1)
    expect(r1).toMatchObject({ started: 6, enqueued: 5, skipped: 1 })
    const day0 = await outbox(appid)
    expect(day0).toHaveLength(5)
    expect(new Set(day0.map((o) => o.openid))).toEqual(new Set(fresh.map((m) => m.openid)))
    expect(day0.every((o) => o.kind === 'custom' && o.lane === 2)).toBe(true)
    expect(JSON.parse(day0[0]!.payload).text.content).toContain('你现在有 7 积分')
    expect(day0.map((o) => o.source)).toEqual(
      expect.arrayContaining([expect.stringMatching(new RegExp(`^journey:${j.id}:0:\\d+$`))]),
    )
    // again: started once, day 0 sent once
    expect(await run(new Date(t1.getTime() + 60_000))).toMatchObject({ started: 0, enqueued: 0 })

    // day 1: capped for a member another campaign reached an hour ago
    const t2 = new Date(t1.getTime() + DAY)
    await get()
      .db.updateTable('members')
      .set({ last_campaign_at: new Date(t2.getTime() - HOUR) })
      .where('id', '=', fresh[0]!.id)
      .execute()
    // quiet hours now: queued for their end
    const quiet = { from: 0, to: 24 * 60 - 1 }
    const r2 = await run(t2, get().db, { settings: { ...settings, quietHours: quiet } })
    expect(r2).toMatchObject({ enqueued: 4, skipped: 2 })
    const day1 = (await outbox(appid)).filter((o) => o.source.includes(`:1:`))
    expect(day1).toHaveLength(4)
    expect(day1.every((o) => o.next_attempt_at.getTime() > t2.getTime())).toBe(true)
    const capped = await get()
      .db.selectFrom('journey_sends')
      .select(['step', 'outcome'])
      .innerJoin('journey_enrollments as e', 'e.id', 'journey_sends.enrollment_id')
      .where('e.member_id', 'in', [fresh[0]!.id, optedOut!.id])
      .where('step', '=', 1)
      .orderBy('e.member_id')
      .execute()
    expect(capped.map((c) => c.outcome)).toEqual(['capped', 'opted_out'])
    // the fallback template is filled per member
    const stored = await get()
      .db.selectFrom('push_outbox')
      .select('fallback')
      .where('source', '=', day1[0]!.source)
      .executeTakeFirstOrThrow()
    expect(JSON.parse(stored.fallback!).payload.data).toMatchObject({
      number1: { value: '7' },
      thing2: { value: '{{offer}} 分券' },
    })

    // day 3, then the tail: completed
    const t3 = new Date(t1.getTime() + 3 * DAY)
    expect(await run(t3)).toMatchObject({ enqueued: 5 })
    expect(await run(new Date(t3.getTime() + 8 * DAY))).toMatchObject({ completed: 6 })

    await get()
      .db.updateTable('push_outbox')
      .set({ status: 'sent' })
      .where('source', 'like', `journey:${j.id}:0:%`)
      .execute()
    const report = await journeyReport(get().db, j)
    expect(report.enrollments).toEqual({
      started: 6,
      active: 0,
      converted: 0,
      left: 0,
      completed: 6,
    })
    expect(
      report.steps.map((s) => [s.key, s.audience, s.enqueued, s.skipped, s.sent, s.delivered]),
    ).toEqual([
      ['day0', 6, 5, { capped: 0, optedOut: 1, unreachable: 0 }, 5, 5],
      ['day1', 6, 4, { capped: 1, optedOut: 1, unreachable: 0 }, 0, 0],
      ['day3', 6, 5, { capped: 0, optedOut: 1, unreachable: 0 }, 0, 0],
    ])
  })

  it('sends day 0 as members start; their conversions and later-dated starts wait for the next run', async () => {
    const appid = account()
    const t0 = base()
    const j = await journey(appid, 'welcome', t0)
    const t1 = new Date(t0.getTime() + HOUR)
    const [a, b] = await members(appid, 2, { subscribed_at: t1, first_seen_at: t1 })
    await recompute(appid, t1)
    // c enters after the clock of the next run (its transition is dated later)
    const t2 = new Date(t1.getTime() + 10 * 60_000)
    const [c] = await members(appid, 1, { subscribed_at: t2, first_seen_at: t2 })
    await recompute(appid, t2)
    // a acted after the run's clock: day 0 goes out in that run, so it converts only in the next
    await get()
      .db.updateTable('members')
      .set({ last_active_at: new Date(t1.getTime() + 30_000) })
      .where('id', '=', a!.id)
      .execute()
    expect(await run(t1)).toMatchObject({ started: 3, enqueued: 2, skipped: 0, converted: 0 })
    await settle(appid, t1, 'sent')
    const byMember = new Map((await enrollments(j.id)).map((e) => [e.member_id, e]))
    for (const m of [a!, b!])
      expect(byMember.get(m.id)).toMatchObject({
        status: 'active',
        next_step: 1,
        next_at: new Date(t1.getTime() + DAY),
        last_step: 0,
        last_sent_at: t1,
      })
    expect(byMember.get(c!.id)).toMatchObject({ next_step: 0, next_at: t2, last_step: null })
    expect(await run(t2)).toMatchObject({ started: 0, converted: 1, enqueued: 1 })
    const sources = (await outbox(appid)).map((o) => o.source)
    expect(sources).toHaveLength(3)
    expect(new Set(sources).size).toBe(3)
  })

  it('stops on conversion (cancelling the queued push) and on leaving the segment', async () => {
    const appid = account()
    const t0 = base()
    const j = await journey(appid, 'welcome', t0)
    const t1 = new Date(t0.getTime() + HOUR)
    const [a, b, c] = await members(appid, 3, { subscribed_at: t1, first_seen_at: t1 })
    await recompute(appid, t1)
    await run(t1)
    await settle(appid, t1, 'sent') // day 0 received by all three
    // a acts after day 0: converted (goal: active) — no day 1
    const t2 = new Date(t1.getTime() + 2 * HOUR)
    await get()
      .db.updateTable('members')
      .set({ last_active_at: t2 })
      .where('id', '=', a!.id)
      .execute()
    expect(await run(settled(t2))).toMatchObject({ converted: 1 })
    // day 1 is queued for b and c under quiet hours; then c leaves the segment (unfollows)
    const t3 = new Date(t1.getTime() + DAY)
    const quiet = { from: 0, to: 24 * 60 - 1 }
    expect(await run(t3, get().db, { settings: { ...settings, quietHours: quiet } })).toMatchObject(
      {
        enqueued: 2,
      },
    )
    await get()
      .db.updateTable('members')
      .set({ subscribed: false, unsubscribed_at: t3 })
      .where('id', '=', c!.id)
      .execute()
    await recompute(appid, new Date(t3.getTime() + 60_000))
    // b checks in while day 1 is still queued: day 0, the last step b received, is credited
    // (its goal, active, is met) and day 1 is cancelled
    const t4 = new Date(t3.getTime() + 2 * HOUR)
    await get()
      .db.insertInto('checkins')
      .values({ member_id: b!.id, appid, day: '2026-12-01', streak: 1, points: 5, created_at: t4 })
      .execute()
    await get()
      .db.updateTable('members')
      .set({ last_active_at: t4 })
      .where('id', '=', b!.id)
      .execute()
    expect(await run(settled(t4))).toMatchObject({ left: 1, converted: 1, enqueued: 0 })
    const byMember = new Map((await enrollments(j.id)).map((e) => [e.member_id, e]))
    expect(byMember.get(a!.id)).toMatchObject({
      status: 'converted',
      last_step: 0,
      converted_at: t2,
    })
    expect(byMember.get(b!.id)).toMatchObject({
      status: 'converted',
      last_step: 0,
      last_sent_at: t1,
      converted_at: t4,
    })
    expect(byMember.get(c!.id)).toMatchObject({ status: 'left', last_step: 1 })
    const day1 = (await outbox(appid)).filter((o) => o.source.includes(':1:'))
    expect(day1.map((o) => o.status)).toEqual(['cancelled', 'cancelled'])
    // nothing more is sent to anyone
    expect(await run(new Date(t1.getTime() + 3 * DAY))).toMatchObject({ enqueued: 0 })
    const report = await journeyReport(get().db, j)
    expect(report.steps.map((s) => s.converted)).toEqual([2, 0, 0])
    expect(report.enrollments).toMatchObject({ started: 3, converted: 2, left: 1 })
    // each enqueued push in one outcome: day 0's three sent; day 1's two still queued when their
    // enrollments ended (converted, left), so cancelled
    expect(
      report.steps.map((s) => [s.enqueued, s.sent, s.failed, s.withdrawn, s.unknown, s.queued]),
    ).toEqual([
      [3, 3, 0, { optedOut: 0, cancelled: 0 }, 0, 0],
      [2, 0, 0, { optedOut: 0, cancelled: 2 }, 0, 0],
      [0, 0, 0, { optedOut: 0, cancelled: 0 }, 0, 0],
    ])
  })

  it('credits only a step whose push was sent: a failed one leaves the enrollment to go on, and pays no offer', async () => {
    const { db } = get()
    const appid = account()
    const t0 = base()
    const j = await journey(appid, 'welcome', t0)
    const t1 = new Date(t0.getTime() + HOUR)
    const [a] = await members(appid, 1, { subscribed_at: t1, first_seen_at: t1 })
    await recompute(appid, t1)
    expect(await run(t1)).toMatchObject({ started: 1, enqueued: 1 })
    await settle(appid, t1, 'failed') // WeChat refuses day 0 (45015)
    // a is active (积分) after day 0 failed: a push that reached no one converts no one
    const t2 = new Date(t1.getTime() + 2 * HOUR)
    await db.updateTable('members').set({ last_active_at: t2 }).where('id', '=', a!.id).execute()
    expect(await run(settled(t2))).toMatchObject({ converted: 0 })
    expect(await enrollments(j.id)).toMatchObject([{ status: 'active', next_step: 1 }])
    // day 1 goes out and is received; a checks in after it: day 1 is credited
    const t3 = new Date(t1.getTime() + DAY)
    expect(await run(t3)).toMatchObject({ enqueued: 1 })
    await settle(appid, t3, 'sent')
    const t4 = new Date(t3.getTime() + HOUR)
    await db
      .insertInto('checkins')
      .values({ member_id: a!.id, appid, day: '2026-12-02', streak: 1, points: 5, created_at: t4 })
      .execute()
    await db.updateTable('members').set({ last_active_at: t4 }).where('id', '=', a!.id).execute()
    expect(await run(settled(t4))).toMatchObject({ converted: 1 })
    expect(await enrollments(j.id)).toMatchObject([
      { status: 'converted', last_step: 1, last_sent_at: t3, converted_at: t4 },
    ])
    const report = await journeyReport(db, j)
    expect(report.steps.map((s) => [s.sent, s.failed, s.converted])).toEqual([
      [0, 1, 0],
      [1, 0, 1],
      [0, 0, 0],
    ])

    // the recall offer: its push failed, the member comes back within its days — no points
    const recall = await journey(appid, 'recall', t0)
    const quietSince = new Date(t0.getTime() - 40 * DAY)
    const [back] = await members(appid, 1, {
      subscribed_at: quietSince,
      first_seen_at: quietSince,
      last_active_at: quietSince,
    })
    await recompute(appid, t4)
    expect(await run(settled(t4))).toMatchObject({ started: 1, enqueued: 1 })
    await settle(appid, settled(t4), 'failed')
    const t5 = new Date(t4.getTime() + DAY)
    await db.updateTable('members').set({ last_active_at: t5 }).where('id', '=', back!.id).execute()
    expect(await run(settled(t5))).toMatchObject({ converted: 0 })
    expect(await enrollments(recall.id)).toMatchObject([{ status: 'active', converted_at: null }])
    const ledger = await db
      .selectFrom('points_ledger')
      .select('rule')
      .where('appid', '=', appid)
      .where('rule', '=', 'journey_offer')
      .execute()
    expect(ledger).toEqual([])
  })

  it('credits the recall offer only to members who come back within its days', async () => {
    const appid = account()
    const t0 = base()
    const j = await journey(appid, 'recall', t0)
    const quietSince = new Date(t0.getTime() - 40 * DAY)
    const [soon, late] = await members(appid, 2, {
      subscribed_at: quietSince,
      first_seen_at: quietSince,
      last_active_at: quietSince,
    })
    await recompute(appid, t0)
    expect(await run(t0)).toMatchObject({ started: 2, enqueued: 2 })
    await settle(appid, t0, 'sent')
    const [push] = await outbox(appid)
    expect(push!.kind).toBe('template')
    const back = new Date(t0.getTime() + 2 * DAY)
    await get()
      .db.updateTable('members')
      .set({ last_active_at: back })
      .where('id', '=', soon!.id)
      .execute()
    expect(await run(settled(back))).toMatchObject({ converted: 1 })
    const tooLate = new Date(t0.getTime() + 4 * DAY)
    await get()
      .db.updateTable('members')
      .set({ last_active_at: tooLate })
      .where('id', '=', late!.id)
      .execute()
    expect(await run(settled(tooLate))).toMatchObject({ converted: 1 })
    await run(new Date(settled(tooLate).getTime() + 60_000)) // again: credited once
    const ledger = await get()
      .db.selectFrom('points_ledger')
      .select(['member_id', 'delta', 'rule'])
      .where('appid', '=', appid)
      .execute()
    expect(ledger).toEqual([{ member_id: soon!.id, delta: 50, rule: 'journey_offer' }])
    expect(await journeyReport(get().db, j)).toMatchObject({ enrollments: { converted: 2 } })
  })

  it('does not count a 退订 answering a step as coming back (nor credit its offer), even when a run comes between its receive and its opt-out; acting again does', async () => {
    const { db } = get()
    const appid = account()
    const t0 = base()
    const j = await journey(appid, 'recall', t0)
    const quietSince = new Date(t0.getTime() - 40 * DAY)
    const [quits, returns] = await members(appid, 2, {
      subscribed_at: quietSince,
      first_seen_at: quietSince,
      last_active_at: quietSince,
    })
    await recompute(appid, t0)
    expect(await run(t0)).toMatchObject({ started: 2, enqueued: 2 })
    await settle(appid, t0, 'sent')
    // both answer the push with 退订: its receive moves last_active_at (members.ts), a run comes
    // a second later, then the handler opts one out (handlers/preferences.ts) and an operator,
    // asked to, the other (the console's action)
    const quit = new Date(t0.getTime() + HOUR)
    const ids = [quits!.id, returns!.id]
    await db.updateTable('members').set({ last_active_at: quit }).where('id', 'in', ids).execute()
    expect(await run(new Date(quit.getTime() + 1000))).toMatchObject({ converted: 0 })
    const optOutAt = new Date(quit.getTime() + 5)
    await db
      .updateTable('members')
      .set(marketingOptOut(true, optOutAt))
      .where('id', '=', quits!.id)
      .execute()
    const deps = { db, clock: { now: () => optOutAt } }
    expect(
      await setMarketingOptOut(
        deps,
        { name: 'operator' },
        { appid, member: returns!, optOut: true },
      ),
    ).toEqual({ changed: true })
    expect(await run(settled(quit))).toMatchObject({ converted: 0 })
    expect(await run(new Date(quit.getTime() + 10 * 60_000))).toMatchObject({ converted: 0 })
    // one checks in the next day: that converts, within the offer's days
    const back = new Date(t0.getTime() + DAY)
    await db
      .updateTable('members')
      .set({ last_active_at: back })
      .where('id', '=', returns!.id)
      .execute()
    expect(await run(settled(back))).toMatchObject({ converted: 1 })
    const byMember = new Map((await enrollments(j.id)).map((e) => [e.member_id, e]))
    expect(byMember.get(quits!.id)).toMatchObject({ status: 'active', converted_at: null })
    expect(byMember.get(returns!.id)).toMatchObject({ status: 'converted', converted_at: back })
    const ledger = await db
      .selectFrom('points_ledger')
      .select(['member_id', 'delta', 'rule'])
      .where('appid', '=', appid)
      .execute()
    expect(ledger).toEqual([{ member_id: returns!.id, delta: 50, rule: 'journey_offer' }])
  })

  it('starts each transition once and sends each step once with two job instances in parallel', async () => {
    const appid = account()
    const t0 = base()
    const j = await journey(appid, 'welcome', t0)
    const t1 = new Date(t0.getTime() + HOUR)
    await members(appid, 300, { subscribed_at: t1, first_seen_at: t1 })
    await recompute(appid, t1)
    // On PostgreSQL the second run comes through a second pool (another process); PGlite has one.
    const other = dbName === 'postgres' ? get().open() : get().db
    const small = { batchSize: 40 }
    const [x, y] = await Promise.all([run(t1, get().db, small), run(t1, other, small)])
    expect(x.started + y.started).toBe(300)
    expect(x.enqueued + y.enqueued).toBe(300)
    const t2 = new Date(t1.getTime() + DAY)
    const [p, q] = await Promise.all([run(t2, get().db, small), run(t2, other, small)])
    expect(p.enqueued + q.enqueued).toBe(300)
    expect(await enrollments(j.id)).toHaveLength(300)
    const pushes = await outbox(appid)
    expect(pushes).toHaveLength(600)
    expect(new Set(pushes.map((o) => o.source)).size).toBe(600)
  })

  it('with a spent budget sends a batch a step and stops; later runs send the rest, each once', async () => {
    const appid = account()
    const t0 = base()
    await journey(appid, 'welcome', t0)
    const t1 = new Date(t0.getTime() + HOUR)
    await members(appid, 100, { subscribed_at: t1, first_seen_at: t1 })
    await recompute(appid, t1)
    // Day 0 goes out in the statement that starts the members (one statement, not batched).
    await run(t1, get().db, { budget: chunkBudget(0) })
    expect(await outbox(appid)).toHaveLength(100)
    // Other tests' journeys run too (a run covers every account): this account's pushes count.
    const sent: number[] = []
    const day1 = t1.getTime() + DAY
    for (let k = 0; k < 4; k++) {
      await run(new Date(day1 + k * 60_000), get().db, {
        batchSize: 40,
        budget: chunkBudget(0),
        // one loop: each parallel loop does its first batch whatever the budget says
        parallel: 1,
      })
      sent.push((await outbox(appid)).length)
    }
    expect(sent).toEqual([140, 180, 200, 200])
    const pushes = await outbox(appid)
    expect(pushes).toHaveLength(200)
    expect(new Set(pushes.map((o) => o.source)).size).toBe(200)
    expect(new Set(pushes.map((o) => o.openid)).size).toBe(100)
    // Its later steps would be sent by the other tests' runs (a run covers every account).
    await get().db.deleteFrom('journeys').where('appid', '=', appid).execute()
  })

  it('a paused journey neither starts nor sends, and holds its queued pushes', async () => {
    const appid = account()
    const t0 = base()
    const j = await journey(appid, 'welcome', t0)
    const t1 = new Date(t0.getTime() + HOUR)
    await members(appid, 2, { subscribed_at: t1, first_seen_at: t1 })
    await recompute(appid, t1)
    await run(t1)
    const pause = (status: 'active' | 'paused', now: Date) =>
      get()
        .db.transaction()
        .execute((trx) => setJourneyStatus(trx, { appid, id: j.id, status, now }))
    expect(await pause('paused', t1)).toEqual({ moved: true, status: 'paused', outbox: 2 })
    expect((await outbox(appid)).map((o) => o.status)).toEqual(['held', 'held'])
    const t2 = new Date(t1.getTime() + HOUR)
    await members(appid, 1, { subscribed_at: t2, first_seen_at: t2 })
    await recompute(appid, t2)
    expect(await run(new Date(t1.getTime() + DAY))).toMatchObject({ started: 0, enqueued: 0 })
    expect(await pause('active', t2)).toEqual({ moved: true, status: 'active', outbox: 2 })
    // the transition recorded while paused does not start it later
    expect(await run(new Date(t1.getTime() + DAY + 60_000))).toMatchObject({
      started: 0,
      enqueued: 2,
    })
  })

  /**
   * `db` for a run during which the operator pauses journey `id` (setJourneyStatus, committed on
   * its own transaction): after the run read the journeys, before the run's first transaction.
   */
  function pausedMidRun(appid: string, id: number, now: Date) {
    const { db } = get()
    let pause: ReturnType<typeof setJourneyStatus> | undefined
    const hooked = new Proxy(db, {
      get(target, prop) {
        if (prop === 'transaction')
          return () => ({
            execute: async <T>(work: (trx: Transaction<Database>) => Promise<T>) => {
              pause ??= target
                .transaction()
                .execute((trx) => setJourneyStatus(trx, { appid, id, status: 'paused', now }))
              await pause
              return target.transaction().execute(work)
            },
          })
        const value = Reflect.get(target, prop, target)
        return typeof value === 'function' ? value.bind(target) : value
      },
    })
    return { db: hooked, paused: () => pause }
  }

  it('a journey paused while a run is in progress starts and sends no one from that run', async () => {
    const appid = account()
    const t0 = base()
    const j = await journey(appid, 'welcome', t0)
    const t1 = new Date(t0.getTime() + HOUR)
    await members(appid, 2, { subscribed_at: t1, first_seen_at: t1 })
    await recompute(appid, t1)
    const mid = pausedMidRun(appid, j.id, t1)
    await run(t1, mid.db)
    expect(await mid.paused()).toEqual({ moved: true, status: 'paused', outbox: 0 })
    // day 0 would go out in the statement that starts them: read paused there, nobody starts
    expect(await outbox(appid)).toEqual([])
    expect(await enrollments(j.id)).toEqual([])
  })

  it('a journey paused while a run is in progress sends no later step from that run', async () => {
    const appid = account()
    const t0 = base()
    const j = await journey(appid, 'welcome', t0)
    const t1 = new Date(t0.getTime() + HOUR)
    await members(appid, 2, { subscribed_at: t1, first_seen_at: t1 })
    await recompute(appid, t1)
    await run(t1)
    const t2 = new Date(t1.getTime() + DAY)
    const mid = pausedMidRun(appid, j.id, t2)
    await run(t2, mid.db)
    // the pause held day 0's pushes; the run, which read the journey active, sent no day 1
    expect(await mid.paused()).toEqual({ moved: true, status: 'paused', outbox: 2 })
    expect((await outbox(appid)).map((o) => [o.source.split(':')[2], o.status])).toEqual([
      ['0', 'held'],
      ['0', 'held'],
    ])
    expect((await enrollments(j.id)).map((e) => e.next_step)).toEqual([1, 1])
  })

  // Last: its journey stays active, and the runs' totals include other tests' due steps.
  it('sends each due step once with its batches running at once', async () => {
    const appid = account()
    const t0 = base()
    const j = await journey(appid, 'welcome', t0)
    const t1 = new Date(t0.getTime() + HOUR)
    await members(appid, 50, { subscribed_at: t1, first_seen_at: t1 })
    await recompute(appid, t1)
    const batches = { batchSize: 6, parallel: 4 }
    const t2 = new Date(t1.getTime() + DAY)
    for (const at of [t1, t2, t2]) await run(at, get().db, batches)
    expect((await enrollments(j.id)).map((e) => e.next_step)).toEqual(Array(50).fill(2))
    const pushes = await outbox(appid)
    expect(pushes).toHaveLength(100)
    expect(new Set(pushes.map((o) => o.source)).size).toBe(100)
  })

  it('skips day 0 (a customer-service text without a template) as unreachable for a follower with no 48-hour window, and reaches them by a template when the step has one', async () => {
    const { db } = get()
    const appid = account()
    const t0 = base()
    const j = await journey(appid, 'welcome', t0)
    const t1 = new Date(t0.getTime() + HOUR)
    const followed = { subscribed_at: t1, first_seen_at: t1 }
    // followed and never wrote (a follow opens a one-minute window, long gone when the journey
    // starts them at a segment recompute); wrote within 48 hours; wrote 3 days ago; wrote within 48
    // hours but WeChat refused that window (45015); wrote and its window's 5 messages are used
    const [silent, writer, stale, refused, full] = [
      ...(await members(appid, 1, { ...followed, last_inbound_at: null })),
      ...(await members(appid, 1, { ...followed, last_inbound_at: new Date(t1.getTime() - HOUR) })),
      ...(await members(appid, 1, {
        ...followed,
        last_inbound_at: new Date(t1.getTime() - 3 * DAY),
      })),
      ...(await members(appid, 1, { ...followed, last_inbound_at: new Date(t1.getTime() - HOUR) })),
      ...(await members(appid, 1, { ...followed, last_inbound_at: new Date(t1.getTime() - HOUR) })),
    ]
    await db
      .insertInto('member_reachability')
      .values({
        appid,
        openid: refused!.openid,
        channel: 'custom',
        scope: 'message',
        errcode: 45015,
        recorded_at: t1,
        window_opened_at: new Date(t1.getTime() - HOUR),
      })
      .execute()
    await db
      .insertInto('cs_window_sends')
      .values({
        appid,
        openid: full!.openid,
        window_opened_at: new Date(t1.getTime() - HOUR),
        sent: 5,
      })
      .execute()
    await recompute(appid, t1)
    // day 0 goes only where a customer-service message can go: the others are skipped, recorded
    // unreachable, with no push queued to fail at the outbox (45015 outside the window)
    await run(t1)
    expect((await outbox(appid)).map((o) => [o.openid, o.kind])).toEqual([
      [writer!.openid, 'custom'],
    ])
    const outcomes = async (step: number) =>
      Object.fromEntries(
        (
          await db
            .selectFrom('journey_sends as s')
            .innerJoin('journey_enrollments as e', 'e.id', 's.enrollment_id')
            .select(['e.member_id', 's.outcome'])
            .where('s.journey_id', '=', j.id)
            .where('s.step', '=', step)
            .execute()
        ).map((r) => [r.member_id, r.outcome]),
      )
    expect(await outcomes(0)).toEqual({
      [silent!.id]: 'unreachable',
      [writer!.id]: 'enqueued',
      [stale!.id]: 'unreachable',
      [refused!.id]: 'unreachable',
      [full!.id]: 'unreachable',
    })
    // none of the skipped counts as having received day 0; they go on to day 1
    const byMember = new Map((await enrollments(j.id)).map((e) => [e.member_id, e]))
    expect(byMember.get(silent!.id)).toMatchObject({ next_step: 1, last_step: null })
    expect(byMember.get(writer!.id)).toMatchObject({ next_step: 1, last_step: 0 })
    // day 1 has the template as its fallback: it is queued for all five (the outbox sends the
    // template where the window is closed)
    await run(new Date(t1.getTime() + DAY))
    expect((await outbox(appid)).filter((o) => o.source.includes(':1:'))).toHaveLength(5)
    const report = await journeyReport(db, j)
    expect(report.steps.map((s) => [s.key, s.audience, s.enqueued, s.skipped])).toEqual([
      ['day0', 5, 1, { capped: 0, optedOut: 0, unreachable: 4 }],
      ['day1', 5, 5, { capped: 0, optedOut: 0, unreachable: 0 }],
      ['day3', 0, 0, { capped: 0, optedOut: 0, unreachable: 0 }],
    ])

    // an operator gives day 0 a template: a silent follower is reached by it
    const other = account()
    const k = await journey(other, 'welcome', t0)
    const steps = JSON.parse(k.steps) as JourneyStep[]
    steps[0] = { ...steps[0]!, template: template('TW') }
    await db
      .updateTable('journeys')
      .set({ steps: JSON.stringify(steps) })
      .where('id', '=', k.id)
      .execute()
    const [quiet] = await members(other, 1, { ...followed, last_inbound_at: null })
    await recompute(other, t1)
    await run(t1)
    const [push] = await outbox(other)
    expect(push).toMatchObject({ openid: quiet!.openid, kind: 'custom' })
    const { fallback } = await db
      .selectFrom('push_outbox')
      .select('fallback')
      .where('appid', '=', other)
      .executeTakeFirstOrThrow()
    expect(JSON.parse(fallback!)).toMatchObject({
      kind: 'template',
      payload: { template_id: 'TW' },
    })
    // (paused: their later steps are not sent by the runs of the tests after this one)
    for (const [id, a] of [
      [j.id, appid],
      [k.id, other],
    ] as const)
      await db
        .transaction()
        .execute((trx) => setJourneyStatus(trx, { appid: a, id, status: 'paused', now: t1 }))
  })
  it("decides day 0's window per member alike whether it goes out as members start or with the other steps (capped): refusals and counts of this window and of others, an invalid openid", async () => {
    const { db } = get()
    const outcomes = async (appid: string, capped: boolean) => {
      const t0 = base()
      const j = await journey(appid, 'welcome', t0)
      if (capped) {
        // with the cap, day 0 is sent with the other steps (sendStep), not as members start
        const steps = JSON.parse(j.steps) as JourneyStep[]
        steps[0] = { ...steps[0]!, cap: true }
        await db
          .updateTable('journeys')
          .set({ steps: JSON.stringify(steps) })
          .where('id', '=', j.id)
          .execute()
      }
      const t1 = new Date(t0.getTime() + HOUR)
      const wrote = new Date(t1.getTime() - HOUR)
      const kinds = [
        'writer',
        'invalid', // WeChat said 40003 (channel any)
        'eventRefused', // a follow's minute refused: the message window is another window
        'oldRefusal', // a refusal of a message window before their last message
        'eventCounted', // an event's minute counted after their message: the five are used
        'oldCount', // all five counted in a window before their last message
        'countLeft', // four of the five counted
        'refusedAtStart', // a refusal of the message window their last message opened
        'fullQuota', // all five counted in the window their last message opened
      ] as const
      const rows = await members(appid, kinds.length, {
        subscribed_at: t1,
        first_seen_at: t1,
        last_inbound_at: wrote,
      })
      const who = Object.fromEntries(kinds.map((k, i) => [k, rows[i]!])) as Record<
        (typeof kinds)[number],
        { id: number; openid: string }
      >
      const refusal = (openid: string, channel: 'custom' | 'any', scope: string, at: Date | null) =>
        ({
          appid,
          openid,
          channel,
          scope,
          errcode: channel === 'any' ? 40003 : 45015,
          recorded_at: t1,
          window_opened_at: at,
        }) as const
      await db
        .insertInto('member_reachability')
        .values([
          refusal(who.invalid.openid, 'any', '', null),
          refusal(who.eventRefused.openid, 'custom', 'event', new Date(wrote.getTime() + 1000)),
          refusal(who.oldRefusal.openid, 'custom', 'message', new Date(wrote.getTime() - DAY)),
          refusal(who.refusedAtStart.openid, 'custom', 'message', wrote),
        ])
        .execute()
      const count = (openid: string, at: Date, sent: number, quota: number) => ({
        appid,
        openid,
        window_opened_at: at,
        sent,
        quota,
        kind: quota === 3 ? ('event' as const) : ('message' as const),
      })
      await db
        .insertInto('cs_window_sends')
        .values([
          count(who.eventCounted.openid, new Date(wrote.getTime() + 1000), 1, 3),
          count(who.oldCount.openid, new Date(wrote.getTime() - DAY), 5, 5),
          count(who.countLeft.openid, wrote, 4, 5),
          count(who.fullQuota.openid, wrote, 5, 5),
        ])
        .execute()
      await recompute(appid, t1)
      await run(t1)
      const sent = await db
        .selectFrom('journey_sends as s')
        .innerJoin('journey_enrollments as e', 'e.id', 's.enrollment_id')
        .select(['e.member_id', 's.outcome'])
        .where('s.journey_id', '=', j.id)
        .where('s.step', '=', 0)
        .execute()
      await db
        .transaction()
        .execute((trx) => setJourneyStatus(trx, { appid, id: j.id, status: 'paused', now: t1 }))
      const byId = new Map(sent.map((r) => [r.member_id, r.outcome]))
      return Object.fromEntries(kinds.map((k) => [k, byId.get(who[k].id)]))
    }
    const expected = {
      writer: 'enqueued',
      invalid: 'unreachable',
      eventRefused: 'enqueued',
      oldRefusal: 'enqueued',
      eventCounted: 'unreachable',
      oldCount: 'enqueued',
      countLeft: 'enqueued',
      refusedAtStart: 'unreachable',
      fullQuota: 'unreachable',
    }
    expect(await outcomes(account(), false)).toEqual(expected)
    expect(await outcomes(account(), true)).toEqual(expected)
  })
})
