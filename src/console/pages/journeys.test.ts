/**
 * 推送 → 旅程 over `app.request()`: the journeys with their funnels, the switch (roles, CSRF, the
 * audit entry with the operator's name, a refusal in words) — on every database.
 */
import type { Hono } from 'hono'
import { beforeAll, expect, it } from 'vitest'
import {
  consoleTestApp,
  manualClock,
  postForm,
  seedOperators,
  signIn,
} from '../../../test/console-kit.js'
import { forEachDatabase } from '../../../test/databases.js'
import { SAFE_ACCOUNT } from '../../../test/server.js'
import { adoptJourneys, findJourney } from '../../community/journey-catalog.js'
import type { JourneyStep } from '../../community/journey-steps.js'

forEachDatabase('console journeys', (db) => {
  const clock = manualClock(new Date('2026-11-20T02:00:30Z'))
  const appid = SAFE_ACCOUNT.appid
  let app: Hono
  let op: { cookie: string; csrf: string }
  let viewer: { cookie: string; csrf: string }
  const template = { template_id: 'TPL_RECALL', data: { thing1: { value: '回来领积分' } } }
  let ids: number[] = []

  beforeAll(async () => {
    await seedOperators(db().db, clock.now())
    // the recall journey gets no template: it cannot be switched on
    const made = await adoptJourneys(db().db, {
      appid,
      now: clock.now(),
      templates: { new: template, loyal: template },
    })
    ids = made.map((j) => j.id)
    app = consoleTestApp(db().db, clock)
    op = await signIn(app, 'op1')
    viewer = await signIn(app, 'viewer1')
  })

  it('lists the journeys with their steps and funnels, linked from 推送', async () => {
    const html = await (
      await app.request('/console/journeys', { headers: { cookie: op.cookie } })
    ).text()
    expect(html).toContain('新人欢迎')
    expect(html).toContain('沉默召回')
    expect(html).toContain('第 1 天提醒（第 24 小时，客服消息）: 0 → 0 → 0 → 0')
    expect(html).toContain('已暂停')
    const list = await app.request('/console/campaigns', { headers: { cookie: op.cookie } })
    expect(await list.text()).toContain('href="/console/journeys"')
  })

  it('switches a journey on and off for an operator, audited; refuses a viewer and a forged form', async () => {
    const [welcome, recall] = ids as [number, number]
    const post = (who: { cookie: string; csrf: string }, path: string, csrf = who.csrf) =>
      postForm(app, path, who.cookie, { _csrf: csrf })
    expect((await post(viewer, `/console/journeys/${welcome}/activate`)).status).toBe(403)
    expect((await post(op, `/console/journeys/${welcome}/activate`, 'forged')).status).toBe(403)
    const on = await post(op, `/console/journeys/${welcome}/activate`)
    expect([on.status, on.headers.get('location')]).toEqual([
      303,
      `/console/journeys?moved=${welcome}`,
    ])
    const page = await app.request(`/console/journeys?moved=${welcome}`, {
      headers: { cookie: op.cookie },
    })
    expect(await page.text()).toContain('「新人欢迎」现在进行中')
    const refused = await post(op, `/console/journeys/${recall}/activate`)
    expect(refused.status).toBe(409)
    const refusal = await refused.text()
    expect(refusal).toContain('不能切换：步骤 召回优惠 发送模板消息，但没有设置模板')
    expect(refusal).not.toContain('steps.0')
    expect((await post(op, '/console/journeys/999999/pause')).status).toBe(404)
    expect((await post(op, `/console/journeys/${welcome}/pause`)).status).toBe(303)
    const audit = await db()
      .db.selectFrom('audit_log')
      .select(['actor', 'action', 'target'])
      .where('action', 'like', 'journey.%')
      .orderBy('id')
      .execute()
    expect(audit).toEqual([
      { actor: 'op1', action: 'journey.activate', target: String(welcome) },
      { actor: 'op1', action: 'journey.pause', target: String(welcome) },
    ])
  })

  it('says why a journey cannot be switched on in the operator’s language, not the API’s English', async () => {
    const recall = ids[1]!
    const j = await findJourney(db().db, appid, recall)
    const steps = (JSON.parse(j!.steps) as JourneyStep[]).map((s) => ({
      ...s,
      template: { template_id: 'TPL_RECALL', data: { thing1: { value: '第一行\n第二行' } } },
    }))
    await db()
      .db.updateTable('journeys')
      .set({ steps: JSON.stringify(steps) })
      .where('id', '=', recall)
      .execute()
    expect(steps[0]!.key).toBe('offer')
    const refusal = async (lang: string) => {
      const res = await postForm(
        app,
        `/console/journeys/${recall}/activate?lang=${lang}`,
        op.cookie,
        {
          _csrf: op.csrf,
        },
      )
      expect(res.status).toBe(409)
      return /<p role="alert">([^<]*)<\/p>/.exec(await res.text())?.[1]
    }
    expect(await refusal('zh-CN')).toBe(
      '不能切换：步骤 召回优惠 的模板 · thing1：不能换行（微信会截断换行后的内容）',
    )
    expect(await refusal('en')).toBe(
      'Cannot switch: step Recall offer, template · thing1: no line breaks (WeChat truncates the value there)',
    )
    expect((await findJourney(db().db, appid, recall))!.status).toBe('paused')
  })

  it('names journeys and steps in the operator’s language, not the seed’s English or keys', async () => {
    const page = async (lang: string) =>
      (
        await app.request(`/console/journeys?lang=${lang}`, { headers: { cookie: op.cookie } })
      ).text()
    const zh = await page('zh-CN')
    expect(zh).not.toMatch(/welcome series|recall offer|VIP invitation/)
    for (const name of ['新人欢迎', '沉默召回', '忠诚会员邀请']) expect(zh).toContain(`>${name}<`)
    for (const step of ['首日欢迎（第 0 小时', '召回优惠（第 0 小时', '会员邀请（第 0 小时'])
      expect(zh).toContain(step)
    expect(zh).not.toMatch(/>day0|>offer|>invite/)
    const en = await page('en')
    expect(en).toContain('>Welcome series<')
    expect(en).toContain('Day 0 welcome (hour 0')
  })

  it('shows the pushes a step skipped or failed, as the campaign report does', async () => {
    const [welcome, recall] = ids as [number, number]
    const at = clock.now()
    const enroll = async (journey: number, n: number) => {
      const row = await db()
        .db.insertInto('journey_enrollments')
        .values({
          journey_id: journey,
          appid,
          member_id: 9000 + n,
          transition_id: n,
          started_at: at,
          next_at: at,
          last_step: null,
          last_sent_at: null,
          converted_at: null,
          ended_at: null,
        })
        .returning('id')
        .executeTakeFirstOrThrow()
      return row.id
    }
    // recall, step 0: two members capped (nothing enqueued)
    for (const n of [1, 2])
      await db()
        .db.insertInto('journey_sends')
        .values({
          enrollment_id: await enroll(recall, n),
          step: 0,
          journey_id: recall,
          outcome: 'capped',
          outbox_source: null,
          enqueued_at: at,
        })
        .execute()
    // welcome, step 0: three pushes enqueued that failed
    for (const n of [3, 4, 5]) {
      const source = `journey:${welcome}:test-${n}`
      await db()
        .db.insertInto('push_outbox')
        .values({
          appid,
          source,
          openid: `o_j${n}`,
          kind: 'custom',
          payload: '{}',
          status: 'failed',
          next_attempt_at: at,
          created_at: at,
          claim_token: null,
          attempt_started_at: null,
          first_attempt_at: at,
          fallback: null,
          errcode: 45015,
          errmsg: 'response out of time limit',
          wechat_msgid: null,
          delivery: null,
          sent_at: null,
          delivered_at: null,
          expires_at: null,
        })
        .execute()
      await db()
        .db.insertInto('journey_sends')
        .values({
          enrollment_id: await enroll(welcome, n),
          step: 0,
          journey_id: welcome,
          outcome: 'enqueued',
          outbox_source: source,
          enqueued_at: at,
        })
        .execute()
    }
    const html = await (
      await app.request('/console/journeys', { headers: { cookie: op.cookie } })
    ).text()
    expect(html).toContain('召回优惠（第 0 小时，模板消息）: 2 → 0 → 0 → 0')
    expect(html).toContain('跳过（频控/退订/不可达）：2 · 失败：0')
    expect(html).toContain('首日欢迎（第 0 小时，客服消息）: 3 → 0 → 0 → 0')
    expect(html).toContain('跳过（频控/退订/不可达）：0 · 失败：3')
  })
})
