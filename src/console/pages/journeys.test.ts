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

  /** The key of a journey's first step. */
  const firstStep = async (id: number) => {
    const j = await findJourney(db().db, appid, id)
    return (JSON.parse(j!.steps) as JourneyStep[])[0]!.key
  }

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
    expect(html).toContain('新人欢迎（welcome series）')
    expect(html).toContain('沉默召回（recall offer）')
    expect(html).toContain('day1（第 24 小时，客服消息）: 0 → 0 → 0 → 0')
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
    expect(await page.text()).toContain('「新人欢迎（welcome series）」现在进行中')
    const refused = await post(op, `/console/journeys/${recall}/activate`)
    expect(refused.status).toBe(409)
    const refusal = await refused.text()
    expect(refusal).toContain(
      `不能切换：步骤 ${await firstStep(recall)} 发送模板消息，但没有设置模板`,
    )
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
    const key = steps[0]!.key
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
      `不能切换：步骤 ${key} 的模板 · thing1：不能换行（微信会截断换行后的内容）`,
    )
    expect(await refusal('en')).toBe(
      `Cannot switch: step ${key}, template · thing1: no line breaks (WeChat truncates the value there)`,
    )
    expect((await findJourney(db().db, appid, recall))!.status).toBe('paused')
  })
})
