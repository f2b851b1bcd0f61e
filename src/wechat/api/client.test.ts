import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { forEachDatabase } from '../../../test/databases.js'
import { systemClock } from '../../clock.js'
import { databaseTokenStore } from '../../community/token-store.js'
import { type SandboxApi, startSandboxApi } from '../../sandbox/wechat-api-server.js'
import { createApiClient } from './client.js'
import { WechatApiError, WechatNetworkError, WechatValidationError } from './errors.js'
import { sendCustomMessage, sendTemplateMessage, validateTemplateMessage } from './messages.js'
import { createQrCode, qrCodeBody } from './qrcode.js'
import { type TokenMode, tokenProvider } from './token-provider.js'
import { getUserInfo, listFollowers } from './users.js'

const APPID = 'wx00000000000000a1'
const SECRET = 'sandbox-secret'

let wx: SandboxApi
beforeAll(async () => {
  wx = await startSandboxApi({ secret: SECRET })
})
afterAll(() => wx.close())

const noSleep = async () => {}

forEachDatabase('WeChat API client and shared token', (get, dbName) => {
  let n = 0
  /** A fresh account per test so token rows and counters do not mix. */
  function setup(opts: { mode?: TokenMode; appid?: string; timeoutMs?: number } = {}) {
    const appid =
      opts.appid ??
      `wx${String(++n).padStart(4, '0')}${dbName === 'pglite' ? 'aaaa' : 'bbbb'}cccccccc`
    wx.setUser('o_follower', { subscribe: true })
    const api0 = createApiClient({ baseUrl: wx.url, sleep: noSleep, timeoutMs: opts.timeoutMs })
    const tokens = tokenProvider({
      store: databaseTokenStore(get().db, systemClock),
      api: api0,
      appid,
      secret: SECRET,
      clock: systemClock,
      mode: opts.mode,
    })
    const api = createApiClient({
      baseUrl: wx.url,
      tokens,
      sleep: noSleep,
      timeoutMs: opts.timeoutMs,
    })
    return { appid, api, tokens }
  }
  const msg = {
    touser: 'o_follower',
    template_id: 'TPL_1',
    data: { keyword1: { value: '签到提醒' } },
  }
  const fetches = () => wx.calls('stable_token') + wx.calls('token')

  it('fetches one token for many concurrent calls and shares it through the database', async () => {
    const { api, appid } = setup()
    const before = fetches()
    const ids = await Promise.all(Array.from({ length: 20 }, () => sendTemplateMessage(api, msg)))
    expect(new Set(ids).size).toBe(20)
    expect(fetches() - before).toBe(1)
    const row = await get()
      .db.selectFrom('wechat_tokens')
      .selectAll()
      .where('appid', '=', appid)
      .executeTakeFirstOrThrow()
    expect(row.access_token).toMatch(/^sandbox_stable_/)
    expect(row.expires_at.getTime()).toBeGreaterThan(Date.now() + 7000 * 1000)
    // a second provider (another process, same database) reuses it
    const other = setup({ appid })
    await sendTemplateMessage(other.api, msg)
    expect(fetches() - before).toBe(1)
  })

  it('uses classic /cgi-bin/token when selected', async () => {
    const { api } = setup({ mode: 'classic' })
    const before = wx.calls('token')
    await sendTemplateMessage(api, msg)
    expect(wx.calls('token') - before).toBe(1)
  })

  it('on 40001 expires the token only if it is still stored, refreshes once and retries', async () => {
    const { api, appid, tokens } = setup({ mode: 'classic' })
    await sendTemplateMessage(api, msg)
    const first = await tokens.get()
    wx.revokeTokens(appid)
    const before = fetches()
    await sendTemplateMessage(api, msg)
    expect(fetches() - before).toBe(1)
    const second = await tokens.get()
    expect(second).not.toBe(first)
    // a late compare-and-expire of the old token leaves the new one alone
    await tokens.expire(first)
    const row = await get()
      .db.selectFrom('wechat_tokens')
      .select(['access_token', 'expires_at'])
      .where('appid', '=', appid)
      .executeTakeFirstOrThrow()
    expect(row.access_token).toBe(second)
    expect(row.expires_at.getTime()).toBeGreaterThan(Date.now())
  })

  it('gives the right retry, stop or mark for each fault', async () => {
    const { api } = setup({ timeoutMs: 300 })
    await sendTemplateMessage(api, msg) // warm the token
    const cases: [
      string,
      Parameters<SandboxApi['fault']>[1][],
      'ok' | number | 'network',
      number,
    ][] = [
      ['-1 busy, then ok', [{ errcode: -1 }], 'ok', 2],
      ['5xx, then ok', [{ status: 502 }], 'ok', 2],
      ['timeout, then ok', [{ hang: true }], 'ok', 2],
      ['40001 → refresh and retry', [{ errcode: 40001 }], 'ok', 2],
      ['42001 → refresh and retry', [{ errcode: 42001 }], 'ok', 2],
      ['45009 stops at once', [{ errcode: 45009 }], 45009, 1],
      ['43004 stops', [{ errcode: 43004 }], 43004, 1],
      ['45015 stops', [{ errcode: 45015 }], 45015, 1],
      [
        '5xx four times gives up',
        [{ status: 500 }, { status: 500 }, { status: 500 }, { status: 500 }],
        'network',
        4,
      ],
      ['40001 twice surfaces', [{ errcode: 40001 }, { errcode: 40001 }], 40001, 2],
    ]
    for (const [name, faults, expected, attempts] of cases) {
      wx.fault('template.send', ...faults)
      const before = wx.calls('template.send')
      const outcome = await sendTemplateMessage(api, msg).then(
        () => 'ok' as const,
        (e) =>
          e instanceof WechatApiError ? e.errcode : e instanceof WechatNetworkError ? 'network' : e,
      )
      expect(outcome, name).toBe(expected)
      expect(wx.calls('template.send') - before, name).toBe(attempts)
    }
  })

  it('carries hints and keeps the AppSecret out of errors', async () => {
    const api0 = createApiClient({ baseUrl: wx.url, sleep: noSleep })
    const bad = tokenProvider({
      store: databaseTokenStore(get().db, systemClock),
      api: api0,
      appid: APPID,
      secret: 'wrong-secret',
      clock: systemClock,
    })
    const error = await bad.get().catch((e) => e)
    expect(error).toBeInstanceOf(WechatApiError)
    expect(error.errcode).toBe(40125)
    expect(JSON.stringify({ ...error, message: error.message })).not.toContain('wrong-secret')
    wx.fault('template.send', { errcode: 45009, errmsg: 'reach max api daily quota limit' })
    const quota = await sendTemplateMessage(setup().api, msg).catch((e) => e)
    expect(quota.message).toMatch(/45009 reach max api daily quota limit — daily API quota reached/)
    expect(quota.method).toBe('template.send')
    expect(quota.payload).toEqual(msg)
  })

  it('talks to the sandbox: QR codes, user info, follower pages, custom messages', async () => {
    const { api: a } = setup()
    const qr = await createQrCode(a, { kind: 'temporary', scene: 'inv_1', expireSeconds: 86400 })
    expect(qr.expireSeconds).toBe(86400)
    expect(qr.imageUrl).toBe(
      `https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket=${encodeURIComponent(qr.ticket)}`,
    )
    wx.setUser('o_u1', { subscribe: true, unionid: 'u_1', windowOpen: true })
    wx.setUser('o_gone', { subscribe: false })
    expect(await getUserInfo(a, 'o_u1')).toMatchObject({ subscribe: 1, unionid: 'u_1' })
    expect(await getUserInfo(a, 'o_gone')).toEqual({ subscribe: 0, openid: 'o_gone' })
    for (let i = 0; i < 5; i++) wx.setUser(`o_page_${i}`, { subscribe: true })
    wx.setPageSize(2)
    const pages: string[][] = []
    for await (const page of listFollowers(a)) pages.push(page)
    wx.setPageSize(10_000)
    expect(pages.every((p) => p.length <= 2)).toBe(true)
    expect(pages.flat()).toContain('o_page_4')
    expect(new Set(pages.flat()).size).toBe(pages.flat().length)
    await sendCustomMessage(a, 'o_u1', { msgtype: 'text', text: { content: '你好' } })
    expect(wx.sent.at(-1)).toMatchObject({
      method: 'custom.send',
      touser: 'o_u1',
      body: { msgtype: 'text', text: { content: '你好' } },
    })
    wx.setUser('o_u1', { windowOpen: false })
    await expect(
      sendCustomMessage(a, 'o_u1', { msgtype: 'text', text: { content: 'x' } }),
    ).rejects.toMatchObject({ errcode: 45015 })
  })

  it.runIf(dbName === 'postgres')(
    'three processes cold-starting at once fetch one token',
    async () => {
      const appid = 'wx00000000000000a4'
      const before = fetches()
      const url = process.env.TEST_DATABASE_URL!
      const schema = await get()
        .db.selectNoFrom((eb) => eb.fn<string>('current_schema').as('s'))
        .executeTakeFirstOrThrow()
      const children = [1, 2, 3].map(() =>
        spawn(
          process.execPath,
          ['--import', 'tsx', 'test/fixtures/token-child.ts', url, schema.s, wx.url, appid, SECRET],
          { stdio: ['pipe', 'pipe', 'inherit'] },
        ),
      )
      const lines = children.map((child) =>
        createInterface({ input: child.stdout! })[Symbol.asyncIterator](),
      )
      for (const l of lines) expect((await l.next()).value).toBe('ready')
      for (const child of children) child.stdin!.write('go\n')
      const tokens = await Promise.all(lines.map(async (l) => (await l.next()).value))
      expect(new Set(tokens).size).toBe(1)
      expect(fetches() - before).toBe(1)
    },
    60_000,
  )
})

