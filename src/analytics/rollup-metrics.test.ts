import { readFileSync } from 'node:fs'
import { expect, it } from 'vitest'
import { paidOrder as paidOrderFixture } from '../../test/analytics-fixtures.js'
import { forEachDatabase } from '../../test/databases.js'
import { placeInSegment } from '../../test/segment-fixtures.js'
import { awardParticipants } from '../community/activities.js'
import { issueBindingCode } from '../community/identities.js'
import { pruneInboundEvents } from '../community/inbound-events.js'
import { expireLots } from '../community/points-expiry.js'
import { changePoints } from '../community/points-ledger.js'
import { analyticsAdminRoutes } from '../routes/admin-analytics.js'
import { linkMiniProgramUser } from '../shop/mp-link.js'
import { grantPurchase, releaseFrozenPoints } from '../shop/purchase-grants.js'
import { buildDay, computeDay, type DailyFigure } from './rollup.js'
import { dayText, liveToday, METRICS } from './series.js'

const TZ = 'Asia/Shanghai'
const APPID = 'wxmetrics0000000001'
/** Beijing `hour`:00 on 2026-11-10 + n days. */
const at = (n: number, hour = 10) => new Date(Date.UTC(2026, 10, 10 + n, hour - 8))
const dayName = (n: number) => at(n).toISOString().slice(0, 10)

/** The campaign's recipients: when each step happened (a day offset) or null. */
const RECIPIENTS = [
  { name: 'r1', variant: 'A', sent: 0, delivered: 0, raced: false, clicked: 0, converted: 0 },
  { name: 'r2', variant: 'A', sent: -1, delivered: 0, raced: false, clicked: null, converted: 1 },
  { name: 'r3', variant: 'B', failed: 0 },
  { name: 'r4', variant: 'B', sent: 0, delivered: 0, raced: true, clicked: 0, converted: null },
  { name: 'r5', variant: 'B', capped: true },
] as const

