/**
 * The operator and mini-program APIs at their edges, over real HTTP (issue 13): bad input is a
 * 400 naming every field, never a 500; refused operator calls are audited with the client's
 * address; URLs are clean; login is rate-limited; session tokens have exactly one shape.
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { SAFE_ACCOUNT, startServer, type TestServer, testConfig } from '../../test/server.js'
import { silentLogger } from '../logger.js'
import type { SandboxPay } from '../sandbox/pay-server.js'
import { startSandboxShop } from '../sandbox/sandbox-shop.js'
import { type SandboxApi, startSandboxApi } from '../sandbox/wechat-api-server.js'
import { nodeShop } from '../shop/node-shop.js'
import type { ShopRouteOptions } from './shop.js'

const TOKEN = 'edge-operator-token-0123456789'
const INT_MAX = 2_147_483_647

let wx: SandboxApi
beforeAll(async () => {
  wx = await startSandboxApi()
})
afterAll(() => wx.close())

forEachDatabase('inbound doors: the operator and mini-program APIs at their edges', (get) => {
  let server: TestServer
  let pay: SandboxPay
  let shop: ShopRouteOptions['shop']
  // The server's clock: the real one, which a test may hold still (`held`) — the login's rate
  // buckets refill with it, so a slow run would otherwise earn tokens back mid-test.
  let held: Date | undefined
  const clock = { now: () => held ?? new Date() }

  beforeAll(async () => {
    const sandbox = await startSandboxShop({ notifyUrl: 'http://placeholder/pay/notify' })
    pay = sandbox.pay
    shop = await nodeShop(sandbox.config, {
      appid: SAFE_ACCOUNT.appid,
      apiBase: wx.url,
      logger: silentLogger,
    })
    server = await startServer(get().db, {
      config: testConfig({ ADMIN_TOKEN: TOKEN }),
      shop,
      clock,
    })
    shop.settings.notifyUrl = `${server.url}/pay/notify`
  })
  afterAll(async () => {
    await server?.close()
    await pay?.close()
  })

  const base = `/admin/api/accounts/${SAFE_ACCOUNT.appid}`
  const call = async (method: string, path: string, body?: unknown, token = TOKEN) => {
    const res = await fetch(`${server.url}${path.startsWith('/admin/') ? '' : base}${path}`, {
      method,
      redirect: 'manual',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    // biome-ignore lint/suspicious/noExplicitAny: response JSON, checked by the assertions
    const json = (await res.json().catch(() => null)) as Record<string, any> | null
    return { status: res.status, json, headers: res.headers }
  }
  const mp = async (path: string, init: { token?: string; body?: unknown } = {}) => {
    const res = await fetch(`${server.url}/api/mp${path}`, {
      method: init.body === undefined ? 'GET' : 'POST',
      headers: {
        'content-type': 'application/json',
        ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
      },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    })
    // biome-ignore lint/suspicious/noExplicitAny: response JSON, checked by the assertions
    const json = (await res.json()) as Record<string, any>
    return { status: res.status, json, headers: res.headers }
  }
  const seedMember = async (openid: string) =>
    get()
      .db.insertInto('members')
      .values({ appid: SAFE_ACCOUNT.appid, openid, first_seen_at: new Date() })
      .returning('id')
      .executeTakeFirstOrThrow()

  it('answers out-of-range integers, impossible dates and junk periods with 400, never 500', async () => {
    await seedMember('o_edges')
    expect((await call('GET', '/activities')).status).toBe(200) // seeds the default activities
    const cases: [string, string, unknown, string][] = [
      ['POST', '/rewards', { code: 1e20, name: 'x', cost: 1 }, 'code'],
      ['POST', '/rewards', { code: 77, name: 'x', cost: 3e9 }, 'cost'],
      ['PATCH', '/rewards/99999999999', { stock: 1 }, 'code'],
      ['PATCH', '/rewards/abc', { stock: 1 }, 'code'],
      ['POST', '/redemptions/100000000000000000000/cancel', undefined, 'id'],
      ['GET', '/members/%00/ledger', undefined, 'url'],
      ['GET', '/activities/%00/signups', undefined, 'url'],
      ['GET', '/members/o_edges/ledger?before=1e20', undefined, 'before'],
      ['GET', '/members/o_edges/ledger?before=99999999999999999999', undefined, 'before'],
      ['GET', '/invites/report?from=2026-02-31&to=2026-03-10', undefined, 'from'],
      ['PUT', '/rules/checkin', { points: 1, capCount: 1e10, capPeriod: 'day' }, 'capCount'],
      ['GET', '/activities/checkin/signups?period=junk', undefined, 'period'],
      ['GET', '/activities/checkin/signups?period=2026-02-30', undefined, 'period'],
      [
        'POST',
        '/activities/checkin/award',
        { openids: ['o_edges'], period: '2026-13-01' },
        'period',
      ],
      [
        'POST',
        '/activities',
        {
          key: 'big',
          name: 'n',
          description: '',
          cron: '0 9 * * *',
          cadence: 'daily',
          capacity: 1e10,
        },
        'capacity',
      ],
      [
        'POST',
        '/shop/products',
        { sku: 'edge-1', kind: 'flash_sale', name: 'x', priceFen: 100, perMemberLimit: 1e10 },
        'perMemberLimit',
      ],
      [
        'POST',
        '/shop/products',
        {
          sku: 'edge-2',
          kind: 'flash_sale',
          name: 'x',
          priceFen: 100,
          startsAt: '2026-02-31T10:00:00+08:00',
        },
        'startsAt',
      ],
    ]
    for (const [method, path, body, field] of cases) {
      const res = await call(method, path, body)
      expect(res.status, `${method} ${path}`).toBe(400)
      expect(res.json?.code).toBe('BAD_REQUEST')
      expect(
        res.json?.issues?.map((i: { path: string }) => i.path),
        `${method} ${path}`,
      ).toEqual([field])
    }
    // the ledger still pages with good values
    expect((await call('GET', '/members/o_edges/ledger?before=5&limit=500')).status).toBe(200)
  })

  it('refuses an empty PATCH with 400 (never UPDATE … SET nothing), changing nothing', async () => {
    expect((await call('GET', '/activities')).status).toBe(200) // seeds the default activities
    expect((await call('GET', '/shop/products')).status).toBe(200) // seeds the default products
    const made = await call('POST', '/shop/products', {
      sku: 'edge-empty',
      kind: 'flash_sale',
      name: 'x',
      priceFen: 100,
    })
    expect(made.status).toBe(201)
    expect((await call('POST', '/rewards', { code: 4242, name: 'x', cost: 1 })).status).toBe(201)
    const audited = async () =>
      (await get().db.selectFrom('audit_log').select('action').execute()).filter((r) =>
        /\.update$/.test(r.action),
      ).length
    const updates = await audited()
    for (const path of ['/activities/checkin', '/shop/products/edge-empty', '/rewards/4242']) {
      const res = await call('PATCH', path, {})
      expect([res.status, res.json?.code, res.json?.message], path).toEqual([
        400,
        'BAD_REQUEST',
        'body: nothing to change',
      ])
      expect(res.json?.issues).toEqual([{ path: 'body', message: 'nothing to change' }])
    }
    expect(await audited()).toBe(updates)
  })

  it('refuses a sale window that ends before it starts, on create and against the stored one', async () => {
    const window = { startsAt: '2026-12-10T00:00:00+08:00', endsAt: '2026-12-01T00:00:00+08:00' }
    const product = { kind: 'flash_sale', name: 'x', priceFen: 100 }
    for (const endsAt of [window.endsAt, window.startsAt]) {
      const res = await call('POST', '/shop/products', {
        ...product,
        sku: 'edge-window',
        startsAt: window.startsAt,
        endsAt,
      })
      expect([res.status, res.json?.message]).toEqual([400, 'endsAt: must be after startsAt'])
    }
    const stored = () =>
      get()
        .db.selectFrom('products')
        .select(['starts_at', 'ends_at'])
        .where('sku', '=', 'edge-window')
        .executeTakeFirst()
    expect(await stored()).toBeUndefined()
    const made = await call('POST', '/shop/products', {
      ...product,
      sku: 'edge-window',
      startsAt: window.startsAt,
    })
    expect(made.status).toBe(201)
    // only endsAt in the body: checked against the stored startsAt
    const refused = await call('PATCH', '/shop/products/edge-window', { endsAt: window.endsAt })
    expect([refused.status, refused.json?.message]).toEqual([400, 'endsAt: must be after startsAt'])
    expect((await stored())?.ends_at).toBeNull()
    const ends = '2026-12-20T00:00:00+08:00'
    expect((await call('PATCH', '/shop/products/edge-window', { endsAt: ends })).status).toBe(200)
    // only startsAt in the body: checked against the stored endsAt
    const late = await call('PATCH', '/shop/products/edge-window', {
      startsAt: '2026-12-21T00:00:00+08:00',
    })
    expect([late.status, late.json?.message]).toEqual([400, 'endsAt: must be after startsAt'])
    expect(new Date((await stored())!.starts_at!)).toEqual(new Date(window.startsAt))
    expect((await call('PATCH', '/shop/products/nope', { endsAt: ends })).status).toBe(404)
  })

  it('bounds the audit log filter to the days reports cover (2000–2100): 400, never 500', async () => {
    for (const [query, field] of [
      ['to=9999-12-31', 'to'],
      ['from=9999-12-31', 'from'],
      ['from=1999-12-31', 'from'],
      ['to=2101-01-01&format=csv', 'to'],
    ]) {
      const res = await call('GET', `/audit-log?${query}`)
      expect([res.status, res.json?.code], query).toEqual([400, 'BAD_REQUEST'])
      expect(res.json?.issues, query).toEqual([
        { path: field, message: 'must be a day between 2000 and 2100' },
      ])
    }
    const edges = await call('GET', '/audit-log?from=2000-01-01&to=2100-12-31')
    expect(edges.status).toBe(200)
  })

  it('lists every problem of a body, field by field', async () => {
    await seedMember('o_fields')
    const res = await call('POST', '/members/o_fields/points', { delta: 1.5, reason: '', x: 1 })
    expect(res.status).toBe(400)
    expect(res.json).toEqual({
      code: 'BAD_REQUEST',
      message: 'delta: must be a whole number; reason: is required; x: is not a known field',
      issues: [
        { path: 'delta', message: 'must be a whole number' },
        { path: 'reason', message: 'is required' },
        { path: 'x', message: 'is not a known field' },
      ],
    })
    const nul = await call('POST', '/members/o_fields/points', { delta: 1, reason: 'a\u0000b' })
    expect(nul.status).toBe(400)
    expect(nul.json?.issues).toEqual([{ path: 'body', message: 'must not contain NUL characters' }])
  })

  it("answers README's example exactly as README prints it, in plain words, never echoing the input", async () => {
    await seedMember('o_readme')
    // README, Operator API: `{"delta":1.5}` →
    const readme =
      '{"code":"BAD_REQUEST","message":"delta: must be a whole number; reason: is required",' +
      '"issues":[{"path":"delta","message":"must be a whole number"},{"path":"reason","message":"is required"}]}'
    const res = await call('POST', '/members/o_readme/points', { delta: 1.5 })
    expect(res.status).toBe(400)
    expect(res.json).toEqual(JSON.parse(readme))
    for (const [body, issues] of [
      [{ delta: 1, reason: 'x', x: 'secret' }, [{ path: 'x', message: 'is not a known field' }]],
      [
        { delta: 'secret-1', reason: 42 },
        [
          { path: 'delta', message: 'must be a number' },
          { path: 'reason', message: 'must be a string' },
        ],
      ],
      ['secret', [{ path: 'body', message: 'must be an object' }]],
    ] as const) {
      const bad = await call('POST', '/members/o_readme/points', body)
      expect([bad.status, bad.json?.code], JSON.stringify(body)).toEqual([400, 'BAD_REQUEST'])
      expect(bad.json?.issues, JSON.stringify(body)).toEqual(issues)
      expect(bad.json?.message).not.toMatch(/Expected|received|secret|Invalid/)
    }
    const query = await call('GET', '/audit-log?format=secret')
    expect([query.status, query.json?.issues]).toEqual([
      400,
      [{ path: 'format', message: 'must be one of "json", "csv"' }],
    ])
  })

  it('refuses a body that is not UTF-8 or holds a lone surrogate: 400, nothing stored or paid', async () => {
    const send = async (method: string, url: string, body: string | ArrayBuffer, token = TOKEN) => {
      const res = await fetch(`${server.url}${url}`, {
        method,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body,
      })
      return { status: res.status, json: (await res.json()) as Record<string, unknown> }
    }
    const latin1 = (s: string) => new Uint8Array(Buffer.from(s, 'latin1')).buffer
    expect((await call('GET', '/shop/products')).status).toBe(200) // seeds the default products
    const tea = () =>
      get()
        .db.selectFrom('products')
        .select('name')
        .where('sku', '=', 'flash-tea')
        .executeTakeFirstOrThrow()
    const name = (await tea()).name
    for (const [method, path, body, message] of [
      ['PATCH', '/shop/products/flash-tea', latin1('{"name":"\xff\xfe"}'), 'must be UTF-8'],
      [
        'POST',
        '/rewards',
        latin1('{"code":4343,"name":"\xff\xfe\xfd","cost":5,"stock":1}'),
        'must be UTF-8',
      ],
      [
        'PATCH',
        '/shop/products/flash-tea',
        '{"name":"a\\ud800b"}',
        'must be well-formed Unicode (no lone surrogates)',
      ],
      [
        'POST',
        '/rewards',
        '{"code":4343,"name":"x","cost":5,"\\udc00":1}',
        'must be well-formed Unicode (no lone surrogates)',
      ],
    ] as const) {
      const res = await send(method, `${base}${path}`, body)
      expect(res.status, `${method} ${path} ${String(body)}`).toBe(400)
      expect(res.json.issues).toEqual([{ path: 'body', message }])
    }
    expect((await tea()).name).toBe(name)
    const reward = await get()
      .db.selectFrom('rewards')
      .select('code')
      .where('code', '=', 4343)
      .executeTakeFirst()
    expect(reward).toBeUndefined()
    // the mini program: a nickname with a lone surrogate is refused and pays nothing
    const token = await login()
    const profile = (nickname: string) =>
      send(
        'PUT',
        '/api/mp/profile',
        JSON.stringify({ nickname, birthMonth: 5, city: '杭州' }),
        token,
      )
    const lone = await profile('a\ud800b')
    expect(lone.status).toBe(400)
    expect(lone.json.issues).toEqual([
      { path: 'body', message: 'must be well-formed Unicode (no lone surrogates)' },
    ])
    // a pair is text: the same profile with an emoji is stored and paid, once
    const good = await profile('a😀b')
    expect(good.status).toBe(200)
    expect(good.json.awarded).toBeGreaterThan(0)
    expect((good.json.profile as { nickname: string }).nickname).toBe('a😀b')
  })

  it('pages lists by whole numbers only: ?limit=1.5 is a 400 naming limit, never a 500', async () => {
    for (const path of ['/shop/orders', '/shop/points-shortfalls', '/members/o_edges/ledger']) {
      for (const limit of ['1.5', '0', '-1', '1e3', 'ten', '']) {
        const res = await call('GET', `${path}?limit=${limit}`)
        expect(res.status, `${path}?limit=${limit}`).toBe(400)
        expect(res.json?.issues, `${path}?limit=${limit}`).toEqual([
          { path: 'limit', message: 'must be a whole number ≥ 1' },
        ])
      }
      // a whole number pages; a larger page than the list's largest is served as the largest
      for (const limit of ['1', '500', '99999999999'])
        expect((await call('GET', `${path}?limit=${limit}`)).status, `${path} ${limit}`).toBe(200)
    }
  })

  it('refuses a grant that would take the balance past the integer column, changing nothing', async () => {
    const m = await seedMember('o_rich')
    await get()
      .db.updateTable('members')
      .set({ points_balance: INT_MAX - 10, points_lifetime: INT_MAX - 10 })
      .where('id', '=', m.id)
      .execute()
    const res = await call('POST', '/members/o_rich/points', {
      delta: 100,
      reason: '奖励',
      idempotencyKey: 'rich-1',
    })
    expect(res.status).toBe(409)
    expect(res.json).toMatchObject({ code: 'BALANCE_LIMIT', balance: INT_MAX - 10 })
    const ok = await call('POST', '/members/o_rich/points', { delta: 10, reason: '奖励' })
    expect(ok.status).toBe(201)
    expect(ok.json).toMatchObject({ status: 'applied', balance: INT_MAX })
    // a deduction still works at the top
    expect((await call('POST', '/members/o_rich/points', { delta: -1, reason: '扣' })).status).toBe(
      201,
    )
  })

  it('refuses campaign URLs that are not clean absolute http(s) URLs', async () => {
    const template = (url: string) => ({
      name: 'u',
      audience: { segment: 'at_risk' },
      schedule: { cron: '0 10 * * *' },
      template: { template_id: 'TPL', data: { thing1: { value: '你好' } }, url },
    })
    for (const url of [
      'https://your.host/points\r\nSet-Cookie: a=b',
      'https://your.host/a b',
      'javascript:alert(1)',
      'https://your.host/\u0007',
      '/relative',
    ]) {
      const res = await call('POST', '/campaigns', template(url))
      expect(res.status, JSON.stringify(url)).toBe(400)
      expect(res.json?.issues?.[0]?.path).toBe('template.url')
    }
    expect((await call('POST', '/campaigns', template('https://your.host/points'))).status).toBe(
      201,
    )
    const at = await call('POST', '/campaigns', {
      ...template('https://your.host/points'),
      schedule: { at: '2026-02-31T10:00:00+08:00' },
    })
    expect(at.status).toBe(400)
  })

  it('never answers 500 for a tracked link whose stored target is unsafe, and does not count it', async () => {
    const m = await seedMember('o_click')
    const campaign = await get()
      .db.insertInto('campaigns')
      .values({
        appid: SAFE_ACCOUNT.appid,
        name: 'old',
        status: 'finished',
        audience: '{}',
        run_at: new Date(),
        variants: '[]',
        created_at: new Date(),
        updated_at: new Date(),
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    const link = async (code: string, target: string, slot: number) =>
      get()
        .db.insertInto('campaign_recipients')
        .values({
          campaign_id: campaign.id,
          slot: new Date(slot),
          member_id: m.id,
          variant: code,
          outcome: 'enqueued',
          link_code: code,
          target_url: target,
          enqueued_at: new Date(),
        })
        .execute()
    await link('badcrlf1', 'https://your.host/x\r\nSet-Cookie: a=b', 1_000_000)
    await link('goodlink1', 'https://your.host/x', 2_000_000)
    const follow = (code: string) => fetch(`${server.url}/r/${code}`, { redirect: 'manual' })
    const bad = await follow('badcrlf1')
    expect(bad.status).toBe(404)
    const good = await follow('goodlink1')
    expect(good.status).toBe(302)
    expect(good.headers.get('location')).toBe('https://your.host/x')
    const clicks = await get()
      .db.selectFrom('campaign_recipients')
      .select(['link_code', 'clicks'])
      .where('campaign_id', '=', campaign.id)
      .orderBy('link_code')
      .execute()
    expect(clicks).toEqual([
      { link_code: 'badcrlf1', clicks: 0 },
      { link_code: 'goodlink1', clicks: 1 },
    ])
  })

  it('writes refused operator calls to the audit log with the client address', async () => {
    const before = await get().db.selectFrom('audit_log').select('id').execute()
    const ids = before.map((r) => r.id)
    expect((await call('GET', '/rules', undefined, 'wrong-token-wrong-token')).status).toBe(401)
    expect(
      (await call('GET', '/admin/api/accounts/wx9999999999999999/rules', undefined)).status,
    ).toBe(404)
    expect(
      (await call('POST', '/members/o_nobody_here/points', { delta: 1, reason: 'x' })).status,
    ).toBe(404)
    const rows = await get()
      .db.selectFrom('audit_log')
      .select(['appid', 'actor', 'action', 'target', 'details', 'client_address'])
      .where('action', '=', 'refused')
      .orderBy('id')
      .execute()
    const fresh = rows.slice(-3)
    expect(ids.length).toBeGreaterThanOrEqual(0)
    expect(
      fresh.map((r) => [r.actor, r.appid, JSON.parse(r.details).status, r.client_address]),
    ).toEqual([
      ['anonymous', SAFE_ACCOUNT.appid, 401, '127.0.0.1'],
      ['operator', '-', 404, '127.0.0.1'],
      ['operator', SAFE_ACCOUNT.appid, 404, '127.0.0.1'],
    ])
    expect(fresh[0]!.target).toBe(`GET ${base}/rules`)
    expect(JSON.parse(fresh[1]!.details)).toMatchObject({
      appid: 'wx9999999999999999',
      reason: 'unknown account',
    })
    expect(JSON.stringify(fresh)).not.toContain('wrong-token')
    // a NUL in the path is refused (400) and still audited
    expect((await call('GET', '/members/%00/ledger')).status).toBe(400)
    const nul = await get()
      .db.selectFrom('audit_log')
      .select(['target', 'details'])
      .where('action', '=', 'refused')
      .orderBy('id', 'desc')
      .executeTakeFirstOrThrow()
    expect(nul.target).toBe(`GET ${base}/members/%00/ledger`)
    expect(JSON.parse(nul.details).status).toBe(400)
  })

  const login = async () => {
    const openid = `o_edge_${Math.random().toString(36).slice(2, 10)}`
    const res = await mp('/login', { body: { code: wx.loginCode(shop.settings.mpAppid, openid) } })
    expect(res.status).toBe(200)
    return res.json.token as string
  }

  it('bounds mini-program ids: a group buy id past bigint is a 4xx, never a 500', async () => {
    const token = await login()
    const order = await mp('/orders', { token, body: { sku: 'group-gift', groupBuyId: 1e20 } })
    expect(order.status).toBe(400)
    expect(order.json.issues).toEqual([{ path: 'groupBuyId', message: 'must be an id' }])
    expect((await mp('/group-buys/100000000000000000000', { token })).status).toBe(404)
    expect((await mp('/group-buys/1e20', { token })).status).toBe(404)
    expect((await mp('/orders/%00', { token })).status).toBe(400)
  })

  it('accepts session tokens of exactly the expected shape', async () => {
    const token = await login()
    expect((await mp('/me', { token })).status).toBe(200)
    for (const forged of [`${token}.extra`, `${token}.`, `x.${token}`, `${token}=`]) {
      expect((await mp('/me', { token: forged })).status, forged).toBe(401)
    }
  })

  it('rate-limits logins per code and per client address, answering 429 with Retry-After', async () => {
    // Time stands still: however slow the requests, no bucket earns a token back during the test.
    held = new Date()
    try {
      const code = wx.loginCode(shop.settings.mpAppid, 'o_edge_code')
      expect((await mp('/login', { body: { code } })).status).toBe(200)
      expect((await mp('/login', { body: { code } })).status).toBe(401) // used (WeChat says 40163)
      const third = await mp('/login', { body: { code } })
      expect(third.status).toBe(429)
      expect(Number(third.headers.get('retry-after'))).toBeGreaterThan(0)
      expect(third.json.code).toBe('TOO_MANY_REQUESTS')
      // many made-up codes from one address: each would cost a code2Session call
      const statuses: number[] = []
      for (let i = 0; i < 40; i++)
        statuses.push((await mp('/login', { body: { code: `made-up-${i}` } })).status)
      expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0)
      expect(statuses.every((s) => s === 401 || s === 429)).toBe(true)
      expect(statuses.lastIndexOf(401)).toBeLessThan(statuses.indexOf(429))
    } finally {
      held = undefined
    }
  })
})
