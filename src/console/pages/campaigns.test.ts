/**
 * The 推送 pages over `app.request()`: the list, the new-campaign form (its live estimate, the
 * API's validation with the field named, nothing made on bad input), the lifecycle moves (roles,
 * CSRF, audit with the operator's name) and the report's verdict in words — on every database.
 */
import type { Hono } from 'hono'
import { beforeAll, describe, expect, it } from 'vitest'
import { createRouter } from '../../../handlers/index.js'
import { manualClock, postForm, seedOperators, signIn } from '../../../test/console-kit.js'
import { forEachDatabase } from '../../../test/databases.js'
import { placeInSegment } from '../../../test/segment-fixtures.js'
import { PLAIN_ACCOUNT, SAFE_ACCOUNT, testConfig } from '../../../test/server.js'
import { nextRuns } from '../../admin/reads/campaign-next-runs.js'
import { createApp } from '../../app.js'
import type { Segment } from '../../db/schema.js'
import { silentLogger } from '../../logger.js'
import { consoleTranslator } from '../i18n.js'
import { zonedInstant } from './campaign-form.js'
import { abVerdict } from './campaign-report.js'

const t = consoleTranslator('zh-CN')

describe('campaign form helpers', () => {
  it('read wall-clock times in the community time zone, DST included', () => {
    expect(zonedInstant('2026-11-21T10:00', 'Asia/Shanghai')?.toISOString()).toBe(
      '2026-11-21T02:00:00.000Z',
    )
    expect(zonedInstant('2026-07-01T10:00', 'America/New_York')?.toISOString()).toBe(
      '2026-07-01T14:00:00.000Z',
    )
    expect(zonedInstant('2026-01-05T10:00', 'America/New_York')?.toISOString()).toBe(
      '2026-01-05T15:00:00.000Z',
    )
    expect(zonedInstant('tomorrow', 'Asia/Shanghai')).toBeUndefined()
  })

  it('list the next five cron runs in the time zone, and a one-shot once while ahead', () => {
    const now = new Date('2026-11-20T02:00:30Z') // 10:00:30 in Shanghai
    expect(
      nextRuns({ cron: '0 10 * * 1-5' }, now, 'Asia/Shanghai').map((d) => d.toISOString()),
    ).toEqual([
      '2026-11-23T02:00:00.000Z',
      '2026-11-24T02:00:00.000Z',
      '2026-11-25T02:00:00.000Z',
      '2026-11-26T02:00:00.000Z',
      '2026-11-27T02:00:00.000Z',
    ])
    const at = new Date('2026-11-21T02:00:00Z')
    expect(nextRuns({ at }, now, 'Asia/Shanghai')).toEqual([at])
    expect(nextRuns({ at }, new Date('2026-11-22T00:00:00Z'), 'Asia/Shanghai')).toEqual([])
    expect(() => nextRuns({ cron: '0 10 * *' }, now, 'UTC')).toThrow(RangeError)
  })

  it('say the A/B result in words, with the sample still needed', () => {
    const variant = (key: string, n: number, converted: number) => ({
      variant: key,
      enqueued: n,
      conversionRate: n ? converted / n : null,
    })
    const significant = abVerdict(
      {
        variants: [variant('A', 2000, 200), variant('B', 2000, 260)] as never,
        abTest: { conversion: { z: -3, pValue: 0.0051, significant: true } } as never,
      },
      t,
    )
    expect(significant.verdict).toBe('B 的转化率比 A 高 3.0 个百分点，差异显著（p = 0.005）')
    expect(significant.warnings).toEqual([])
    const small = abVerdict(
      {
        variants: [variant('A', 50, 5), variant('B', 50, 4)] as never,
        abTest: { conversion: { z: 0.35, pValue: 0.7267, significant: false } } as never,
      },
      t,
    )
    expect(small.verdict).toMatch(
      /^B 的转化率比 A 低 2\.0 个百分点，差异还不显著（p = 0\.727），每组至少还需约 \d+ 人$/,
    )
    expect(small.warnings[0]).toBe('每个版本至少需要 100 人，最少的只有 50 人')
    expect(abVerdict({ variants: [variant('A', 5, 1)] as never, abTest: null }, t).verdict).toBe(
      '只有一个版本，或还没有人收到推送，暂无法比较',
    )
  })
})

