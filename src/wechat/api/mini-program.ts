/**
 * The mini program's own API: login (`code2Session`, GET /sns/jscode2session; no access token,
 * the secret instead) and subscribe messages (its access token).
 */
import type { ApiClient } from './client.js'
import { WechatNetworkError } from './errors.js'
import { validateSubscribeMessage } from './messages.js'

export interface MiniProgramSession {
  openid: string
  /** Never sent to the client; kept only to decrypt wx.getUserInfo-style data if ever needed. */
  sessionKey: string
  unionid: string | null
}

/** Exchanges a `wx.login()` code (single use, ~5 minutes) for the user's mini-program identity. */
export async function code2Session(
  api: ApiClient,
  r: { appid: string; secret: string; code: string },
): Promise<MiniProgramSession> {
  const res = await api.call({
    method: 'sns.jscode2session',
    path: '/sns/jscode2session',
    http: 'GET',
    query: { appid: r.appid, secret: r.secret, js_code: r.code, grant_type: 'authorization_code' },
    auth: false,
    secret: true,
    // The code is single use: a retry after a timeout or -1 could only fail as "code used".
    retry: false,
  })
  if (typeof res.openid !== 'string' || res.openid === '')
    throw new WechatNetworkError('sns.jscode2session', 'answer without an openid', undefined, {
      maybeDelivered: true,
    })
  return {
    openid: res.openid,
    sessionKey: String(res.session_key ?? ''),
    unionid: typeof res.unionid === 'string' ? res.unionid : null,
  }
}

/**
 * A mini-program subscribe message (订阅消息) for `/cgi-bin/message/subscribe/send`, sent with the
 * mini program's own access token to its own openid. One `accept` in `wx.requestSubscribeMessage`
 * allows one send of a one-time template.
 */
export interface MiniProgramSubscribeMessage {
  touser: string
  template_id: string
  /** The page the notice opens (`pages/checkin/index?from=reminder`). */
  page?: string
  /** `developer`, `trial` or `formal` (default formal). */
  miniprogram_state?: 'developer' | 'trial' | 'formal'
  lang?: 'zh_CN' | 'en_US' | 'zh_HK' | 'zh_TW'
  data: Record<string, { value: string }>
}

/**
 * Sends a mini-program subscribe message, checked first against the value-type limits the OA's
 * subscribe messages share. 43101: the member refused or has no authorisation left; 40003: not an
 * openid of this mini program; 47003: a value broke its type's rule. Never retried by the
 * transport (WeChat cannot de-duplicate it).
 */
export async function sendMiniProgramSubscribeMessage(
  api: ApiClient,
  m: MiniProgramSubscribeMessage,
): Promise<void> {
  validateSubscribeMessage(m)
  await api.call({
    method: 'mp.subscribe.send',
    path: '/cgi-bin/message/subscribe/send',
    http: 'POST',
    body: m,
    auth: true,
    idempotent: false,
  })
}
