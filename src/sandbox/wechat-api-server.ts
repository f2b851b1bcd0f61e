/**
 * The sandbox WeChat API: a real HTTP server on loopback speaking the documented wire format —
 * token, stable_token, template/custom/subscribe sends (the OA's bizsend and the mini program's
 * subscribe/send), qrcode/create (+ showqrcode images),
 * user/info (and its batchget), user/get, tags, the mini program's sns/jscode2session, and the OA's web OAuth code
 * exchange (sns/oauth2/access_token).
 * It records what was sent and can be scripted to fail (errcode sequences, latency, 5xx, hangs).
 * `npm start` in sandbox mode points the client at it; tests use it instead of the internet.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import {
  type CsWindow,
  isOpen,
  MESSAGE_WINDOW,
  WINDOW_EVENTS,
  WINDOWS,
} from '../community/cs-window.js'

/** A scripted fault for the next call of a method. */
export type Fault =
  | { errcode: number; errmsg?: string }
  | { status: number }
  | { delayMs: number }
  | { hang: true }
  /** The call is carried out (a send is recorded), then no answer ever comes: a lost response. */
  | { dropResponse: true }

/** A sandbox follower. */
export interface SandboxUser {
  subscribe: boolean
  unionid?: string
  /**
   * False → custom messages fail with 45015. True → the member sent a message now (a new 48-hour
   * window); see `userAction` for a follow, scan or click.
   */
  windowOpen?: boolean
  /** Template ids whose subscription the user refused (→ 43101). */
  refused?: string[]
  tags?: number[]
}

/** A WeCom customer group as groupchat/get describes it. */
export interface SandboxGroup {
  chat_id: string
  name: string
  owner: string
  admin_list: { userid: string }[]
  member_list: {
    userid: string
    type: 1 | 2
    unionid?: string
    join_time: number
    join_scene: 1 | 2 | 3
    invitor?: { userid: string }
    state?: string
  }[]
}

/** One accepted send. */
export interface SentMessage {
  method: string
  appid: string
  touser: string
  body: Record<string, unknown>
  msgid: number
  at: number
}

export interface SandboxApiOptions {
  /** Known accounts (appid → secret); with `strict`, others get 40013. */
  accounts?: Record<string, string>
  /** The secret every account not listed in `accounts` must use; unset → any secret works. */
  secret?: string
  /** Refuse appids not listed in `accounts`. */
  strict?: boolean
  /** Seconds a classic token lives (default 7200). */
  expiresIn?: number
  /** How long a superseded classic token keeps working (default 300 s, as WeChat). */
  graceSeconds?: number
  /** Called for every accepted send (the sandbox logs them). */
  onSend?: (sent: SentMessage) => void
  /** Keep every send in `sent` (default true; benches turn it off and read `sentCount`). */
  keepSent?: boolean
  /** How long a template's `client_msg_id` is remembered (default 10 minutes, as WeChat). */
  clientMsgIdTtlMs?: number
  /** The sandbox's clock in ms (tests move it to let `client_msg_id`s expire). */
  now?: () => number
}

/**
 * The window of a follower the sandbox knows no message or event of (a test's or the demo's
 * member who never wrote here): taken as a message's, open for ever, with its quota.
 */
const UNTIMED_WINDOW: CsWindow = { ...MESSAGE_WINDOW, openedAt: new Date(0), ms: Infinity }

const TEMPLATE_ID = /^[A-Za-z0-9_-]{1,128}$/

/**
 * Starts the sandbox API on 127.0.0.1 (port 0 = any free port).
 * @example const wx = await startSandboxApi(); createApiClient({ baseUrl: wx.url, ... })
 */
