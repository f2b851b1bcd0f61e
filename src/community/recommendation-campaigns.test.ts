/**
 * Recommendations in pushes and their A/B measure: a campaign variant whose template names {{rec}}
 * gets each member's top recommended reward (within the 20-character field), and the report
 * shows redemptions per variant with the z-test — before and after its recipients are pruned.
 */
import { expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { testConfig } from '../../test/server.js'
import { translator } from '../bot/i18n.js'
import { validateTemplateMessage } from '../wechat/api/messages.js'
import { campaignReport } from './campaign-counts.js'
import { markConversions, twoProportionZTest } from './campaign-report.js'
import { pruneCampaignRecipients } from './campaign-retention.js'
import { type CampaignSettings, type CampaignVariant, dispatchCampaigns } from './campaigns.js'
import { recomputeRecommendations } from './recommendations.js'
import { ensureDefaultRewards } from './rewards.js'

const t = translator('zh-CN')
const settings: CampaignSettings = { ...testConfig().campaigns, capHours: 0, quietHours: null }
const T = new Date('2026-12-10T02:00:00Z')
const hours = (h: number) => new Date(T.getTime() + h * 3_600_000)

forEachDatabase('recommendations in campaigns', (get) => {
  let n = 0
  async function account(appid: string) {
    const db = get().db
    await ensureDefaultRewards(db, appid, hours(-24 * 30))
    const rows = await db
      .selectFrom('rewards')
      .select(['id', 'code'])
      .where('appid', '=', appid)
      .execute()
    const R = Object.fromEntries(rows.map((r) => [r.code, r.id])) as Record<number, number>
    const member = async () =>
      (
        await db
          .insertInto('members')
          .values({
            appid,
            openid: `o_recab_${++n}`,
            subscribed: true,
            first_seen_at: hours(-24 * 60),
          })
          .returning('id')
          .executeTakeFirstOrThrow()
      ).id
    const redeem = (memberId: number, code: number, at: Date) =>
      db
        .insertInto('redemptions')
        .values({
          appid,
          member_id: memberId,
          reward_id: R[code]!,
          cost: 1,
          code: `AB${++n}`,
          status: 'issued',
          created_at: at,
        })
        .execute()
    const campaign = async (variants: CampaignVariant[], conversionDays = 3) =>
      (
        await db
          .insertInto('campaigns')
          .values({
            appid,
            name: 'recs',
            status: 'scheduled',
            audience: '{}',
            variants: JSON.stringify(variants),
            run_at: T,
            conversion_days: conversionDays,
            created_at: hours(-1),
            updated_at: hours(-1),
          })
          .returning('id')
          .executeTakeFirstOrThrow()
      ).id
    return { R, member, redeem, campaign }
  }
  const dispatch = () => dispatchCampaigns(get().db, { now: T, slot: T, settings, t })
  const payloads = async (appid: string) =>
    new Map(
      (
        await get()
          .db.selectFrom('push_outbox')
          .select(['openid', 'payload'])
          .where('appid', '=', appid)
          .execute()
      ).map((r) => [
        r.openid,
        JSON.parse(r.payload) as { data: Record<string, { value: string }> },
      ]),
    )

  it('fills {{rec}} with each member’s top recommended reward, cut to the field, or a fallback', async () => {
    const appid = 'wxrecab00000000001'
    const a = await account(appid)
    // history: R1 & R3 together twice, R1 & R2 once → R3 is most like R1; R1 is the most popular
    const [h1, h2, h3, x, y, z] = [
      await a.member(),
      await a.member(),
      await a.member(),
      await a.member(),
      await a.member(),
      await a.member(),
    ] as number[]
    for (const [m, codes] of [
      [h1, [1, 3]],
      [h2, [1, 3]],
      [h3, [1, 2]],
      [x, [1]],
      [z, [1, 2, 3]],
    ] as const)
      for (const c of codes) await a.redeem(m!, c, hours(-48))
    await recomputeRecommendations(get().db, { now: hours(-1), minTogether: 1 })
    await a.campaign([
      {
        key: 'A',
        weight: 1,
        template: {
          template_id: 'TPL_REC',
          data: {
            thing1: { value: '为你推荐：{{rec}}' },
            thing2: { value: '一二三四五六七八九十一二三四五{{rec}}' },
            number3: { value: '{{points}}' },
          },
        },
      },
    ])
    expect((await dispatch()).enqueued).toBe(6)
    const sent = await payloads(appid)
    const openid = async (id: number) =>
      (
        await get()
          .db.selectFrom('members')
          .select('openid')
          .where('id', '=', id)
          .executeTakeFirstOrThrow()
      ).openid
    const fields = async (id: number) => {
      const d = sent.get(await openid(id))!.data
      return [d.thing1!.value, d.thing2!.value]
    }
    // x has R1: R3 (VIP 会员 1 个月) is the most similar; 5 characters are left in thing2
    expect(await fields(x!)).toEqual([
      '为你推荐：VIP 会员 1 个月',
      '一二三四五六七八九十一二三四五VIP …',
    ])
    // y has nothing: the most popular reward
    expect(await fields(y!)).toEqual([
      '为你推荐：10元优惠券',
      '一二三四五六七八九十一二三四五10元优…',
    ])
    // z has every reward anyone redeemed: the fallback text
    expect(await fields(z!)).toEqual([
      '为你推荐：积分好礼',
      '一二三四五六七八九十一二三四五积分好礼',
    ])
    for (const [touser, p] of sent) {
      expect(() =>
        validateTemplateMessage({ touser, template_id: 'TPL_REC', data: p.data }),
      ).not.toThrow()
      expect(p.data.number3!.value).toBe('0')
    }
  })

  it('reports redemptions per variant with the z-test (the uplift), the same after pruning', async () => {
    const appid = 'wxrecab00000000002'
    const a = await account(appid)
    const ids: number[] = []
    for (let i = 0; i < 24; i++) ids.push(await a.member())
    const id = await a.campaign([
      {
        key: 'A',
        weight: 1,
        template: { template_id: 'TPL', data: { thing1: { value: '推荐：{{rec}}' } } },
      },
      {
        key: 'B',
        weight: 1,
        template: { template_id: 'TPL', data: { thing1: { value: '积分好礼等你兑' } } },
      },
    ])
    expect((await dispatch()).enqueued).toBe(24)
    // the outbox sends them at once (a redemption counts only after a push that was sent)
    await get()
      .db.updateTable('push_outbox')
      .set({ status: 'sent', sent_at: T })
      .where('source', 'like', `campaign:${id}:%`)
      .execute()
    const variants = await get()
      .db.selectFrom('campaign_recipients')
      .select(['member_id', 'variant'])
      .where('campaign_id', '=', id)
      .execute()
    const inA = variants.filter((v) => v.variant === 'A').map((v) => v.member_id)
    const inB = variants.filter((v) => v.variant === 'B').map((v) => v.member_id)
    expect(inA.length).toBeGreaterThan(3)
    expect(inB.length).toBeGreaterThan(3)
    // A: three redeem inside the 3-day window (one twice); B: one inside, one before the push,
    // one after the window
    await a.redeem(inA[0]!, 1, hours(1))
    await a.redeem(inA[0]!, 2, hours(2))
    await a.redeem(inA[1]!, 1, hours(30))
    await a.redeem(inA[2]!, 3, hours(70))
    await a.redeem(inB[0]!, 1, hours(5))
    await a.redeem(inB[1]!, 1, hours(-5))
    await markConversions(get().db, hours(3))
    await a.redeem(inB[2]!, 1, hours(73))
    await markConversions(get().db, hours(71))
    await markConversions(get().db, hours(80))
    const redeemedAt = await get()
      .db.selectFrom('campaign_recipients')
      .select(['member_id', 'redeemed_at'])
      .where('campaign_id', '=', id)
      .where('redeemed_at', 'is not', null)
      .execute()
    expect(new Map(redeemedAt.map((r) => [r.member_id, r.redeemed_at]))).toEqual(
      new Map([
        [inA[0]!, hours(1)],
        [inA[1]!, hours(30)],
        [inA[2]!, hours(70)],
        [inB[0]!, hours(5)],
      ]),
    )
    const report = await campaignReport(get().db, id)
    const [A, B] = report.variants
    expect(A).toMatchObject({ variant: 'A', enqueued: inA.length, redeemed: 3 })
    expect(B).toMatchObject({ variant: 'B', enqueued: inB.length, redeemed: 1 })
    expect(A!.redemptionRate).toBe(Math.round((3 / inA.length) * 10_000) / 10_000)
    expect(report.abTest?.redemption).toEqual(
      twoProportionZTest({ n: inA.length, x: 3 }, { n: inB.length, x: 1 }),
    )
    await get()
      .db.updateTable('push_outbox')
      .set({ status: 'sent' })
      .where('appid', '=', appid)
      .execute()
    const before = await campaignReport(get().db, id)
    const pruned = await pruneCampaignRecipients(get().db, {
      now: hours(24 * 200),
      retentionDays: 61,
    })
    expect(pruned.recipients).toBeGreaterThanOrEqual(24)
    expect(await campaignReport(get().db, id)).toEqual(before)
  })
})
