/**
 * Product reviews in the operator API (inside /admin/api, behind its token):
 *
 *   GET   accounts/:appid/reviews?status=visible|hidden   newest first, at most 100
 *   POST  accounts/:appid/reviews/:id/hide                hides it; its points are taken back
 */
import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import * as v from 'valibot'
import { accountParam, parseParam, parseQuery, rowIdParam } from '../routes/validate.js'
import { hideReview } from './actions/review-actions.js'
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
    const reviews = await o.db
      .selectFrom('product_reviews')
      .innerJoin('members', 'members.id', 'product_reviews.member_id')
      .innerJoin('products', 'products.id', 'product_reviews.product_id')
      .select([
        'product_reviews.id',
        'members.openid',
        'products.sku',
        'product_reviews.rating',
        'product_reviews.body as text',
        'product_reviews.status',
        'product_reviews.points',
        'product_reviews.reversed_points as reversedPoints',
        'product_reviews.created_at as createdAt',
        'product_reviews.hidden_at as hiddenAt',
      ])
      .where('product_reviews.appid', '=', appid)
      .$if(status !== undefined, (q) => q.where('product_reviews.status', '=', status!))
      .orderBy('product_reviews.id', 'desc')
      .limit(100)
      .execute()
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
  return app
}
