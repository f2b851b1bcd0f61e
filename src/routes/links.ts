/**
 * Tracked links:
 *   `GET /r/:code`    a campaign's link — the click is recorded, then the browser redirected;
 *   `GET /r/s/:code`  a member's share link (src/community/shares.ts) — the open is recorded (and
 *                     may earn the sharer `content_share`), the opener identity is kept in the
 *                     `qz_vid` cookie, then the browser is redirected to the article, or shown a
 *                     small landing page for an activity or product.
 */
import { Hono } from 'hono'
import { getCookie, setCookie } from 'hono/cookie'
import { html } from 'hono/html'
import { HTTPException } from 'hono/http-exception'
import type { Kysely } from 'kysely'
import type { Clock } from '../clock.js'
import { followLink } from '../community/campaigns.js'
import { openShareLink, shareLanding, VISITOR_COOKIE } from '../community/shares.js'
import type { Database } from '../db/schema.js'
import { isHttpUrl } from '../http-url.js'

export function linkRoutes(o: { db: Kysely<Database>; clock: Clock; timeZone: string }): Hono {
  const app = new Hono()
  app.get('/s/:code', async (c) => {
    const code = c.req.param('code')
    const opened = /^[A-Za-z0-9]{16}$/.test(code)
      ? await openShareLink(o.db, {
          code,
          cookie: getCookie(c, VISITOR_COOKIE),
          address: c.var.clientAddress,
          userAgent: c.req.header('user-agent') ?? '',
          now: o.clock.now(),
          timeZone: o.timeZone,
        })
      : undefined
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
