/**
 * Tracked links:
 *   `GET /r/:code`    a campaign's link — the click is recorded, then the browser redirected;
 *   `GET /r/s/:code`  a member's share link (src/community/shares.ts) — the open is recorded (and
 *                     may earn the sharer `content_share`), the opener identity is kept in the
 *                     `qz_vid` cookie, then the browser is redirected to the article, or shown a
 *                     small landing page for an activity or product. With SHARE_OAUTH on, an open
 *                     in WeChat first goes through the account's silent web OAuth (`snsapi_base`)
 *                     and comes back with `?code=…&state=share`: the opener is their openid. A code
 *                     that does not exchange (made up, used — a refresh, a forwarded landing page
 *                     —, expired) or is missing on the way back sends the browser round once more
 *                     (`state=share2`); if that fails too, or for a snapshot page, the open counts
 *                     nothing (`unverified`: a click only) and the visitor still lands on the page.
 */
import { type Context, Hono } from 'hono'
import { getCookie, setCookie } from 'hono/cookie'
import { html } from 'hono/html'
import { HTTPException } from 'hono/http-exception'
import type { Kysely } from 'kysely'
import type { Clock } from '../clock.js'
import { followLink } from '../community/campaigns.js'
import {
  isWechatBrowser,
  openShareLink,
  shareLanding,
  shareLinkAccount,
  VISITOR_COOKIE,
} from '../community/shares.js'
import type { Database } from '../db/schema.js'
import { isHttpUrl } from '../http-url.js'
import type { Logger } from '../logger.js'
import type { ApiClient } from '../wechat/api/client.js'
import { exchangeOauthCode, oauthAuthorizeUrl } from '../wechat/api/web-oauth.js'

/** SHARE_OAUTH: what the silent web OAuth of share links needs. */
export interface ShareOauthOptions {
  /** This server's public URL (on the account's 网页授权域名): WeChat returns to it. */
  publicBaseUrl: string
  /** The account's API client and secret; undefined: the account cannot (no secret). */
  account(appid: string): { api: ApiClient; secret: string } | undefined
  logger: Logger
}

/** The `state` the authorize URL carries back (a code without it is not ours). */
const OAUTH_STATE = 'share'
/**
 * The state of a second round trip, made once when the first one's code did not exchange: a
 * landing page's URL forwarded in WeChat carries the first visitor's used code and `state=share`,
 * and its new visitor must still be asked who they are. A second failure is final (no loop).
 */
const OAUTH_RETRY_STATE = 'share2'

/**
 * The share landing page's security headers (as the console's, console/security.ts, but
 * stricter): the page is inline HTML that loads nothing — no script, style, image, font or frame
 * — and has no form or link, so the policy allows nothing; it is never framed; the browser does
 * not sniff it as another type; and no referrer leaves it (its URL may carry an OAuth `code`).
 */
export const LANDING_HEADERS = {
  'content-security-policy':
    "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
} as const

export function linkRoutes(o: {
  db: Kysely<Database>
  clock: Clock
  timeZone: string
  oauth?: ShareOauthOptions
}): Hono {
  const app = new Hono()

  /**
   * Who opens, as far as SHARE_OAUTH tells: not at all (off, not WeChat's browser, an account
   * without a secret: `{}`), their openid, or unverified (`verifiedOnly` without an openid); a
   * Response when the browser must go through the authorize URL first.
   */
  const oauthOpener = async (
    c: Context,
    code: string,
    userAgent: string,
  ): Promise<Response | { openid?: string; verifiedOnly?: boolean }> => {
    if (!o.oauth || !isWechatBrowser(userAgent)) return {}
    const appid = await shareLinkAccount(o.db, code)
    const account = appid && o.oauth.account(appid)
    if (!appid || !account) return {}
    const state = c.req.query('state')
    const authorize = (round: string) =>
      c.redirect(oauthAuthorizeUrl(appid, `${o.oauth!.publicBaseUrl}/r/s/${code}`, round), 302)
    // not back from our authorize URL yet: go there (the way back carries our state)
    if (state !== OAUTH_STATE && state !== OAUTH_RETRY_STATE) return authorize(OAUTH_STATE)
    // no code on the way back, or one that does not exchange (used: a refresh, or a forwarded
    // landing page; made up; expired): once more round the authorize URL, then unverified
    const unexchanged = () =>
      state === OAUTH_STATE ? authorize(OAUTH_RETRY_STATE) : { verifiedOnly: true }
    const given = c.req.query('code')
    if (!given || !/^[\w-]{1,128}$/.test(given)) return unexchanged()
    try {
      const who = await exchangeOauthCode(account.api, {
        appid,
        secret: account.secret,
        code: given,
      })
      // a 朋友圈 snapshot page's virtual identity is nobody's openid (asking again changes nothing)
      return who.snapshot ? { verifiedOnly: true } : { openid: who.openid, verifiedOnly: true }
    } catch (error) {
      o.oauth.logger.warn('share link: web OAuth code not exchanged', { appid, state, error })
      return unexchanged()
    }
  }

  app.get('/s/:code', async (c) => {
    const code = c.req.param('code')
    if (!/^[A-Za-z0-9]{16}$/.test(code)) throw new HTTPException(404, { message: 'no such link' })
    const userAgent = c.req.header('user-agent') ?? ''
    const who = await oauthOpener(c, code, userAgent)
    if (who instanceof Response) return who
    const opened = await openShareLink(o.db, {
      code,
      cookie: getCookie(c, VISITOR_COOKIE),
      ...who,
      address: c.var.clientAddress,
      userAgent,
      now: o.clock.now(),
      timeZone: o.timeZone,
    })
    if (!opened) throw new HTTPException(404, { message: 'no such link' })
    setCookie(c, VISITOR_COOKIE, opened.opener, {
      path: '/r/',
      httpOnly: true,
      sameSite: 'Lax',
      maxAge: 365 * 86_400,
    })
    const target = opened.link.target_url
    if (target && isHttpUrl(target)) return c.redirect(target, 302)
    const landing = await shareLanding(o.db, opened.link)
    if (!landing) throw new HTTPException(404, { message: 'no such link' })
    return c.html(
      html`<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${landing.title}</title></head>
<body><h1>${landing.title}</h1><p>${landing.description}</p>
<p>${opened.link.kind === 'activity' ? `关注公众号，发送「报名 ${opened.link.ref}」参加。` : '打开公众号菜单里的小程序即可购买。'}</p></body></html>`,
      200,
      LANDING_HEADERS,
    )
  })
  app.get('/:code', async (c) => {
    const code = c.req.param('code')
    const target = /^[A-Za-z0-9]{1,32}$/.test(code)
      ? await followLink(o.db, code, o.clock.now())
      : undefined
    // followLink only answers clean http(s) URLs; checked again here, as the header is built here.
    if (!target || !isHttpUrl(target)) throw new HTTPException(404, { message: 'no such link' })
    return c.redirect(target, 302)
  })
  return app
}