forEachDatabase('console campaigns', (db) => {
  const clock = manualClock(new Date('2026-11-20T02:00:30Z'))
  const appid = SAFE_ACCOUNT.appid
  let app: Hono
  let op: { cookie: string; csrf: string }
  let viewer: { cookie: string; csrf: string }
  const campaigns = () => db().db.selectFrom('campaigns').selectAll().orderBy('id').execute()
  const member = async (
    openid: string,
    { segment = 'at_risk', ...fields }: Record<string, unknown> & { segment?: Segment },
  ) => {
    const row = await db()
      .db.insertInto('members')
      .values({
        appid,
        openid,
        subscribed: true,
        first_seen_at: new Date('2026-10-01T00:00:00Z'),
        ...fields,
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    await placeInSegment(db().db, appid, [row.id], segment)
  }
  const valid = (csrf: string): Record<string, string> => ({
    _csrf: csrf,
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
    b_weight: '40',
    b_template: 'TPL_RECALL',
    b_key1: 'thing1',
    b_value1: '老朋友，送你 50 积分',
    scheduleKind: 'at',
    at: '2026-11-21T10:00',
    cron: '0 10 * * *',
    conversionDays: '7',
  })

  beforeAll(async () => {
    await seedOperators(db().db, clock.now())
    await member('o_risk1', {})
    await member('o_risk2', { marketing_opt_out: true })
    await member('o_risk3', { subscribed: false })
    await member('o_loyal', { segment: 'loyal' })
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

  it('estimates the audience and the next runs for the chosen values', async () => {
    const q = 'audienceKind=segment&segment=at_risk&scheduleKind=cron&cron=0+10+*+*+*'
    const res = await app.request(`/console/campaigns/estimate?${q}`, {
      headers: { cookie: op.cookie },
    })
    expect(await res.json()).toEqual({
      audience: '受众 3 人，现在可触达 1 人',
      audienceDetail: '退订营销 1 人，无法接收模板消息 1 人',
      runs: '2026-11-21 10:00，2026-11-22 10:00，2026-11-23 10:00，2026-11-24 10:00，2026-11-25 10:00',
    })
    const all = await app.request('/console/campaigns/estimate?audienceKind=all&cron=x', {
      headers: { cookie: op.cookie },
    })
    expect((await all.json()).audience).toBe('受众 4 人，现在可触达 2 人')
  })

  it('shows the form with the engine settings; refuses a viewer', async () => {
    const page = await app.request('/console/campaigns/new', { headers: { cookie: op.cookie } })
    const html = await page.text()
    expect(html).toContain('受众 3 人，现在可触达 1 人')
    expect(html).toContain('每个字段最多 20 个字')
    expect(html).toMatch(/频控与免打扰/)
    // the group channel is chosen from a list of names, not typed as a code
    expect(html).toMatch(
      /<select id="cf-groupChannel" name="groupChannel"><option value="wecom_aibot" selected="">企业微信（智能机器人）<\/option><option value="wecom_customer">企业微信客户群<\/option><\/select>/,
    )
    expect(html.length).toBeLessThan(100_000)
    const refused = await app.request('/console/campaigns/new', {
      headers: { cookie: viewer.cookie },
    })
    expect(refused.status).toBe(403)
  })

  it('refuses bad input naming the field, and makes nothing', async () => {
    const bad = async (fields: Record<string, string>, text: string | RegExp) => {
      const res = await postForm(app, '/console/campaigns/new', op.cookie, {
        ...valid(op.csrf),
        ...fields,
      })
      expect(res.status, JSON.stringify(fields)).toBe(400)
      const html = await res.text()
      const alert = /<p class="notice error" role="alert">([^<]*)<\/p>/.exec(html)?.[1] ?? html
      expect(alert).toMatch(text)
      expect(html).toContain('value="TPL_RECALL"') // the values are kept
    }
    await bad(
      { b_value1: '这一段文字一共有二十一个字符长所以会被截断' },
      /^版本 B · thing1：21 个字，超过 20 字的上限（微信会截断）/,
    )
    await bad({ a_value1: '第一行\n第二行' }, /^版本 A · thing1：不能换行/)
    await bad({ a_key1: 'first' }, /^版本 A · first：2023-05-04 起微信不再显示 first\/remark/)
    await bad(
      { scheduleKind: 'cron', cron: '0 10 * *' },
      '时间：须为 5 段：分 时 日 月 周（如 0 10 * * 1）',
    )
    await bad({ at: '' }, '时间：请填写发送时间')
    await bad({ name: ' ' }, '名称：请填写名称，最多 80 个字')
    await bad({ b_weight: '0' }, '版本 B · 权重：须为 1–100 的整数')
    await bad({ audienceKind: 'tag', tag: 'abc' }, '微信标签 ID：须为正整数')
    expect(await campaigns()).toEqual([])
    const noCsrf = await postForm(app, '/console/campaigns/new', op.cookie, {
      ...valid(op.csrf),
      _csrf: 'forged',
    })
    expect(noCsrf.status).toBe(403)
    const asViewer = await postForm(
      app,
      '/console/campaigns/new',
      viewer.cookie,
      valid(viewer.csrf),
    )
    expect(asViewer.status).toBe(403)
    expect(await campaigns()).toEqual([])
  })

  it('makes an A/B draft, then schedules, pauses and stops it, audited by name', async () => {
    const res = await postForm(app, '/console/campaigns/new', op.cookie, valid(op.csrf))
    expect(res.status).toBe(303)
    const [row] = await campaigns()
    expect(res.headers.get('location')).toBe(`/console/campaigns?created=${row!.id}`)
    expect(row).toMatchObject({ name: '召回 A/B', status: 'draft', conversion_days: 7 })
    expect(row!.run_at?.toISOString()).toBe('2026-11-21T02:00:00.000Z')
    expect(JSON.parse(row!.audience)).toEqual({ segment: 'at_risk' })
    expect(JSON.parse(row!.variants)).toEqual([
      {
        key: 'A',
        weight: 60,
        template: {
          template_id: 'TPL_RECALL',
          data: { thing1: { value: '回来领积分' }, number2: { value: '{{points}}' } },
        },
      },
      {
        key: 'B',
        weight: 40,
        template: {
          template_id: 'TPL_RECALL',
          data: { thing1: { value: '老朋友，送你 50 积分' } },
        },
      },
    ])
    const list = await app.request(`/console/campaigns?created=${row!.id}`, {
      headers: { cookie: op.cookie },
    })
    const html = await list.text()
    expect(html).toContain('已创建草稿“召回 A/B”')
    expect(html).toContain('分层：流失风险')
    expect(html).toContain('0 → 0 → 0 → 0')
    // the one-shot time names its time zone, as the form does
    expect(html).toContain('一次：2026-11-21 10:00（Asia/Shanghai）')

    const move = (who: typeof op, m: string, csrf = who.csrf) =>
      postForm(app, `/console/campaigns/${row!.id}/${m}`, who.cookie, { _csrf: csrf })
    expect((await move(viewer, 'schedule')).status).toBe(403)
    expect((await move(op, 'schedule', 'forged')).status).toBe(403)
    expect((await move(op, 'resume')).status).toBe(409)
    expect((await campaigns())[0]!.status).toBe('draft')
    const scheduled = await move(op, 'schedule')
    expect(scheduled.status).toBe(303)
    expect(scheduled.headers.get('location')).toBe(
      `/console/campaigns?moved=${row!.id}&move=schedule`,
    )
    expect((await move(op, 'pause')).status).toBe(303)
    expect((await move(op, 'resume')).status).toBe(303)
    expect((await move(op, 'finish')).status).toBe(303)
    expect((await campaigns())[0]!.status).toBe('finished')
    expect(
      (await postForm(app, '/console/campaigns/999999/pause', op.cookie, { _csrf: op.csrf }))
        .status,
    ).toBe(404)
    expect(
      (await postForm(app, `/console/campaigns/${row!.id}/delete`, op.cookie, { _csrf: op.csrf }))
        .status,
    ).toBe(404)
    const audit = await db()
      .db.selectFrom('audit_log')
      .select(['actor', 'action', 'target'])
      .where('action', 'like', 'campaign.%')
      .orderBy('id')
      .execute()
    expect(audit).toEqual(
      ['create', 'schedule', 'pause', 'resume', 'finish'].map((a) => ({
        actor: 'op1',
        action: `campaign.${a}`,
        target: String(row!.id),
      })),
    )
    const report = await app.request(`/console/campaigns/${row!.id}`, {
      headers: { cookie: viewer.cookie },
    })
    expect(report.status).toBe(200)
    expect(await report.text()).toContain('只有一个版本，或还没有人收到推送，暂无法比较')
  })

  it('pages the list 50 at a time, newest first, keeping the account', async () => {
    const other = PLAIN_ACCOUNT.appid
    const at = new Date('2026-11-01T00:00:00Z')
    const names = Array.from({ length: 60 }, (_, i) => `paged-${String(i).padStart(2, '0')}`)
    await db()
      .db.insertInto('campaigns')
      .values(
        names.map((name) => ({
          appid: other,
          name,
          status: 'draft' as const,
          audience: '{}',
          variants: '[]',
          schedule_cron: null,
          run_at: at,
          created_at: at,
          updated_at: at,
        })),
      )
      .execute()
    const get = async (path: string) =>
      (await app.request(path, { headers: { cookie: viewer.cookie } })).text()
    const shown = (html: string) => [...html.matchAll(/>(paged-\d\d)</g)].map((m) => m[1])
    const first = await get(`/console/campaigns?appid=${other}`)
    expect(shown(first)).toEqual(names.slice(10).reverse())
    expect(first).not.toContain('← 最新')
    const older = /href="([^"]*before=\d+[^"]*)" rel="next">更早/.exec(first)![1]!
    expect(older.replaceAll('&amp;', '&')).toMatch(
      new RegExp(`^/console/campaigns\\?appid=${other}&before=\\d+$`),
    )
    const second = await get(older.replaceAll('&amp;', '&'))
    expect(shown(second)).toEqual(names.slice(0, 10).reverse())
    expect(second).not.toContain('更早 →')
    expect(second).toContain(`href="/console/campaigns?appid=${other}">← 最新</a>`)
    // A notice names a campaign on an older page too (the redirects show the newest page).
    const oldest = await db()
      .db.selectFrom('campaigns')
      .select('id')
      .where('name', '=', 'paged-00')
      .executeTakeFirstOrThrow()
    expect(await get(`/console/campaigns?appid=${other}&created=${oldest.id}`)).toContain(
      '已创建草稿“paged-00”',
    )
    // The default account's page is not paged (one campaign).
    expect(await get('/console/campaigns')).not.toContain('更早 →')
  })

  it('refuses a one-shot time that has passed, and scheduling a draft that waited past its time', async () => {
    const named = (name: string) => campaigns().then((all) => all.filter((c) => c.name === name))
    const post = (name: string, at: string) =>
      postForm(app, '/console/campaigns/new', op.cookie, { ...valid(op.csrf), name, at })
    // 10:00:30 in Shanghai: 4 days ago and 10:00 yesterday have passed; this minute has not
    for (const at of ['2026-11-16T10:00', '2026-11-19T10:00', '2026-11-20T09:59']) {
      const res = await post('过去', at)
      expect(res.status, at).toBe(400)
      const html = await res.text()
      expect(/<p class="notice error" role="alert">([^<]*)<\/p>/.exec(html)?.[1]).toBe(
        '时间：发送时间已过，请选择此刻或之后的时间（一次性推送在所选时间发送）',
      )
    }
    expect(await named('过去')).toEqual([])
    expect((await post('此刻', '2026-11-20T10:00')).status).toBe(303)
    expect((await post('稍后', '2026-11-20T10:05')).status).toBe(303)
    const [later] = await named('稍后')
    // the draft waits past its time: scheduling it is refused (it would be sent at once)
    clock.advance(10 * 60_000)
    try {
      const move = (m: string) =>
        postForm(app, `/console/campaigns/${later!.id}/${m}`, op.cookie, { _csrf: op.csrf })
      const refused = await move('schedule')
      expect(refused.status).toBe(409)
      expect(await refused.text()).toContain('发送时间已过：请先编辑推送')
      expect((await named('稍后'))[0]!.status).toBe('draft')
      expect((await move('finish')).status).toBe(303)
    } finally {
      clock.advance(-10 * 60_000)
    }
  })

  it('asks before stopping a campaign (it cannot be undone); nothing changes until confirmed', async () => {
    const made = await postForm(app, '/console/campaigns/new', op.cookie, {
      ...valid(op.csrf),
      name: '待停止',
    })
    expect(made.status).toBe(303)
    const row = (await campaigns()).find((k) => k.name === '待停止')!
    const get = (path: string, who = op) => app.request(path, { headers: { cookie: who.cookie } })
    // the list links to the confirmation step; no form posts the move from the list
    const list = await (await get('/console/campaigns')).text()
    expect(list).toContain(
      `<a href="/console/campaigns/${row.id}/finish" aria-label="停止 待停止">停止</a>`,
    )
    expect(list).not.toContain(`action="/console/campaigns/${row.id}/finish"`)
    expect(list).toContain(`action="/console/campaigns/${row.id}/schedule"`)
    // the step says what stopping does and posts the move; it changes nothing itself
    const step = await get(`/console/campaigns/${row.id}/finish`)
    expect(step.status).toBe(200)
    const html = await step.text()
    expect(html).toContain('停止推送“待停止”？')
    expect(html).toContain('不能恢复')
    expect(html).toContain('排队中尚未发送的推送会被取消')
    expect(html).toMatch(
      new RegExp(`<form method="post" action="/console/campaigns/${row.id}/finish"[^>]*>`),
    )
    expect(html).toContain('>确认停止</button>')
    expect(html).toContain('href="/console/campaigns">返回推送列表</a>')
    expect((await campaigns()).find((k) => k.id === row.id)!.status).toBe('draft')
    expect((await get(`/console/campaigns/${row.id}/finish`, viewer)).status).toBe(403)
    expect((await get('/console/campaigns/999999/finish')).status).toBe(404)
    // confirmed: stopped; the step of a stopped campaign says so, with no button
    const done = await postForm(app, `/console/campaigns/${row.id}/finish`, op.cookie, {
      _csrf: op.csrf,
    })
    expect([done.status, done.headers.get('location')]).toEqual([
      303,
      `/console/campaigns?moved=${row.id}&move=finish`,
    ])
    expect((await campaigns()).find((k) => k.id === row.id)!.status).toBe('finished')
    const after = await (await get(`/console/campaigns/${row.id}/finish`)).text()
    expect(after).toContain('这个推送已结束，不能停止。')
    expect(after).not.toContain('确认停止')
  })

  it('says a recurring schedule with its next run, and a tag or a group audience in words', async () => {
    const at = clock.now()
    const insert = (name: string, audience: object, cron: string | null, status = 'running') =>
      db()
        .db.insertInto('campaigns')
        .values({
          appid,
          name,
          status: status as 'running',
          audience: JSON.stringify(audience),
          variants: '[]',
          schedule_cron: cron,
          run_at: cron ? null : at,
          created_at: at,
          updated_at: at,
        })
        .returning('id')
        .executeTakeFirstOrThrow()
    const every10 = await insert('每十分钟', { tag: 101 }, '*/10 * * * *')
    await insert('群推送', { group: { channel: 'wecom_aibot', chatId: 'wrChat1' } }, null, 'draft')
    await insert('已停', {}, '0 10 * * *', 'finished')
    const page = async (lang: string) =>
      (
        await app.request(`/console/campaigns?lang=${lang}`, { headers: { cookie: op.cookie } })
      ).text()
    const zh = await page('zh-CN')
    // 10:00:30 in Shanghai: the next slot of */10 is 10:10
    expect(zh).toContain('周期（cron：*/10 * * * *） · 下次 2026-11-20 10:10（Asia/Shanghai）')
    expect(zh).not.toContain('每天/周期')
    expect(zh).toContain('周期（cron：0 10 * * *）<') // finished: no next run
    expect(zh).toContain('微信标签 ID 101')
    expect(zh).toContain('群 wrChat1（企业微信（智能机器人））')
    expect(zh).not.toContain('wecom_aibot')
    const en = await page('en')
    expect(en).toContain('Recurring (cron: */10 * * * *) · next 2026-11-20 10:10 (Asia/Shanghai)')
    expect(en).toContain('WeChat tag id 101')
    // the report says the same
    const report = await (
      await app.request(`/console/campaigns/${every10.id}`, { headers: { cookie: op.cookie } })
    ).text()
    expect(report).toContain('下次 2026-11-20 10:10（Asia/Shanghai）')
    await db()
      .db.deleteFrom('campaigns')
      .where('name', 'in', ['每十分钟', '群推送', '已停'])
      .execute()
  })
})