describe('API helpers', () => {
  it('validates template messages against the 2023 rules before sending', () => {
    const ok = {
      touser: 'o',
      template_id: 'T',
      data: { keyword1: { value: '二十个字以内的内容' } },
    }
    expect(() => validateTemplateMessage(ok)).not.toThrow()
    const cases: [object, string][] = [
      [{ data: { first: { value: 'x' } } }, 'data.first'],
      [{ data: { remark: { value: 'x' } } }, 'data.remark'],
      [{ data: { keyword1: { value: 'x', color: '#f00' } } }, 'data.keyword1.color'],
      [
        { data: { keyword1: { value: '一二三四五六七八九十一二三四五六七八九十一' } } },
        'data.keyword1.value',
      ],
      [{ data: { keyword1: { value: 'a\nb' } } }, 'data.keyword1.value'],
      // every line break, not only \n
      [{ data: { keyword1: { value: 'a\rb' } } }, 'data.keyword1.value'],
      [{ data: { keyword1: { value: 'a\u0085b' } } }, 'data.keyword1.value'],
      [{ data: { keyword1: { value: 'a\u2028b' } } }, 'data.keyword1.value'],
      [{ data: { keyword1: { value: 'a\u2029b' } } }, 'data.keyword1.value'],
      [{ data: { keyword1: { value: '好 🎉' } } }, 'data.keyword1.value'],
      [{ data: {} }, 'data'],
      [{ topcolor: '#f00' }, 'topcolor'],
      [{ url: 'javascript:alert(1)' }, 'url'],
      [{ miniprogram: { appid: 'nope', pagepath: 'p' } }, 'miniprogram.appid'],
      [{ touser: '' }, 'touser'],
    ]
    for (const [patch, field] of cases) {
      const error = (() => {
        try {
          validateTemplateMessage({ ...ok, ...patch } as never)
        } catch (e) {
          return e
        }
      })()
      expect(error, field).toBeInstanceOf(WechatValidationError)
      expect((error as WechatValidationError).field).toBe(field)
    }
    expect(() =>
      validateTemplateMessage({ ...ok, data: { keyword1: { value: 'a\u2028b' } } }),
    ).toThrow('data.keyword1.value: no line breaks (\\n, \\r, U+0085, U+2028, U+2029)')
  })

  it('enforces QR code limits and builds the documented bodies', async () => {
    expect(qrCodeBody({ kind: 'temporary', scene: 'inv_abc', expireSeconds: 2_592_000 })).toEqual({
      expire_seconds: 2_592_000,
      action_name: 'QR_STR_SCENE',
      action_info: { scene: { scene_str: 'inv_abc' } },
    })
    expect(qrCodeBody({ kind: 'temporary', scene: 123, expireSeconds: 604800 })).toMatchObject({
      action_name: 'QR_SCENE',
      action_info: { scene: { scene_id: 123 } },
    })
    expect(qrCodeBody({ kind: 'permanent', scene: 'x' })).toEqual({
      action_name: 'QR_LIMIT_STR_SCENE',
      action_info: { scene: { scene_str: 'x' } },
    })
    expect(() => qrCodeBody({ kind: 'permanent', scene: 100_001 })).toThrow(WechatValidationError)
    expect(() => qrCodeBody({ kind: 'temporary', scene: 0, expireSeconds: 60 })).toThrow(
      WechatValidationError,
    )
    expect(() =>
      qrCodeBody({ kind: 'temporary', scene: 'x'.repeat(65), expireSeconds: 60 }),
    ).toThrow(WechatValidationError)
    expect(() => qrCodeBody({ kind: 'temporary', scene: 'x', expireSeconds: 2_592_001 })).toThrow(
      WechatValidationError,
    )
  })
})
