/**
 * 推送 → 编辑 over `app.request()`: the form prefilled with the campaign (A/B, cron or one-shot
 * in the community's time), saving through `updateCampaign` (audited by name, status kept),
 * bad input naming the field and changing nothing, the refusals (viewer, CSRF, started, finished,
 * a campaign the form cannot show) and the edit links on the list and report — on every database.
 */
import type { Hono } from 'hono'
import { beforeAll, expect, it } from 'vitest'
import { createRouter } from '../../../handlers/index.js'
import {
  dispatchDue,
  manualClock,
  postForm,
  seedOperators,
  signIn,
} from '../../../test/console-kit.js'
import { forEachDatabase } from '../../../test/databases.js'
import { placeInSegment } from '../../../test/segment-fixtures.js'
import { SAFE_ACCOUNT, testConfig } from '../../../test/server.js'
import { changeCampaign, createCampaign } from '../../admin/actions/campaign-actions.js'
import { createApp } from '../../app.js'
import { silentLogger } from '../../logger.js'

forEachDatabase('console campaign edit', (db) => {
  const clock = manualClock(new Date('2026-11-20T02:00:30Z'))
  const appid = SAFE_ACCOUNT.appid
  const actor = { name: 'op1' }
  let app: Hono
  let op: { cookie: string; csrf: string }
  let viewer: { cookie: string; csrf: string }
  const deps = () => ({ db: db().db, clock })
  const get = (path: string, cookie = op.cookie) => app.request(path, { headers: { cookie } })
  const row = (id: number) =>
    db().db.selectFrom('campaigns').selectAll().where('id', '=', id).executeTakeFirstOrThrow()
  const template = (value: string) => ({
    template_id: 'TPL_RECALL',
    data: { thing1: { value }, number2: { value: '{{points}}' } },
    url: 'https://shop.example/recall',
  })
  const make = async (name: string, at = '2026-11-21T02:00:00Z') => {
    const k = await createCampaign(deps(), actor, {
      appid,
      name,
      audience: { segment: 'at_risk' },
      variants: [
        { key: 'A', weight: 60, template: template('回来领积分') },
        { key: 'B', weight: 40, template: template('老朋友') },
      ],
      schedule: { at },
      conversionDays: 5,
    })
    await changeCampaign(deps(), actor, { appid, id: k.id, move: 'schedule' })
    return k.id
  }
  /** The form as posted: every named field with its value (what the browser would send). */
  const fieldsOf = (html: string) => {
    const out: Record<string, string> = {}
    for (const m of html.matchAll(/<input ([^>]*)>/g)) {
      const attrs = m[1]!
      const name = /name="([^"]+)"/.exec(attrs)?.[1]
      if (!name) continue
      if (/type="checkbox"/.test(attrs) && !/checked/.test(attrs)) continue
      out[name] = (/value="([^"]*)"/.exec(attrs)?.[1] ?? '').replaceAll('&amp;', '&')
    }
    for (const m of html.matchAll(/<select id="[^"]+" name="([^"]+)">(.*?)<\/select>/gs))
      out[m[1]!] = /<option value="([^"]+)" selected/.exec(m[2]!)?.[1] ?? ''
    return out
  }
  const alert = (html: string) =>
    /<p class="notice error" role="alert">([^<]*)<\/p>/.exec(html)?.[1]

  beforeAll(async () => {
    await seedOperators(db().db, clock.now())
    const risk = await db()
      .db.insertInto('members')
      .values({
        appid,
        openid: 'o_edit_risk',
        subscribed: true,
        first_seen_at: new Date('2026-10-01T00:00:00Z'),
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    await placeInSegment(db().db, appid, [risk.id], 'at_risk')
    app = createApp({
      config: testConfig(),
      db: db().db,
      router: createRouter(),
      logger: silentLogger,
      clock,
      clientAddress: () => '203.0.113.9',
    })
    op = await signIn(app, 'op1')
    viewer = await signIn(app, 'viewer1')
  })

  it('prefills the form, saves the edit (status kept, audited by name) and says so on the list', async () => {
    const id = await make('召回 A/B')
    const list = await (await get('/console/campaigns')).text()
    expect(list).toContain(`href="/console/campaigns/${id}/edit"`)
    const report = await (await get(`/console/campaigns/${id}`)).text()
    expect(report).toContain(`href="/console/campaigns/${id}/edit"`)

    const form = await get(`/console/campaigns/${id}/edit`)
    expect(form.status).toBe(200)
    const html = await form.text()
    expect(html.length).toBeLessThan(100_000)
    expect(html).toContain('编辑推送：召回 A/B')
    expect(html).toContain('保存后状态不变（现在：已排期）')
    expect(html).toContain(`action="/console/campaigns/${id}/edit"`)
    const f = fieldsOf(html)
    expect(f).toMatchObject({
      name: '召回 A/B',
      audienceKind: 'segment',
      segment: 'at_risk',
      ab: '1',
      a_weight: '60',
      a_template: 'TPL_RECALL',
      a_key1: 'thing1',
      a_value1: '回来领积分',
      a_key2: 'number2',
      a_value2: '{{points}}',
      a_url: 'https://shop.example/recall',
      b_weight: '40',
      b_value1: '老朋友',
      scheduleKind: 'at',
      at: '2026-11-21T10:00', // Shanghai
      conversionDays: '5',
    })

    const saved = await postForm(app, `/console/campaigns/${id}/edit`, op.cookie, {
      ...f,
      _csrf: op.csrf,
      name: '召回（改）',
      a_value1: '回来领 50 积分',
      ab: '',
      scheduleKind: 'cron',
      cron: '0 10 * * 1',
    })
    expect(saved.status).toBe(303)
    expect(saved.headers.get('location')).toBe(`/console/campaigns?edited=${id}`)
    const k = await row(id)
    expect(k).toMatchObject({
      name: '召回（改）',
      status: 'scheduled',
      schedule_cron: '0 10 * * 1',
    })
    expect(k.run_at).toBeNull()
    expect(JSON.parse(k.variants)).toEqual([
      {
        key: 'A',
        weight: 100,
        template: { ...template('回来领 50 积分') },
      },
    ])
    const notice = await (await get(saved.headers.get('location')!)).text()
    expect(notice).toContain('已保存“召回（改）”的修改')
    const audit = await db()
      .db.selectFrom('audit_log')
      .select(['actor', 'client_address'])
      .where('action', '=', 'campaign.update')
      .where('target', '=', String(id))
      .execute()
    expect(audit).toEqual([{ actor: 'op1', client_address: '203.0.113.9' }])
    // the saved cron comes back in the form, without the A/B test
    const again = fieldsOf(await (await get(`/console/campaigns/${id}/edit`)).text())
    expect(again.ab).toBeUndefined()
    expect(again).toMatchObject({
      scheduleKind: 'cron',
      cron: '0 10 * * 1',
    })
  })

  it('refuses bad input naming the field, a viewer and a forged form; nothing changes', async () => {
    const id = await make('不改')
    const before = await row(id)
    const f = fieldsOf(await (await get(`/console/campaigns/${id}/edit`)).text())
    const post = (fields: Record<string, string>, who = op) =>
      postForm(app, `/console/campaigns/${id}/edit`, who.cookie, {
        ...f,
        _csrf: who.csrf,
        ...fields,
      })
    for (const [fields, text] of [
      [{ name: ' ' }, '名称：请填写名称，最多 80 个字'],
      [
        { b_value1: '这一段文字一共有二十一个字符长所以会被截断' },
        /^版本 B · thing1：21 个字，超过 20 字的上限/,
      ],
      [
        { scheduleKind: 'cron', cron: '0 10 * *' },
        '时间：须为 5 段：分 时 日 月 周（如 0 10 * * 1）',
      ],
      [{ at: '' }, /^时间：请填写发送时间/],
    ] as const) {
      const res = await post(fields)
      expect(res.status, JSON.stringify(fields)).toBe(400)
      const html = await res.text()
      expect(alert(html)).toMatch(text)
      expect(html).toContain('编辑推送：不改') // still the edit form, values kept
      expect(html).toContain('value="TPL_RECALL"')
    }
    expect((await post({}, viewer)).status).toBe(403)
    expect((await get(`/console/campaigns/${id}/edit`, viewer.cookie)).status).toBe(403)
    expect((await post({ _csrf: 'forged' })).status).toBe(403)
    expect(await row(id)).toEqual(before)
    expect((await get('/console/campaigns/999999/edit')).status).toBe(404)
    // a viewer sees no edit link
    expect(await (await get('/console/campaigns', viewer.cookie)).text()).not.toContain('/edit"')
  })

  it('refuses a campaign that started sending or was stopped, and one the form cannot show', async () => {
    const id = await make('已发', '2026-11-20T02:00:00Z')
    const f = fieldsOf(await (await get(`/console/campaigns/${id}/edit`)).text())
    await dispatchDue(db().db, clock.now())
    // the form was open when the run started: saving is refused with the reason
    const late = await postForm(app, `/console/campaigns/${id}/edit`, op.cookie, {
      ...f,
      _csrf: op.csrf,
      name: '太迟',
    })
    expect(late.status).toBe(409)
    expect(await late.text()).toContain(
      '“已发”已开始发送（已有批次入队），不能再修改；请停止后新建',
    )
    expect((await row(id)).name).toBe('已发')
    expect((await get(`/console/campaigns/${id}/edit`)).status).toBe(409)
    const list = await (await get('/console/campaigns')).text()
    expect(list).not.toContain(`/console/campaigns/${id}/edit`)
    expect(await (await get(`/console/campaigns/${id}`)).text()).not.toContain('/edit"')

    const stopped = await make('停了')
    await changeCampaign(deps(), actor, { appid, id: stopped, move: 'finish' })
    const finished = await get(`/console/campaigns/${stopped}/edit`)
    expect(finished.status).toBe(409)
    expect(await finished.text()).toContain('“停了”已结束，不能修改')

    const wide = await createCampaign(deps(), actor, {
      appid,
      name: '三个版本',
      audience: {},
      variants: ['A', 'B', 'C'].map((key) => ({ key, weight: 30, template: template(key) })),
      schedule: { cron: '0 10 * * *' },
      conversionDays: 7,
    })
    const api = await get(`/console/campaigns/${wide.id}/edit`)
    expect(api.status).toBe(409)
    expect(await api.text()).toContain(
      `请用 PATCH /admin/api/accounts/${appid}/campaigns/${wide.id} 修改`,
    )
    // A segment and a tag together: the form picks one kind, so saving would widen the audience.
    const both = await createCampaign(deps(), actor, {
      appid,
      name: '分层加标签',
      audience: { segment: 'loyal', tag: 5 },
      variants: [{ key: 'A', weight: 1, template: template('A') }],
      schedule: { cron: '0 10 * * *' },
      conversionDays: 7,
    })
    const combined = await get(`/console/campaigns/${both.id}/edit`)
    expect(combined.status).toBe(409)
    expect(await combined.text()).toContain('受众同时按分层、标签或群组合筛选')
  })
})