export async function startSandboxApi(options: SandboxApiOptions = {}, port = 0) {
  const expiresIn = options.expiresIn ?? 7200
  const grace = (options.graceSeconds ?? 300) * 1000
  const tokens = new Map<string, { appid: string; expiresAt: number }>()
  const current = new Map<string, { classic?: string; stable?: string }>()
  const faults = new Map<string, Fault[]>()
  const users = new Map<string, SandboxUser>()
  const tags = new Map<number, string>()
  const clientMsgIds = new Map<string, { msgid: number; at: number }>()
  const clientMsgIdTtl = options.clientMsgIdTtlMs ?? 600_000
  const clock = options.now ?? Date.now
  /** Each follower's last message and last window-opening event (the sandbox's clock). */
  const actions = new Map<string, { message?: Date; event?: Date }>()
  /** Customer-service messages sent in a follower's current window of a kind (`appid:openid:kind`). */
  const windowSends = new Map<string, number>()
  const robotSends = new Map<string, number[]>()
  const joinWays = new Map<string, Record<string, unknown>>()
  /** Join ways whose every update WeCom refuses (config_id → the errcode answer). */
  const refusedJoinWays = new Map<string, { errcode: number; errmsg: string }>()
  /** How get_join_way lists a join way's groups (unset: as last sent). */
  let joinWayChatsView: ((chatIds: string[]) => string[]) | undefined
  const groups = new Map<string, SandboxGroup>()
  const loginCodes = new Map<string, { appid: string; openid: string; unionid?: string }>()
  const oauthCodes = new Map<string, { appid: string; openid: string; snapshot?: boolean }>()
  const sent: SentMessage[] = []
  const calls = new Map<string, number>()
  const hanging = new Set<ServerResponse>()
  let nextMsgId = 1000
  let sentCount = 0
  let nextTag = 100
  let seq = 0

  const count = (method: string) => calls.set(method, (calls.get(method) ?? 0) + 1)
  const user = (openid: string): SandboxUser => users.get(openid) ?? { subscribe: true }
  /** The customer-service windows a follower's last message and last event opened. */
  const csWindows = (openid: string): CsWindow[] => {
    const acted = actions.get(openid)
    if (!acted) return [UNTIMED_WINDOW]
    return (['message', 'event'] as const).flatMap((kind) => {
      const openedAt = acted[kind]
      return openedAt ? [{ ...WINDOWS[kind], openedAt }] : []
    })
  }
  /** What `user/info` (and each entry of `user/info/batchget`) says of a follower. */
  const userInfo = (openid: string) => {
    const u = user(openid)
    if (!u.subscribe) return { subscribe: 0, openid }
    return {
      subscribe: 1,
      openid,
      subscribe_time: 1_700_000_000,
      ...(u.unionid ? { unionid: u.unionid } : {}),
      remark: '',
      groupid: 0,
      tagid_list: u.tags ?? [],
      subscribe_scene: 'ADD_SCENE_QR_CODE',
      qr_scene: 0,
      qr_scene_str: '',
    }
  }

  function issue(appid: string, kind: 'classic' | 'stable'): string {
    const now = Date.now()
    const slot = current.get(appid) ?? {}
    const existing = slot[kind] && tokens.get(slot[kind]!)
    if (kind === 'stable' && existing && existing.expiresAt > now) return slot.stable!
    if (kind === 'classic' && slot.classic) {
      const old = tokens.get(slot.classic)
      if (old) old.expiresAt = Math.min(old.expiresAt, now + grace)
    }
    const token = `sandbox_${kind}_${++seq}_${Math.random().toString(36).slice(2, 10)}`
    tokens.set(token, { appid, expiresAt: now + expiresIn * 1000 })
    current.set(appid, { ...slot, [kind]: token })
    return token
  }

  function checkAccount(appid: unknown, secret: unknown) {
    if (typeof appid !== 'string' || !appid) return { errcode: 41002, errmsg: 'appid missing' }
    if (typeof secret !== 'string' || !secret)
      return { errcode: 41004, errmsg: 'appsecret missing' }
    const known = options.accounts?.[appid]
    if (known === undefined && options.strict) return { errcode: 40013, errmsg: 'invalid appid' }
    const expected = known ?? options.secret
    if (expected !== undefined && expected !== secret)
      return { errcode: 40125, errmsg: 'invalid appsecret' }
    return undefined
  }

  type Handler = (ctx: {
    appid: string
    query: URLSearchParams
    body: Record<string, unknown>
  }) => unknown

  function record(method: string, appid: string, body: Record<string, unknown>) {
    const entry = {
      method,
      appid,
      touser: String(body.touser),
      body,
      msgid: ++nextMsgId,
      at: Date.now(),
    }
    sentCount++
    if (options.keepSent !== false) sent.push(entry)
    options.onSend?.(entry)
    return entry.msgid
  }

  /** A subscribe-message send (OA bizsend, or the mini program's subscribe/send). */
  const subscribeSend =
    (method: string): Handler =>
    ({ appid, body }) => {
      const touser = String(body.touser ?? '')
      if (!touser || touser.startsWith('invalid'))
        return { errcode: 40003, errmsg: 'invalid openid' }
      if (!TEMPLATE_ID.test(String(body.template_id ?? '')))
        return { errcode: 40037, errmsg: 'invalid template_id' }
      if (typeof body.data !== 'object' || body.data === null)
        return { errcode: 47003, errmsg: 'argument invalid! data is empty' }
      if (user(touser).refused?.includes(String(body.template_id))) {
        return { errcode: 43101, errmsg: 'user refuse to accept the msg' }
      }
      const msgid = record(method, appid, body)
      return { errcode: 0, errmsg: 'ok', msgid }
    }

  const authed: Record<string, [string, Handler]> = {
    '/cgi-bin/message/template/send': [
      'template.send',
      ({ appid, body }) => {
        const touser = String(body.touser ?? '')
        if (!TEMPLATE_ID.test(String(body.template_id ?? '')))
          return { errcode: 40037, errmsg: 'invalid template_id' }
        if (!touser || touser.startsWith('invalid'))
          return { errcode: 40003, errmsg: 'invalid openid' }
        if (!user(touser).subscribe) return { errcode: 43004, errmsg: 'require subscribe' }
        if (typeof body.data !== 'object' || body.data === null)
          return { errcode: 47001, errmsg: 'data format error' }
        const key = body.client_msg_id ? `${appid}:${touser}:${body.client_msg_id}` : undefined
        const repeated = key && clientMsgIds.get(key)
        if (repeated && clock() - repeated.at < clientMsgIdTtl)
          return { errcode: 0, errmsg: 'ok', msgid: repeated.msgid }
        const msgid = record('template.send', appid, body)
        if (key) clientMsgIds.set(key, { msgid, at: clock() })
        return { errcode: 0, errmsg: 'ok', msgid }
      },
    ],
    '/cgi-bin/message/custom/send': [
      'custom.send',
      ({ appid, body }) => {
        const touser = String(body.touser ?? '')
        if (!touser || touser.startsWith('invalid'))
          return { errcode: 40003, errmsg: 'invalid openid' }
        const u = user(touser)
        if (!u.subscribe || u.windowOpen === false) {
          return {
            errcode: 45015,
            errmsg: 'response out of time limit or subscription is canceled',
          }
        }
        // The windows the member's actions opened, each counted apart (protocol §6.3): a
        // message's 48 h with 5, a follow's, scan's or click's minute with 3.
        const open = csWindows(touser).filter((w) => isOpen(w, new Date(clock())))
        if (open.length === 0)
          return {
            errcode: 45015,
            errmsg: 'response out of time limit or subscription is canceled',
          }
        const key = (w: CsWindow) => `${appid}:${touser}:${w.kind}`
        const window = open.find((w) => (windowSends.get(key(w)) ?? 0) < w.quota)
        if (!window) return { errcode: 45047, errmsg: 'out of response count limit' }
        windowSends.set(key(window), (windowSends.get(key(window)) ?? 0) + 1)
        record('custom.send', appid, body)
        return { errcode: 0, errmsg: 'ok' }
      },
    ],
    '/cgi-bin/message/subscribe/bizsend': ['subscribe.send', subscribeSend('subscribe.send')],
    // The mini program's own endpoint (its access token, its openids): same body and answers.
    '/cgi-bin/message/subscribe/send': ['mp.subscribe.send', subscribeSend('mp.subscribe.send')],
    '/cgi-bin/externalcontact/groupchat/get': [
      'groupchat.get',
      ({ body }) => {
        const group = groups.get(String(body.chat_id))
        if (!group) return { errcode: 701008, errmsg: 'chat not found' }
        return { errcode: 0, errmsg: 'ok', group_chat: group }
      },
    ],
    '/cgi-bin/externalcontact/groupchat/add_join_way': [
      'groupchat.add_join_way',
      ({ body }) => {
        const bad = badJoinWay(body)
        if (bad) return bad
        const configId = `cfg${++seq}`
        joinWays.set(configId, {
          ...joinWayFields(body),
          config_id: configId,
          qr_code: `https://wework.qpic.cn/wwpic/sandbox-join-${configId}`,
        })
        return { errcode: 0, errmsg: 'ok', config_id: configId }
      },
    ],
    // Overwrites the config's fields (as add_join_way takes them); its QR stays the same.
    '/cgi-bin/externalcontact/groupchat/update_join_way': [
      'groupchat.update_join_way',
      ({ body }) => {
        const configId = String(body.config_id)
        const way = joinWays.get(configId)
        if (!way) return { errcode: 41044, errmsg: 'invalid config_id' }
        const refused = refusedJoinWays.get(configId)
        if (refused) return refused
        const bad = badJoinWay(body)
        if (bad) return bad
        joinWays.set(configId, {
          ...joinWayFields(body),
          config_id: configId,
          qr_code: way.qr_code,
        })
        return { errcode: 0, errmsg: 'ok' }
      },
    ],
    '/cgi-bin/externalcontact/groupchat/get_join_way': [
      'groupchat.get_join_way',
      ({ body }) => {
        const way = joinWays.get(String(body.config_id))
        if (!way) return { errcode: 41044, errmsg: 'invalid config_id' }
        const chats = way.chat_id_list as string[] | undefined
        return {
          errcode: 0,
          errmsg: 'ok',
          join_way:
            chats && joinWayChatsView ? { ...way, chat_id_list: joinWayChatsView(chats) } : way,
        }
      },
    ],
    '/cgi-bin/externalcontact/groupchat/del_join_way': [
      'groupchat.del_join_way',
      ({ body }) =>
        joinWays.delete(String(body.config_id))
          ? { errcode: 0, errmsg: 'ok' }
          : { errcode: 41044, errmsg: 'invalid config_id' },
    ],
    '/cgi-bin/qrcode/create': [
      'qrcode.create',
      ({ body }) => {
        const action = String(body.action_name ?? '')
        const scene = (body.action_info as { scene?: Record<string, unknown> } | undefined)?.scene
        if (
          !['QR_SCENE', 'QR_STR_SCENE', 'QR_LIMIT_SCENE', 'QR_LIMIT_STR_SCENE'].includes(action) ||
          !scene
        ) {
          return { errcode: 40053, errmsg: 'invalid action info' }
        }
        const permanent = action.startsWith('QR_LIMIT')
        const seconds = Number(body.expire_seconds ?? 60)
        const ticket = sandboxTicket({
          scene: String(scene.scene_str ?? scene.scene_id),
          expiresAt: permanent ? null : Date.now() + seconds * 1000,
          n: ++seq,
        })
        return {
          ticket,
          url: `http://weixin.qq.com/q/sandbox${seq}`,
          ...(permanent ? {} : { expire_seconds: seconds }),
        }
      },
    ],
    '/cgi-bin/user/info': [
      'user.info',
      ({ query }) => {
        const openid = query.get('openid') ?? ''
        if (!openid || openid.startsWith('invalid'))
          return { errcode: 40003, errmsg: 'invalid openid' }
        return userInfo(openid)
      },
    ],
    '/cgi-bin/user/info/batchget': [
      'user.info.batchget',
      ({ body }) => {
        const list = body.user_list
        if (!Array.isArray(list) || list.length === 0 || list.length > 100)
          return { errcode: 45035, errmsg: 'user_list size out of limit' }
        const openids = list.map((e) => String((e as { openid?: unknown } | null)?.openid ?? ''))
        if (openids.some((openid) => !openid || openid.startsWith('invalid')))
          return { errcode: 40003, errmsg: 'invalid openid' }
        return { user_info_list: openids.map(userInfo) }
      },
    ],
    '/cgi-bin/user/get': [
      'user.get',
      ({ query }) => {
        const all = [...users.entries()]
          .filter(([, u]) => u.subscribe)
          .map(([id]) => id)
          .sort()
        const after = query.get('next_openid') ?? ''
        const start = after ? all.indexOf(after) + 1 : 0
        const page = all.slice(start, start + pageSize)
        const last =
          page.length > 0 && start + page.length < all.length ? page[page.length - 1]! : ''
        return { total: all.length, count: page.length, data: { openid: page }, next_openid: last }
      },
    ],
    '/cgi-bin/tags/create': [
      'tags.create',
      ({ body }) => {
        const name = String((body.tag as { name?: string } | undefined)?.name ?? '')
        if (!name || name.length > 30) return { errcode: 45158, errmsg: 'tag name too long' }
        if ([...tags.values()].includes(name)) return { errcode: 45157, errmsg: 'invalid tag name' }
        const id = ++nextTag
        tags.set(id, name)
        return { tag: { id, name } }
      },
    ],
    '/cgi-bin/tags/get': [
      'tags.get',
      () => ({ tags: [...tags.entries()].map(([id, name]) => ({ id, name, count: 0 })) }),
    ],
    '/cgi-bin/tags/members/batchtagging': [
      'tags.batchtagging',
      ({ body }) => {
        const list = body.openid_list
        const tagid = Number(body.tagid)
        if (!Array.isArray(list) || list.length === 0 || list.length > 50)
          return { errcode: 40032, errmsg: 'invalid openid_list size' }
        if (!tags.has(tagid)) return { errcode: 45159, errmsg: 'invalid tag id' }
        for (const openid of list) {
          const u = user(String(openid))
          users.set(String(openid), { ...u, tags: [...new Set([...(u.tags ?? []), tagid])] })
        }
        return { errcode: 0, errmsg: 'ok' }
      },
    ],
  }
  let pageSize = 10_000
  let latencyMs = 0

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://sandbox')
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    let body: Record<string, unknown> = {}
    if (chunks.length > 0) {
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'))
      } catch {
        return send(res, { errcode: 47001, errmsg: 'data format error' })
      }
    }
    const path = url.pathname
    if (path === '/cgi-bin/showqrcode') return showQrCode(res, url.searchParams.get('ticket'))
    if (path === '/cgi-bin/webhook/send' && req.method === 'POST') {
      // WeCom group-robot webhook (no token: the key is the credential); 20 a minute per key.
      const key = url.searchParams.get('key') ?? ''
      if (!key) return send(res, { errcode: 93000, errmsg: 'invalid webhook url' })
      const recent = (robotSends.get(key) ?? []).filter((at) => at > Date.now() - 60_000)
      if (recent.length >= 20) return send(res, { errcode: 45009, errmsg: 'api freq out of limit' })
      robotSends.set(key, [...recent, Date.now()])
      record('webhook.send', key, { ...body, touser: `robot:${key}` })
      return send(res, { errcode: 0, errmsg: 'ok' })
    }
    if (path === '/sandbox/login-code' && req.method === 'POST') {
      // Sandbox control (not WeChat): the code a phone's wx.login() would get, for the shop demo.
      const { appid, openid, unionid } = body as Record<string, string>
      if (!appid || !openid) return send(res, { errcode: 40002, errmsg: 'appid and openid' }, 400)
      return send(res, { code: api.loginCode(appid, openid, unionid) })
    }
    if (path === '/sandbox/users' && req.method === 'POST') {
      // Sandbox control (not WeChat): a follower's user/info, e.g. the unionid that links them to
      // the mini program (the shop demo's cashback).
      const { openid, unionid } = body as Record<string, string>
      if (!openid) return send(res, { errcode: 40002, errmsg: 'openid' }, 400)
      api.setUser(openid, { subscribe: true, ...(unionid ? { unionid } : {}) })
      return send(res, { errcode: 0, errmsg: 'ok' })
    }
    const method =
      path === '/cgi-bin/gettoken'
        ? 'gettoken'
        : path === '/sns/jscode2session'
          ? 'jscode2session'
          : path === '/sns/oauth2/access_token'
            ? 'oauth2'
            : path === '/cgi-bin/token'
              ? 'token'
              : path === '/cgi-bin/stable_token'
                ? 'stable_token'
                : authed[path]?.[0]
    if (!method) return send(res, { errcode: 48001, errmsg: 'api unauthorized' }, 404)
    count(method)

    if (latencyMs > 0) await new Promise((r) => setTimeout(r, latencyMs))
    const fault = faults.get(method)?.shift() ?? faults.get('*')?.shift()
    if (fault && 'hang' in fault) {
      hanging.add(res)
      return
    }
    if (fault && 'delayMs' in fault) await new Promise((r) => setTimeout(r, fault.delayMs))
    if (fault && 'status' in fault) return send(res, { error: 'sandbox fault' }, fault.status)
    if (fault && 'errcode' in fault)
      return send(res, {
        errcode: fault.errcode,
        errmsg: fault.errmsg ?? `sandbox fault ${fault.errcode}`,
      })

    if (method === 'jscode2session') {
      // Mini-program login (no access token): appid + secret + a single-use code.
      const q = Object.fromEntries(url.searchParams)
      if (q.grant_type !== 'authorization_code')
        return send(res, { errcode: 40002, errmsg: 'invalid grant_type' })
      const bad = checkAccount(q.appid, q.secret)
      if (bad) return send(res, bad)
      const login = loginCodes.get(q.js_code ?? '')
      if (!login || login.appid !== q.appid)
        return send(res, { errcode: 40029, errmsg: 'invalid code' })
      loginCodes.delete(q.js_code!)
      return send(res, {
        openid: login.openid,
        session_key: btoa(`sandbox-session-key-${++seq}`.padEnd(16, '.').slice(0, 16)),
        ...(login.unionid ? { unionid: login.unionid } : {}),
      })
    }
    if (method === 'oauth2') {
      // Web OAuth (snsapi_base): appid + secret + a single-use code the authorize page gave.
      const q = Object.fromEntries(url.searchParams)
      if (q.grant_type !== 'authorization_code')
        return send(res, { errcode: 40002, errmsg: 'invalid grant_type' })
      const bad = checkAccount(q.appid, q.secret)
      if (bad) return send(res, bad)
      const given = oauthCodes.get(q.code ?? '')
      if (!given || given.appid !== q.appid)
        return send(res, { errcode: 40029, errmsg: 'invalid code' })
      oauthCodes.delete(q.code!)
      return send(res, {
        access_token: `sandbox_web_${++seq}`,
        expires_in: 7200,
        refresh_token: `sandbox_refresh_${seq}`,
        openid: given.openid,
        scope: 'snsapi_base',
        ...(given.snapshot ? { is_snapshotuser: 1 } : {}),
      })
    }
    if (method === 'gettoken') {
      // WeCom: corp id + the app's secret.
      const q = Object.fromEntries(url.searchParams)
      if (!q.corpid) return send(res, { errcode: 40013, errmsg: 'invalid corpid' })
      const bad = checkAccount(q.corpid, q.corpsecret)
      if (bad)
        return send(res, bad.errcode === 40125 ? { errcode: 40001, errmsg: 'invalid secret' } : bad)
      const token = issue(`wecom:${q.corpid}`, 'classic')
      return send(res, { errcode: 0, errmsg: 'ok', access_token: token, expires_in: expiresIn })
    }
    if (method === 'token' || method === 'stable_token') {
      const src = method === 'token' ? Object.fromEntries(url.searchParams) : body
      if (src.grant_type !== 'client_credential')
        return send(res, { errcode: 40002, errmsg: 'invalid grant_type' })
      const bad = checkAccount(src.appid, src.secret)
      if (bad) return send(res, bad)
      const appid = String(src.appid)
      if (method === 'stable_token' && src.force_refresh === true) {
        const slot = current.get(appid)
        if (slot?.stable) tokens.delete(slot.stable)
        current.set(appid, { ...slot, stable: undefined })
      }
      const token = issue(appid, method === 'token' ? 'classic' : 'stable')
      const remaining = Math.round((tokens.get(token)!.expiresAt - Date.now()) / 1000)
      return send(res, { access_token: token, expires_in: remaining })
    }
    const token = url.searchParams.get('access_token')
    if (!token) return send(res, { errcode: 41001, errmsg: 'access_token missing' })
    const entry = tokens.get(token)
    if (!entry || entry.expiresAt <= Date.now()) {
      return send(res, {
        errcode: 40001,
        errmsg: 'invalid credential, access_token is invalid or not latest',
      })
    }
    const answer = authed[path]![1]({ appid: entry.appid, query: url.searchParams, body })
    if (fault && 'dropResponse' in fault) {
      hanging.add(res)
      return
    }
    return send(res, answer)
  }

  /** The QR image (no auth, as WeChat): an SVG naming the scene, so a browser shows the demo. */
  function showQrCode(res: ServerResponse, ticket: string | null) {
    const qr = ticket ? liveQr(ticket) : undefined
    if (!qr) {
      res.writeHead(404, { 'content-type': 'text/plain' })
      return res.end('no such QR code (or it expired)')
    }
    const label = qr.scene.replace(/[<>&"]/g, '')
    res.writeHead(200, { 'content-type': 'image/svg+xml' })
    res.end(
      `<svg xmlns="http://www.w3.org/2000/svg" width="430" height="430"><rect width="430" height="430" fill="#fff" stroke="#000" stroke-width="8"/><text x="215" y="200" font-size="28" text-anchor="middle">sandbox QR</text><text x="215" y="250" font-size="22" text-anchor="middle">${label}</text></svg>`,
    )
  }

  function send(res: ServerResponse, json: unknown, status = 200) {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' })
    res.end(JSON.stringify(json))
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error) => send(res, { errcode: -1, errmsg: String(error) }, 500))
  })
  server.keepAliveTimeout = 60_000
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  const api = {
    url,
    /** Every accepted send, in order. */
    sent,
    /** How many sends were accepted (client_msg_id repeats not counted). */
    sentCount: () => sentCount,
    /** How many times each method was called (token fetches included). */
    calls: (method: string) => calls.get(method) ?? 0,
    /** Queues faults for the next calls of `method` (or '*' for any). */
    fault(method: string, ...list: Fault[]) {
      faults.set(method, [...(faults.get(method) ?? []), ...list])
    },
    /** Drops every queued fault (and the join-way refusals and views below). */
    clearFaults() {
      faults.clear()
      refusedJoinWays.clear()
      joinWayChatsView = undefined
    },
    /** WeCom refuses every update_join_way of this join way (a config it will not take). */
    refuseJoinWay(configId: string, errcode = 40058, errmsg = 'invalid chat_id_list') {
      refusedJoinWays.set(configId, { errcode, errmsg })
    },
    /**
     * How get_join_way lists a join way's groups from now on: WeCom's own order, or without a
     * dissolved group (the update still stores them as sent). Unset: as sent.
     */
    viewJoinWayChats(view?: (chatIds: string[]) => string[]) {
      joinWayChatsView = view
    },
    /** Creates or replaces a customer group (what groupchat/get returns). */
    setGroup(chatId: string, g: Omit<SandboxGroup, 'chat_id'>) {
      groups.set(chatId, { chat_id: chatId, ...g })
    },
    /** Someone joins a group (the caller then sends the change_external_chat callback). */
    joinGroup(chatId: string, member: SandboxGroup['member_list'][number]) {
      groups.get(chatId)?.member_list.push(member)
    },
    /** The join ways created and not deleted (state, chats). */
    joinWays: () => [...joinWays.values()],
    /** A mini-program `wx.login()` code for a user (single use), as the phone would get it. */
    loginCode(appid: string, openid: string, unionid?: string): string {
      const code = `sandbox_code_${++seq}_${Math.random().toString(36).slice(2, 10)}`
      loginCodes.set(code, { appid, openid, unionid })
      return code
    },
    /**
     * The `code` WeChat's authorize page would hand back for a person of an account (single use),
     * as after `open.weixin.qq.com/connect/oauth2/authorize`; `snapshot`: a 朋友圈 snapshot page.
     */
    oauthCode(appid: string, openid: string, o: { snapshot?: boolean } = {}): string {
      const code = `sandbox_oauth_${++seq}_${Math.random().toString(36).slice(2, 10)}`
      oauthCodes.set(code, { appid, openid, snapshot: o.snapshot })
      return code
    },
    /** What a phone scanning the code would read: the scene of a live ticket, else undefined. */
    qrScene(ticket: string): string | undefined {
      return liveQr(ticket)?.scene
    },
    /** Sets a follower's state; `windowOpen: true` is a new message (a new window and quota). */
    setUser(openid: string, state: Partial<SandboxUser>) {
      users.set(openid, { ...user(openid), ...state })
      if (state.windowOpen) api.userAction(openid, 'message')
    },
    /**
     * What a follower just did, as WeChat saw it before pushing it: `message` (any ordinary
     * message) opens a 48-hour window with 5 customer-service messages; a follow, a QR scan or a
     * menu click (`subscribe`, `SCAN`, `CLICK`, `scancode_push`, `scancode_waitmsg`) a minute with
     * 3, counted apart; any other event opens none. At the sandbox's clock. From the first, the
     * follower's windows are only those their actions opened.
     */
    userAction(openid: string, action: 'message' | string) {
      const kind =
        action === 'message' ? 'message' : WINDOW_EVENTS.includes(action) ? 'event' : null
      actions.set(openid, {
        ...actions.get(openid),
        ...(kind ? { [kind]: new Date(clock()) } : {}),
      })
      // a new window of its kind, with a new count (even in the same millisecond)
      if (kind)
        for (const key of windowSends.keys())
          if (key.endsWith(`:${openid}:${kind}`)) windowSends.delete(key)
    },
    /** Invalidates every token of an account, as a refresh elsewhere would. */
    revokeTokens(appid: string) {
      for (const [token, t] of tokens) if (t.appid === appid) tokens.delete(token)
      current.delete(appid)
    },
    setPageSize(n: number) {
      pageSize = n
    },
    /** Adds latency to every call. */
    setLatency(ms: number) {
      latencyMs = ms
    },
    async close() {
      for (const res of hanging) res.destroy()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
  return api
}

/** The sandbox API's type. */
export type SandboxApi = Awaited<ReturnType<typeof startSandboxApi>>

/** The fields of add_join_way / update_join_way a join way keeps (the update overwrites them). */
const JOIN_WAY_FIELDS = [
  'scene',
  'remark',
  'auto_create_room',
  'room_base_name',
  'room_base_id',
  'chat_id_list',
  'state',
  'mark_source',
]

function joinWayFields(body: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(JOIN_WAY_FIELDS.filter((k) => k in body).map((k) => [k, body[k]]))
}

/** WeCom's refusal of a join way's fields (QR scene, one to five groups, state ≤ 30). */
function badJoinWay(body: Record<string, unknown>) {
  const chats = body.chat_id_list as string[] | undefined
  if (body.scene !== 2 || !chats?.length || chats.length > 5)
    return { errcode: 40058, errmsg: 'invalid scene or chat_id_list' }
  if (typeof body.state !== 'string' || body.state.length > 30)
    return { errcode: 40058, errmsg: 'state: at most 30 characters' }
  return undefined
}

/** What a sandbox QR ticket carries (`expiresAt` null = permanent). */
interface SandboxQr {
  scene: string
  expiresAt: number | null
  n: number
}

const TICKET_PREFIX = 'sandbox-qr.'

/**
 * A sandbox ticket carries its own scene and expiry (base64url JSON), as a real ticket is good
 * wherever it is shown: a sandbox API started later (a restart, another port) still serves it.
 */
function sandboxTicket(qr: SandboxQr): string {
  return `${TICKET_PREFIX}${Buffer.from(JSON.stringify(qr)).toString('base64url')}`
}

/** The QR of a sandbox ticket that has not expired, else undefined. */
function liveQr(ticket: string): SandboxQr | undefined {
  try {
    if (!ticket.startsWith(TICKET_PREFIX)) return legacyQr(ticket)
    const qr = JSON.parse(
      Buffer.from(ticket.slice(TICKET_PREFIX.length), 'base64url').toString(),
    ) as SandboxQr
    if (typeof qr.scene !== 'string') return undefined
    return qr.expiresAt === null || qr.expiresAt > Date.now() ? qr : undefined
  } catch {
    return undefined
  }
}

/**
 * A ticket from an older sandbox (`sandbox-qr:<action>:<scene json>:<n>`, base64), which carried
 * no expiry: still cached in existing data folders, so it is read as live (quanzi re-issues a
 * cached code before it expires anyway).
 */
function legacyQr(ticket: string): SandboxQr | undefined {
  const m = /^sandbox-qr:[A-Z_]+:(\{.*\}):(\d+)$/.exec(atob(ticket))
  if (!m) return undefined
  const scene = JSON.parse(m[1]!) as { scene_str?: unknown; scene_id?: unknown }
  return { scene: String(scene.scene_str ?? scene.scene_id), expiresAt: null, n: Number(m[2]) }
}
