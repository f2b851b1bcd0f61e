/** Mini-program login: `code2Session` (GET /sns/jscode2session; no access token, the secret instead). */
import type { ApiClient } from './client.js'
import { WechatNetworkError } from './errors.js'

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
