/** `GET /r/:code`: a campaign's tracked link — the click is recorded, then the browser redirected. */
import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { Kysely } from 'kysely'
import type { Clock } from '../clock.js'
import { followLink } from '../community/campaigns.js'
import type { Database } from '../db/schema.js'
import { isHttpUrl } from '../http-url.js'

export function linkRoutes(o: { db: Kysely<Database>; clock: Clock }): Hono {
  const app = new Hono()
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
