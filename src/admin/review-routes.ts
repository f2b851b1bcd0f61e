/**
 * Product reviews in the operator API (inside /admin/api, behind its token):
 *
 *   GET   accounts/:appid/reviews?status=visible|hidden   newest first, at most 100
 *   POST  accounts/:appid/reviews/:id/hide                hides it; its points are taken back
 *   POST  accounts/:appid/reviews/:id/unhide              shows it again; those points given back
 */
import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import * as v from 'valibot'
import { listReviews } from '../community/reviews.js'
import { accountParam, parseParam, parseQuery, rowIdParam } from '../routes/validate.js'
import { hideReview, unhideReview } from './actions/review-actions.js'
import type { OperatorDeps } from './operator-deps.js'
import { apiActor } from './route-helpers.js'

const listQuery = v.strictObject({
  status: v.optional(v.picklist(['visible', 'hidden'], 'must be visible or hidden')),
})

/** The review routes, to mount inside the operator API. */
export function reviewAdminRoutes(o: OperatorDeps): Hono {
  const app = new Hono()
  const account = accountParam(o.appids)

  app.get('/accounts/:appid/reviews', async (c) => {
    const appid = account(c)
    const { status } = parseQuery(c, listQuery)
    const rows = await listReviews(o.db, { appid, status, limit: 100 })
    const reviews = rows.map((r) => ({
      id: r.id,
      openid: r.openid,
      sku: r.sku,
      rating: r.rating,
      text: r.body,
      status: r.status,
      points: r.points,
      reversedPoints: r.reversed_points,
      createdAt: r.created_at,
      hiddenAt: r.hidden_at,
    }))
    return c.json({ reviews })
  })

  app.post('/accounts/:appid/reviews/:id/hide', async (c) => {
    const appid = account(c)
    const id = parseParam(c, 'id', rowIdParam)
    const r = await hideReview(o, apiActor(c), { appid, id })
    if (r.status !== 'hidden') {
      if (r.status === 'not_found') throw new HTTPException(404, { message: 'unknown review' })
      return c.json({ status: r.status })
    }
    return c.json({ status: r.status, reversed: r.reversed, shortfall: r.shortfall })
  })

  app.post('/accounts/:appid/reviews/:id/unhide', async (c) => {
    const appid = account(c)
    const id = parseParam(c, 'id', rowIdParam)
    const r = await unhideReview(o, apiActor(c), { appid, id })
    if (r.status === 'not_found') throw new HTTPException(404, { message: 'unknown review' })
    return c.json(r.status === 'visible' ? { status: r.status, restored: r.restored } : r)
  })
  return app
}
