/**
 * The account's web OAuth, silent scope only (`snsapi_base`): a page opened in WeChat's browser is
 * sent to the authorize URL and comes back with a single-use `code` (about 5 minutes), exchanged
 * here for the person's openid of this account — no consent screen, no user info.
 */
import type { ApiClient } from './client.js'
import { WechatNetworkError } from './errors.js'

/** Where WeChat's browser is sent to authorise silently. */
export const OAUTH_AUTHORIZE_URL = 'https://open.weixin.qq.com/connect/oauth2/authorize'

/**
 * The authorize URL that brings the browser back to `redirectUri` with `?code=…&state=…`
 * (`redirectUri` must be on the account's 网页授权域名).
 * @example oauthAuthorizeUrl('wx…', 'https://your.host/r/s/AbC…', 'share')
 */
export function oauthAuthorizeUrl(appid: string, redirectUri: string, state: string): string {
  const q = new URLSearchParams({
    appid,
    redirect_uri: redirectUri,
    response_type: 'code',
    scope: 'snsapi_base',
    state,
  })
  return `${OAUTH_AUTHORIZE_URL}?${q}#wechat_redirect`
}

/** Who authorised: the openid, or `snapshot` for a 朋友圈 snapshot page's virtual identity. */
export type OauthIdentity = { openid: string; snapshot: boolean }

/**
 * Exchanges a code (`GET /sns/oauth2/access_token`, the account's secret, not its access token).
 * 40029: invalid code; 40163: code used already. Never retried (the code is single use).
 */
export async function exchangeOauthCode(
  api: ApiClient,
  r: { appid: string; secret: string; code: string },
): Promise<OauthIdentity> {
  const res = await api.call({
    method: 'sns.oauth2.access_token',
    path: '/sns/oauth2/access_token',
    http: 'GET',
    query: { appid: r.appid, secret: r.secret, code: r.code, grant_type: 'authorization_code' },
    auth: false,
    secret: true,
    retry: false,
  })
  if (typeof res.openid !== 'string' || res.openid === '')
    throw new WechatNetworkError('sns.oauth2.access_token', 'answer without an openid', undefined, {
      maybeDelivered: true,
    })
  return { openid: res.openid, snapshot: res.is_snapshotuser === 1 }
}
