/**
 * Tracked links:
 *   `GET /r/:code`    a campaign's link — the click is recorded, then the browser redirected;
 *   `GET /r/s/:code`  a member's share link (src/community/shares.ts) — the open is recorded (and
 *                     may earn the sharer `content_share`), the opener identity is kept in the
 *                     `qz_vid` cookie, then the browser is redirected to the article, or shown a
 *                     small landing page for an activity or product. With SHARE_OAUTH on, an open
 *                     in WeChat first goes through the account's silent web OAuth (`snsapi_base`)
 *                     and comes back with `?code=…&state=share`: the opener is their openid. A code
 *                     that does not exchange (used, expired, a snapshot page) falls back to the
 *                     cookie and fingerprint; the open is never lost.
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

export function linkRoutes(o: {
  db: Kysely<Database>
  clock: Clock
  timeZone: string
  oauth?: ShareOauthOptions
}): Hono {
  const app = new Hono()

  /** The opener's openid from the OAuth round trip; a Response when the browser must go first. */
  const openerOpenid = async (c: Context, code: string, userAgent: string) => {
    if (!o.oauth || !isWechatBrowser(userAgent)) return undefined
    const appid = await shareLinkAccount(o.db, code)
    const account = appid && o.oauth.account(appid)
    if (!appid || !account) return undefined
    const given = c.req.query('code')
    if (!given || c.req.query('state') !== OAUTH_STATE || !/^[\w-]{1,128}$/.test(given)) {
      const back = `${o.oauth.publicBaseUrl}/r/s/${code}`
      return c.redirect(oauthAuthorizeUrl(appid, back, OAUTH_STATE), 302)
    }
    try {
      const who = await exchangeOauthCode(account.api, {
        appid,
        secret: account.secret,
        code: given,
      })
      return who.snapshot ? undefined : who.openid
    } catch (error) {
      o.oauth.logger.warn('share link: web OAuth code not exchanged', { appid, error })
      return undefined
    }
  }

  app.get('/s/:code', async (c) => {
    const code = c.req.param('code')
    if (!/^[A-Za-z0-9]{16}$/.test(code)) throw new HTTPException(404, { message: 'no such link' })
    const userAgent = c.req.header('user-agent') ?? ''
    const openid = await openerOpenid(c, code, userAgent)
    if (openid instanceof Response) return openid
    const opened = await openShareLink(o.db, {
      code,
      cookie: getCookie(c, VISITOR_COOKIE),
      openid,
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