forEachDatabase('the daily metric catalogue on a seeded community', (get) => {
  const db = () => get().db
  const ids: Record<string, number> = {}
  const grants: Record<string, number> = {}
  let campaignId = 0

  const member = async (name: string, o: { subscribed?: boolean; segment?: 'active' } = {}) => {
    const row = await db()
      .insertInto('members')
      .values({
        appid: APPID,
        openid: `o_${name}`,
        unionid: null,
        subscribed: o.subscribed ?? true,
        subscribed_at: at(-10),
        unsubscribed_at: null,
        subscribe_scene: null,
        subscribe_event_key: null,
        first_seen_at: at(-10),
        last_active_at: null,
        last_inbound_at: null,
        last_purchased_at: null,
        last_campaign_at: null,
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    if (o.segment) await placeInSegment(db(), APPID, [row.id], o.segment, at(-10))
    ids[name] = row.id
    return row.id
  }
  const paidOrder = async (name: string, n: number, fen: number) => {
    const orderId = await paidOrderFixture(db(), APPID, {
      memberId: ids[name]!,
      fen,
      paidAt: at(n),
      no: `T${name}`,
    })
    const g = await grantPurchase(db(), {
      memberId: ids[name]!,
      orderId,
      outTradeNo: `T${name}`,
      paidFen: fen,
      membershipDays: 30,
      now: at(n),
      timeZone: TZ,
      freezeDays: 7,
    })
    if (g.status !== 'granted') throw new Error('not granted')
    grants[name] = g.points
  }

  it('seeds a community: follows, check-ins, points, purchases, activities, a campaign', async () => {
    for (const name of ['a', 'c']) await member(name, { segment: 'active' })
    await member('b', { subscribed: false })
    for (const r of RECIPIENTS) await member(r.name)
    // day 0: three follow, b leaves the same day; a and c are active, a checks in
    const follows: [string, 'follow' | 'unfollow', 'invite' | 'qr' | 'organic'][] = [
      ['a', 'follow', 'invite'],
      ['b', 'follow', 'qr'],
      ['c', 'follow', 'organic'],
      ['b', 'unfollow', 'qr'],
    ]
    for (const [name, kind, source] of follows)
      await db()
        .insertInto('follow_events')
        .values({
          appid: APPID,
          member_id: ids[name]!,
          at: at(0),
          day: dayName(0),
          kind,
          scene: null,
          source,
        })
        .execute()
    for (const name of ['a', 'c'])
      await db()
        .insertInto('member_days')
        .values({ appid: APPID, day: dayName(0), member_id: ids[name]!, kinds: 1 })
        .execute()
    await db()
      .insertInto('checkins')
      .values({
        appid: APPID,
        member_id: ids.a!,
        day: dayName(0),
        streak: 3,
        points: 0,
        created_at: at(0),
      })
      .execute()
    await db()
      .insertInto('segment_transitions')
      .values({
        appid: APPID,
        member_id: ids.a!,
        from_segment: 'new',
        to_segment: 'active',
        at: at(0),
      })
      .execute()
    // points: a grant and a redemption on day 0
    const change = (name: string, rule: string, delta: number, n = 0) =>
      changePoints(
        db(),
        {
          appid: APPID,
          memberId: ids[name]!,
          rule,
          idempotencyKey: `${rule}:${name}:${n}`,
          now: at(n),
          timeZone: TZ,
        },
        delta,
      )
    expect((await change('a', 'grant', 100)).status).toBe('applied')
    expect((await change('a', 'redeem', -30)).status).toBe('applied')
    // purchases: a paid 8 days before (released on day 0), c on day 0 (frozen at its end)
    await paidOrder('a', -8, 12_000)
    await paidOrder('c', 0, 15_000)
    const released = await releaseFrozenPoints(db(), { now: at(0, 11) })
    expect(released.points).toBe(grants.a)
    // activities: quiz (20 points) awarded to a and c, run (10 points) to a; three sign-ups
    for (const [key, points] of [
      ['quiz', 20],
      ['run', 10],
    ] as const)
      await db()
        .insertInto('activities')
        .values({
          appid: APPID,
          key,
          name: key,
          description: '',
          cron: '0 9 * * *',
          cadence: 'daily',
          points,
          capacity: null,
          status: 'open',
          created_at: at(-5),
        })
        .execute()
    const award = (key: string, names: string[]) =>
      awardParticipants(db(), {
        appid: APPID,
        key,
        period: dayName(0),
        memberIds: names.map((n) => ids[n]!),
        now: at(0, 20),
        timeZone: TZ,
      })
    expect((await award('quiz', ['a', 'c']))?.map((r) => r.status)).toEqual(['applied', 'applied'])
    expect((await award('run', ['a']))?.map((r) => r.status)).toEqual(['applied'])
    // awarding again changes nothing
    expect((await award('quiz', ['a']))?.map((r) => r.status)).toEqual(['duplicate'])
    const quiz = await db()
      .selectFrom('activities')
      .select('id')
      .where('key', '=', 'quiz')
      .executeTakeFirstOrThrow()
    for (const [name, status] of [
      ['a', 'confirmed'],
      ['b', 'waitlisted'],
      ['c', 'cancelled'],
    ] as const)
      await db()
        .insertInto('activity_signups')
        .values({
          activity_id: quiz.id,
          period: dayName(0),
          member_id: ids[name]!,
          status,
          created_at: at(0),
          updated_at: at(0),
        })
        .execute()
    // a campaign with two variants, run the day before
    const slot = at(-1, 9)
    campaignId = (
      await db()
        .insertInto('campaigns')
        .values({
          appid: APPID,
          name: '召回',
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
    ).id
    await db()
      .insertInto('campaign_runs')
      .values({
        campaign_id: campaignId,
        slot,
        status: 'enqueued',
        lease_until: slot,
        created_at: slot,
        finished_at: slot,
        pruned_at: null,
      })
      .execute()
    const source = `campaign:${campaignId}:${slot.toISOString()}`
    const when = (n: number | null | undefined, hour = 10) =>
      n === null || n === undefined ? null : at(n, hour)
    for (const r of RECIPIENTS) {
      const capped = 'capped' in r
      await db()
        .insertInto('campaign_recipients')
        .values({
          campaign_id: campaignId,
          slot,
          member_id: ids[r.name]!,
          variant: r.variant,
          outcome: capped ? 'capped' : 'enqueued',
          outbox_source: capped ? null : source,
          link_code: null,
          target_url: null,
          enqueued_at: slot,
          clicked_at: 'clicked' in r ? when(r.clicked, 12) : null,
          converted_at: 'converted' in r ? when(r.converted, 13) : null,
        })
        .execute()
      if (capped) continue
      const sent = 'sent' in r
      const msgid = sent ? `msg-${r.name}` : null
      const delivered = sent ? when(r.delivered, 11) : null
      await db()
        .insertInto('push_outbox')
        .values({
          appid: APPID,
          source,
          openid: `o_${r.name}`,
          kind: 'template',
          payload: '{}',
          status: sent ? 'sent' : 'failed',
          lane: 2,
          next_attempt_at: sent ? slot : at(r.failed!, 10),
          claim_token: null,
          attempt_started_at: null,
          first_attempt_at: slot,
          fallback: null,
          errcode: null,
          errmsg: null,
          wechat_msgid: msgid,
          delivery: sent && !r.raced ? 'success' : null,
          created_at: slot,
          sent_at: sent ? when(r.sent) : null,
          delivered_at: sent && !r.raced ? delivered : null,
        })
        .execute()
      if (sent && r.raced)
        await db()
          .insertInto('push_receipts')
          .values({ appid: APPID, msgid: msgid!, status: 'success', received_at: delivered! })
          .execute()
    }
  })

  const figure = (figures: DailyFigure[], metric: string, dim = '') =>
    figures.find((f) => f.metric === metric && f.dim === dim)?.value ?? 0
  /** The campaign's expected figure of day n, from RECIPIENTS. */
  const expected = (
    step: 'sent' | 'delivered' | 'clicked' | 'converted' | 'quota',
    n: number,
    variant?: string,
  ) =>
    RECIPIENTS.filter((r) => !variant || r.variant === variant).filter((r) => {
      if (step === 'quota')
        return ('sent' in r && r.sent === n) || ('failed' in r && r.failed === n)
      return step in r && (r as Record<string, unknown>)[step] === n
    }).length

  it('builds every metric of the catalogue, and only those', async () => {
    await buildDay(db(), {
      appid: APPID,
      day: dayName(0),
      timeZone: TZ,
      now: at(1),
      today: dayName(1),
    })
    const rows = await db()
      .selectFrom('analytics_daily')
      .select('metric')
      .distinct()
      .where('appid', '=', APPID)
      .where('day', '=', dayName(0))
      .execute()
    expect(rows.map((r) => r.metric).sort()).toEqual(Object.keys(METRICS).sort())
  })

  it('counts points issued, spent, released, frozen and outstanding, and activity awards', async () => {
    const d0 = await computeDay(db(), { appid: APPID, day: dayName(0), timeZone: TZ })
    const ledger = await db()
      .selectFrom('points_ledger')
      .selectAll()
      .where('appid', '=', APPID)
      .execute()
    const sum = (f: (e: (typeof ledger)[number]) => boolean) =>
      ledger.filter(f).reduce((n, e) => n + e.delta, 0)
    const onDay = (e: (typeof ledger)[number], n: number) => dayText(e.day) === dayName(n)
    // the grant, a's released purchase points and the three awards
    expect(figure(d0, 'points.issued')).toBe(100 + grants.a! + 20 + 20 + 10)
    expect(figure(d0, 'points.issued', 'points_release')).toBe(grants.a!)
    expect(figure(d0, 'points.issued', 'activity_quiz')).toBe(40)
    expect(figure(d0, 'points.spent')).toBe(30)
    expect(figure(d0, 'points.spent', 'redeem')).toBe(30)
    expect(figure(d0, 'points.released')).toBe(grants.a!)
    // c's purchase is frozen at the end of day 0; a's was frozen at the end of day -8
    expect(grants.c).toBeGreaterThan(0)
    expect(figure(d0, 'points.frozen')).toBe(grants.c!)
    const dm8 = await computeDay(
      db(),
      { appid: APPID, day: dayName(-8), timeZone: TZ },
      { families: ['points'] },
    )
    expect(figure(dm8, 'points.frozen')).toBe(grants.a!)
    expect(figure(dm8, 'points.outstanding')).toBe(0)
    expect(figure(d0, 'points.outstanding')).toBe(100 - 30 + grants.a! + 50)
    expect(figure(d0, 'points.outstanding')).toBe(
      sum((e) => e.state === 'available' && (onDay(e, 0) || onDay(e, -8))),
    )
    expect(figure(d0, 'activities.awarded')).toBe(3)
    expect(figure(d0, 'activities.awarded', 'quiz')).toBe(2)
    expect(figure(d0, 'activities.awarded', 'run')).toBe(1)
    expect(figure(d0, 'activities.points_awarded')).toBe(50)
    expect(figure(d0, 'activities.points_awarded', 'run')).toBe(10)
    expect(figure(d0, 'activities.signups')).toBe(1)
    expect(figure(d0, 'activities.waitlisted')).toBe(1)
    expect(figure(d0, 'activities.cancelled')).toBe(1)
  })

  it('counts each campaign variant by day: sent, delivered, clicked, converted, quota', async () => {
    for (const n of [-1, 0, 1]) {
      const d = await computeDay(
        db(),
        { appid: APPID, day: dayName(n), timeZone: TZ },
        { families: ['campaigns'] },
      )
      for (const [metric, step] of [
        ['campaigns.sent', 'sent'],
        ['campaigns.delivered', 'delivered'],
        ['campaigns.clicked', 'clicked'],
        ['campaigns.converted', 'converted'],
        ['campaigns.quota_used', 'quota'],
      ] as const) {
        expect(figure(d, metric), `${metric} day ${n}`).toBe(expected(step, n))
        for (const v of ['A', 'B'])
          expect(figure(d, metric, `${campaignId}:${v}`), `${metric} ${v} day ${n}`).toBe(
            expected(step, n, v),
          )
      }
    }
    // the run of day -1 enqueued r1 … r4 and capped r5, counted on its slot's day only
    const dm1 = await computeDay(
      db(),
      { appid: APPID, day: dayName(-1), timeZone: TZ },
      { families: ['campaigns'] },
    )
    const enqueueFigures = (d: DailyFigure[], dim: string) =>
      ['audience', 'enqueued', 'capped', 'opted_out', 'unreachable'].map((k) =>
        figure(d, `campaigns.${k}`, dim),
      )
    expect(enqueueFigures(dm1, '')).toEqual([5, 4, 1, 0, 0])
    expect(enqueueFigures(dm1, `${campaignId}:A`)).toEqual([2, 2, 0, 0, 0])
    expect(enqueueFigures(dm1, `${campaignId}:B`)).toEqual([3, 2, 1, 0, 0])
    // day 0 by hand: r1 and r4 sent; r1, r2 (a receipt of yesterday's send) and r4 (raced) delivered
    const d0 = await computeDay(
      db(),
      { appid: APPID, day: dayName(0), timeZone: TZ },
      { families: ['campaigns'] },
    )
    expect([
      figure(d0, 'campaigns.sent'),
      figure(d0, 'campaigns.delivered'),
      figure(d0, 'campaigns.quota_used'),
    ]).toEqual([2, 3, 3])
  })

  it('reads the new metrics live for today as the build does, and serves them by dim', async () => {
    await buildDay(db(), {
      appid: APPID,
      day: dayName(-1),
      timeZone: TZ,
      now: at(0),
      today: dayName(0),
    })
    const families = ['points', 'campaigns', 'activities']
    const live = await liveToday(db(), 0)(APPID, dayName(0), TZ, families)
    const built = await computeDay(
      db(),
      { appid: APPID, day: dayName(0), timeZone: TZ },
      { families },
    )
    const key = (f: DailyFigure) => `${f.metric}|${f.dim}|${f.value}`
    expect(live.map(key).sort()).toEqual(built.map(key).sort())
    const routes = analyticsAdminRoutes({
      db: db(),
      clock: { now: () => at(0, 22) },
      timeZone: TZ,
      appids: [APPID],
    })
    const res = await routes.request(
      `/series?metric=campaigns.delivered&dim=${campaignId}:A&from=${dayName(-1)}&to=${dayName(0)}`,
    )
    expect(res.status).toBe(200)
    expect((await res.json()).points).toEqual([
      { start: dayName(-1), value: 0, partial: false },
      { start: dayName(0), value: expected('delivered', 0, 'A'), partial: true },
    ])
    const frozen = await routes.request(
      `/series?metric=points.frozen&from=${dayName(0)}&to=${dayName(0)}`,
    )
    expect((await frozen.json()).points[0].value).toBe(grants.c)
    expect((await routes.request('/series?metric=points.lapsed')).status).toBe(400)
    expect(
      (await routes.request(`/series?metric=campaigns.sent&dim=${'x'.repeat(81)}`)).status,
    ).toBe(400)
  })

  it('keeps a day’s campaign figures once its recipients were pruned', async () => {
    const read = () =>
      db()
        .selectFrom('analytics_daily')
        .select(['metric', 'dim', 'value'])
        .where('appid', '=', APPID)
        .where('day', '=', dayName(0))
        .where('metric', 'like', 'campaigns.%')
        .orderBy('metric')
        .orderBy('dim')
        .execute()
    const before = await read()
    expect(before.length).toBeGreaterThan(5)
    const run = await db()
      .selectFrom('campaign_runs')
      .select('slot')
      .where('campaign_id', '=', campaignId)
      .executeTakeFirstOrThrow()
    await db().deleteFrom('campaign_recipients').where('campaign_id', '=', campaignId).execute()
    await db()
      .insertInto('campaign_rollups')
      .values({
        campaign_id: campaignId,
        slot: run.slot,
        variant: 'A',
        audience: 2,
        enqueued: 2,
        capped: 0,
        opted_out: 0,
        unreachable: 0,
        sent: 2,
        failed: 0,
        delivered: 2,
        clicked: 1,
        converted: 2,
      })
      .execute()
    await buildDay(db(), {
      appid: APPID,
      day: dayName(0),
      timeZone: TZ,
      now: at(9),
      today: dayName(9),
    })
    expect(await read()).toEqual(before)
  })
})

forEachDatabase('rebuilding a past day: what its facts say now, one person one member', (get) => {
  const APP = 'wxrebuild0000000001'
  const MP = 'wxrebuildmp00000001'
  const db = () => get().db
  const scope = (n: number, built: number) => ({
    appid: APP,
    day: dayName(n),
    timeZone: TZ,
    now: at(built, 4),
    today: dayName(built),
  })
  const figures = (n: number) =>
    db()
      .selectFrom('analytics_daily')
      .select(['metric', 'dim', 'value'])
      .where('appid', '=', APP)
      .where('day', '=', dayName(n))
      .orderBy('metric')
      .orderBy('dim')
      .execute()
  const built = async (n: number, metric: string, dim = '') =>
    (await figures(n)).find((r) => r.metric === metric && r.dim === dim)?.value
  const memberDays = async (n: number) =>
    (
      await db()
        .selectFrom('member_days')
        .select(['member_id', 'kinds'])
        .where('appid', '=', APP)
        .where('day', '=', dayName(n))
        .orderBy('member_id')
        .execute()
    ).map((r) => [Number(r.member_id), r.kinds])
  const member = async (name: string, appid = APP) =>
    Number(
      (
        await db()
          .insertInto('members')
          .values({ appid, openid: `o_${name}`, first_seen_at: at(-10), subscribed: true })
          .returning('id')
          .executeTakeFirstOrThrow()
      ).id,
    )
  const checkin = (memberId: number, n: number, madeUp: Date | null = null) =>
    db()
      .insertInto('checkins')
      .values({
        appid: APP,
        member_id: memberId,
        day: dayName(n),
        streak: 1,
        points: 0,
        created_at: madeUp ?? at(n),
        made_up_at: madeUp,
      })
      .execute()

  it('a make-up (补签) is not activity on the day it fills, and a rebuild takes back one counted before', async () => {
    const a = await member('makeup_a')
    const b = await member('makeup_b')
    const c = await member('makeup_c')
    await checkin(b, 0)
    // c sent a message on day 0; a did nothing
    await db()
      .insertInto('member_days')
      .values({ appid: APP, day: dayName(0), member_id: c, kinds: 1 })
      .execute()
    await buildDay(db(), scope(0, 1))
    expect([await built(0, 'activity.dau'), await built(0, 'checkins.participants')]).toEqual([
      2, 1,
    ])
    // a and c make up day 0 on day 2; the day is built again (nightly after a rebuild, or twice)
    await checkin(a, 0, at(2))
    await checkin(c, 0, at(2))
    await buildDay(db(), scope(0, 3))
    const once = await figures(0)
    expect([
      await built(0, 'activity.dau'),
      await built(0, 'checkins.participants'),
      await built(0, 'checkins.rate'),
    ]).toEqual([2, 1, 0.5])
    expect(await memberDays(0)).toEqual([
      [b, 2],
      [c, 1],
    ])
    await buildDay(db(), scope(0, 4))
    expect(await figures(0)).toEqual(once)
    // a day built before this fix counted the make-ups as check-ins that day: a rebuild undoes it
    await db()
      .updateTable('member_days')
      .set({ kinds: 3 })
      .where('member_id', '=', c)
      .where('day', '=', dayName(0))
      .execute()
    await db()
      .insertInto('member_days')
      .values({ appid: APP, day: dayName(0), member_id: a, kinds: 2 })
      .execute()
    await buildDay(db(), scope(0, 5))
    expect(await memberDays(0)).toEqual([
      [b, 2],
      [c, 1],
    ])
    expect(await figures(0)).toEqual(once)
  })

  it('keeps the messages of a day whose inbound events were pruned', async () => {
    const m = await member('talker')
    await db()
      .insertInto('member_days')
      .values({ appid: APP, day: dayName(1), member_id: m, kinds: 1 })
      .execute()
    await db()
      .insertInto('inbound_events')
      .values(
        Array.from({ length: 5 }, (_, i) => ({
          appid: APP,
          dedupe_key: `talk-${i}`,
          openid: 'o_talker',
          msg_type: 'text',
          event: null,
          status: 'replied' as const,
          received_at: at(1, 12),
        })),
      )
      .execute()
    await buildDay(db(), scope(1, 2))
    expect(await built(1, 'activity.messages')).toBe(5)
    const before = await figures(1)
    // prune-inbound-events deletes them after a week; the day is rebuilt after that
    expect(await pruneInboundEvents(db(), at(8, 5))).toBe(5)
    await buildDay(db(), scope(1, 9))
    expect(await built(1, 'activity.messages')).toBe(5)
    expect(await built(1, 'activity.messages_per_active')).toBe(5)
    expect(await figures(1)).toEqual(before)
  })

  it('keeps the invite QRs issued on a day after they were issued again', async () => {
    const m = await member('sharer')
    await db()
      .insertInto('invite_qr')
      .values({
        member_id: m,
        campaign: '',
        ticket: 't1',
        url: 'http://weixin.qq.com/q/1',
        expires_at: at(32),
        issued_at: at(2, 10),
      })
      .execute()
    await buildDay(db(), scope(2, 3))
    expect(await built(2, 'invites.qr_issued')).toBe(1)
    // about 29 days later the QR is issued again: the row's issued_at moves on (invites.ts)
    await db()
      .updateTable('invite_qr')
      .set({ ticket: 't2', issued_at: at(31, 10), expires_at: at(61) })
      .where('member_id', '=', m)
      .execute()
    await buildDay(db(), scope(2, 32))
    expect(await built(2, 'invites.qr_issued')).toBe(1)
    await buildDay(db(), scope(31, 32))
    expect(await built(31, 'invites.qr_issued')).toBe(1)
  })

  it('after a 绑定 a rebuilt day counts the buyer once, as the follower', async () => {
    const own = await member('mp_buyer', MP)
    const follower = await member('follower')
    await db()
      .insertInto('mp_users')
      .values({ appid: MP, openid: 'o_mp_buyer', member_id: own, created_at: at(-10) })
      .execute()
    // the mini-program user pays on day 3 and day 4; the follower also messages on day 4
    await paidOrderFixture(db(), APP, { memberId: own, fen: 990, paidAt: at(3), no: 'RB3' })
    await paidOrderFixture(db(), APP, { memberId: own, fen: 990, paidAt: at(4), no: 'RB4' })
    await db()
      .insertInto('member_days')
      .values({ appid: APP, day: dayName(4), member_id: follower, kinds: 1 })
      .execute()
    await buildDay(db(), scope(3, 5))
    await buildDay(db(), scope(4, 5))
    expect([await built(3, 'activity.dau'), await built(3, 'commerce.paying_members')]).toEqual([
      1, 1,
    ])
    const { code } = await issueBindingCode(db(), follower, at(5))
    const linked = await linkMiniProgramUser(db(), {
      mpAppid: MP,
      openid: 'o_mp_buyer',
      code,
      now: at(5),
      timeZone: TZ,
    })
    expect(linked).toMatchObject({ status: 'linked', memberId: follower, movedOrders: 2 })
    const counted = async (n: number) => [
      await built(n, 'activity.dau'),
      await built(n, 'commerce.paying_members'),
    ]
    await buildDay(db(), scope(3, 6))
    expect(await counted(3)).toEqual([1, 1])
    expect(await memberDays(3)).toEqual([[follower, 8]])
    // the 绑定 merged the member's activity days into the follower's (kinds OR-ed), before a rebuild
    expect(await memberDays(4)).toEqual([[follower, 9]])
    await buildDay(db(), scope(4, 6))
    expect(await counted(4)).toEqual([1, 1])
    // a 绑定 made before this version left the member's day behind: a rebuild takes it back
    await db()
      .insertInto('member_days')
      .values({ appid: APP, day: dayName(3), member_id: own, kinds: 8 })
      .execute()
    await buildDay(db(), scope(3, 7))
    expect(await counted(3)).toEqual([1, 1])
    expect(await memberDays(3)).toEqual([[follower, 8]])
    expect(
      await db().selectFrom('member_days').select('day').where('member_id', '=', own).execute(),
    ).toEqual([])
  })

  it('counts expired points as points.expired, not as spent', async () => {
    const m = await member('expiring')
    const change = (rule: string, delta: number, n: number, expiresAt?: Date) =>
      changePoints(
        db(),
        {
          appid: APP,
          memberId: m,
          rule,
          idempotencyKey: `${rule}:expiring:${n}`,
          now: at(n),
          timeZone: TZ,
          expiresAt,
        },
        delta,
      )
    expect((await change('grant', 100, 5, at(7, 0))).status).toBe('applied')
    expect((await change('redeem', -30, 6)).status).toBe('applied')
    // the expire-points job at 00:05 of day 7 expires what is left of the lot: 70
    expect(await expireLots(db(), { now: at(7, 0), timeZone: TZ })).toEqual({
      members: 1,
      points: 70,
    })
    const d7 = await computeDay(db(), { appid: APP, day: dayName(7), timeZone: TZ })
    const f = (metric: string, dim = '') =>
      d7.find((x) => x.metric === metric && x.dim === dim)?.value
    expect([f('points.expired'), f('points.spent'), f('points.spent', 'points_expiry')]).toEqual([
      70,
      undefined,
      undefined,
    ])
    const d6 = await computeDay(db(), { appid: APP, day: dayName(6), timeZone: TZ })
    const g = (metric: string) => d6.find((x) => x.metric === metric && x.dim === '')?.value
    expect([g('points.spent'), g('points.expired'), g('points.outstanding')]).toEqual([30, 0, 70])
    expect(f('points.outstanding')).toBe(0)
  })
})

it('README lists every metric of the catalogue, in the Analytics section', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
  const section = readme.slice(
    readme.indexOf('## Analytics'),
    readme.indexOf('## Mini-program API'),
  )
  const listed = [...section.matchAll(/^\| `([a-z_]+\.[a-z_]+)`/gm)].map((m) => m[1])
  expect(listed.sort()).toEqual(Object.keys(METRICS).sort())
})
