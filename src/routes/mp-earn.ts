/**
 * What the mini program calls to earn the rules that need a member's action (after the session
 * check, under `/api/mp`):
 *
 *   POST reviews        { outTradeNo, rating 1–5, text 5–500 }  → 201 { review, points, capped }
 *   GET  reviews?sku=…                                          → { reviews } visible, newest first
 *   POST shares         { kind: article|activity|product, ref } → { code, url } (`/r/s/<code>`)
 *   GET  profile                                                → { profile }
 *   PUT  profile        { nickname?, birthMonth?, city? }       → { profile, awarded }
 *
 * Refusals are `{code, message}`: 404 NOT_FOUND, 409 NOT_ELIGIBLE / ALREADY_REVIEWED, 400 with the
 * field for bad input. Writes run on the member the user is linked to now, under their link
 * (shop/linked-member.ts): a 绑定 racing them never leaves them on the member it moved away from.
 */
import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import * as v from 'valibot'
import { lockMember } from '../community/points-ledger.js'
import {
  changeProfile,
  checkField,
  missingFields,
  type ProfileChange,
  type ProfileField,
} from '../community/profile.js'
import {
  listReviews,
  REVIEW_TEXT_MAX,
  REVIEW_TEXT_MIN,
  reviewOrder,
  reviewText,
} from '../community/reviews.js'
import { shareLink } from '../community/shares.js'
import type { Member } from '../db/schema.js'
import { mpUser, withLinkedMember } from '../shop/linked-member.js'
import type { ShopRouteOptions } from './shop.js'
import { InputError, int, parseBody, parseQuery } from './validate.js'

const reviewBody = v.strictObject({
  outTradeNo: v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{6,32}$/, 'must be an order number')),
  rating: int(1, 5, 'must be 1–5'),
  text: v.pipe(
    v.string(),
    v.check(
      (s) => reviewText(s).ok,
      `must be ${REVIEW_TEXT_MIN}–${REVIEW_TEXT_MAX} characters, without control characters`,
    ),
    v.transform((s) => s.trim()),
  ),
})
const skuQuery = v.strictObject({
  sku: v.pipe(v.string(), v.regex(/^[a-z0-9-]{1,40}$/, 'must be a catalog sku')),
})
const shareBody = v.strictObject({
  kind: v.picklist(['article', 'activity', 'product'], 'must be article, activity or product'),
  ref: v.pipe(v.string(), v.minLength(1, 'is required'), v.maxLength(1000)),
})
const profileBody = v.strictObject({
  nickname: v.optional(v.pipe(v.string(), v.maxLength(200))),
  birthMonth: v.optional(int(1, 12, 'must be 1–12')),
  city: v.optional(v.pipe(v.string(), v.maxLength(200))),
})

const REVIEW_REFUSALS = {
  not_found: [404, 'no such order'],
  not_eligible: [409, 'only a paid order that was not refunded can be reviewed'],
  already_reviewed: [409, 'this order is reviewed already'],
} as const

const FIELD_PROBLEM: Record<ProfileField, string> = {
  nickname: 'must be 1–16 characters, one line, without a refused word',
  birthMonth: 'must be 1–12',
  city: "must be 1–20 letters (words may be joined by a space, ·, ', - or .)",
}

const profileJson = (m: Member) => ({
  nickname: m.display_name,
  birthMonth: m.birth_month,
  city: m.city,
  missing: missingFields(m),
})

/** The earn routes, to mount inside the mini-program API after its session check. */
export function earnRoutes(
  o: ShopRouteOptions,
): Hono<{ Variables: { memberId: number; openid: string } }> {
  const { db, shop } = o
  const app = new Hono<{ Variables: { memberId: number; openid: string } }>()

  app.post('/reviews', async (c) => {
    const body = await parseBody(c, reviewBody)
    const now = o.clock.now()
    const r = await withLinkedMember(db, mpUser(shop.settings.mpAppid, c.var), async (trx, id) =>
      reviewOrder(trx, await lockMember(trx, id), {
        outTradeNo: body.outTradeNo,
        rating: body.rating,
        text: body.text,
        now,
        timeZone: o.timeZone,
      }),
    )
    if (r.status !== 'created') {
      const [status, message] = REVIEW_REFUSALS[r.status]
      return c.json({ code: r.status.toUpperCase(), message }, status)
    }
    return c.json(
      { review: { id: r.reviewId }, points: r.points, capped: r.capped, balance: r.balance },
      201,
    )
  })

  app.get('/reviews', async (c) => {
    const { sku } = parseQuery(c, skuQuery)
    const rows = await listReviews(db, {
      appid: shop.settings.appid,
      sku,
      status: 'visible',
      limit: 20,
    })
    return c.json({
      reviews: rows.map((r) => ({
        id: r.id,
        rating: r.rating,
        text: r.body,
        name: r.display_name,
        createdAt: r.created_at,
      })),
    })
  })

  app.post('/shares', async (c) => {
    const body = await parseBody(c, shareBody)
    const now = o.clock.now()
    const r = await withLinkedMember(db, mpUser(shop.settings.mpAppid, c.var), (trx, memberId) =>
      shareLink(trx, {
        memberId,
        kind: body.kind,
        ref: body.ref,
        address: c.var.clientAddress,
        appid: shop.settings.appid,
        now,
      }),
    )
    if (r.status === 'not_found')
      throw new HTTPException(404, {
        message:
          body.kind === 'article'
            ? 'ref: must be an https://mp.weixin.qq.com/ article URL'
            : `ref: no such ${body.kind}`,
      })
    return c.json({ code: r.code, url: `${o.publicBaseUrl ?? ''}/r/s/${r.code}` })
  })

  app.get('/profile', async (c) => {
    const m = await db
      .selectFrom('members')
      .selectAll()
      .where('id', '=', c.var.memberId)
      .executeTakeFirstOrThrow()
    return c.json({ profile: profileJson(m) })
  })

  app.put('/profile', async (c) => {
    const body = await parseBody(c, profileBody)
    const change: ProfileChange = {}
    const issues: { path: string; message: string }[] = []
    for (const [field, raw] of [
      ['nickname', body.nickname],
      ['birthMonth', body.birthMonth === undefined ? undefined : String(body.birthMonth)],
      ['city', body.city],
    ] as const) {
      if (raw === undefined) continue
      const check = checkField(field, raw)
      if (check.ok) Object.assign(change, check.change)
      else issues.push({ path: field, message: FIELD_PROBLEM[field] })
    }
    if (issues.length > 0) throw new InputError(issues)
    if (Object.keys(change).length === 0)
      throw new HTTPException(400, { message: 'body: nothing to change' })
    const at = { now: o.clock.now(), timeZone: o.timeZone }
    const u = await withLinkedMember(db, mpUser(shop.settings.mpAppid, c.var), async (trx, id) =>
      changeProfile(trx, await lockMember(trx, id), change, at),
    )
    return c.json({ profile: profileJson(u.member), awarded: u.awarded })
  })

  return app
}
