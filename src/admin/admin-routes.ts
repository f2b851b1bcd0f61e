/**
 * The operator API under `/admin/api/accounts/:appid/…`, authenticated with `Authorization: Bearer
 * <ADMIN_TOKEN>` (constant-time compare; the API is off when ADMIN_TOKEN is unset). JSON in is
 * validated and errors name the field; every change is written to the audit log in the same
 * transaction (a redemption cancellation right after its own transaction commits).
 *
 *   POST  members/:openid/points        { delta, reason, idempotencyKey? }   grant (+) or deduct (−);
 *                                       the member is told (customer-service text via the outbox)
 *   GET   members/:openid/ledger?limit=&before=
 *   GET   rules                          effective rules (account overrides over defaults)
 *   PUT   rules/:rule                    { points, capCount?, capPeriod?, enabled? }
 *   GET   rewards / POST rewards / PATCH rewards/:code
 *   POST  redemptions/:id/cancel
 *   GET   segments                       members per lifecycle segment
 *   POST  tags/:tagid/members            { openids } tag followers at WeChat, and here (audiences)
 *   GET   invites/report?from=&to=      sharers, invites, conversions, share rate, K, top inviters
 *   POST  members/:openid/invite-qr      { campaign? } a member's invite QR for a campaign
 *   …/shop/…                             the shop's catalog, orders and refunds (admin-shop.ts)
 *   …/shop/reconciliation…               daily reconciliation reports (admin-reconciliation.ts)
 *   …/campaigns…                         campaigns and their reports (admin-campaigns.ts)
 *   …/activities…                        activities, sign-ups, awards (admin-activities.ts)
 */
import { type Context, Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { Kysely, Transaction } from 'kysely'
import * as v from 'valibot'
import type { WechatAccess } from '../bot/context.js'
import { type Locale, translator } from '../bot/i18n.js'
import type { Clock } from '../clock.js'
import { audit } from '../community/audit-log.js'
import { addDays, localDay } from '../community/community-time.js'
import { inviteReport } from '../community/invite-report.js'
import { type InviteSettings, inviteQr, isCampaign, recordShare } from '../community/invites.js'
import { findMember } from '../community/members.js'
import type { GroupRobots } from '../community/moderation.js'
import { levelUpLine, notifyMember } from '../community/notify.js'
import { applyDelta, withMemberLocked } from '../community/points-ledger.js'
import { cancelRedemption, ensureDefaultRewards } from '../community/rewards.js'
import { segmentCounts } from '../community/segments.js'
import type { Database, Member } from '../db/schema.js'
import type { Logger } from '../logger.js'
import { PayApiError } from '../pay/gateway.js'
import { analyticsAdminRoutes } from '../routes/admin-analytics.js'
import {
  accountParam,
  digits,
  INT_MAX,
  int,
  isDay,
  parseBody,
  parseParam,
  parseQuery,
  refuseNulInUrl,
  rowIdParam,
} from '../routes/validate.js'
import type { Shop } from '../shop/maintenance.js'
import { TRANSFER_MAX_FEN, TRANSFER_MIN_FEN } from '../shop/transfer-bills.js'
import { cancelCashback } from '../shop/transfers.js'
import { qrImageUrl } from '../wechat/api/qrcode.js'
import { tagMembers } from '../wechat/api/users.js'
import { sha1Hex, timingSafeEqual } from '../wechat/crypto.js'
import { activityAdminRoutes } from './activity-routes.js'
import { campaignAdminRoutes } from './campaign-routes.js'
import { reconciliationAdminRoutes } from './reconciliation-routes.js'
import { shopAdminRoutes } from './shop-routes.js'

export interface AdminRouteOptions {
  db: Kysely<Database>
  clock: Clock
  adminToken?: string
  appids: string[]
  timeZone: string
  /** Language of the notices members get (points granted or deducted). */
  locale: Locale
  /** Outbound API access (campaign invite QRs). */
  wechat: WechatAccess
  invites: InviteSettings
  /** The shop, when configured: its operator routes are mounted too (admin-shop.ts). */
  shop?: Shop
  logger: Logger
  /** Group robots (the chats analytics alerts may be posted to). */
  robots?: GroupRobots
}

const ACTOR = 'operator'

const pointsBody = v.strictObject({
  delta: v.pipe(
    v.number(),
    v.integer('must be a whole number'),
    v.check((n) => n !== 0, 'must not be 0'),
    v.minValue(-1_000_000),
    v.maxValue(1_000_000),
  ),
  reason: v.pipe(v.string(), v.trim(), v.minLength(1, 'is required'), v.maxLength(200)),
  idempotencyKey: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(100))),
})
const inviteQrBody = v.strictObject({
  campaign: v.optional(v.pipe(v.string(), v.check(isCampaign, '1–40 letters, digits or -'))),
})
const tagBody = v.strictObject({
  openids: v.pipe(v.array(v.pipe(v.string(), v.minLength(1))), v.minLength(1), v.maxLength(1000)),
})
const ruleBody = v.strictObject({
  points: int(0, 100_000),
  capCount: v.optional(v.nullable(int(1))),
  capPeriod: v.optional(
    v.nullable(v.picklist(['day', 'week', 'ever'], 'must be day, week or ever')),
  ),
  enabled: v.optional(v.boolean()),
})
const rewardFields = {
  name: v.pipe(v.string(), v.trim(), v.minLength(1), v.maxLength(60)),
  cost: int(1),
  stock: v.nullable(int(0)),
  perMemberLimit: v.nullable(int(1)),
  enabled: v.boolean(),
}
const rewardCreate = v.strictObject({
  code: int(1),
  name: rewardFields.name,
  cost: rewardFields.cost,
  stock: v.optional(rewardFields.stock, null),
  perMemberLimit: v.optional(rewardFields.perMemberLimit, null),
  /** A cashback reward: fen paid to the member's WeChat wallet (0.1–1,999.99 元). */
  cashbackFen: v.optional(
    int(TRANSFER_MIN_FEN, TRANSFER_MAX_FEN, 'must be 10–199999 fen (WeChat Pay transfer limits)'),
  ),
})
const rewardPatch = v.partial(v.strictObject(rewardFields))
const ledgerQuery = v.object({
  limit: v.optional(digits(1, INT_MAX, 'must be a whole number ≥ 1')),
  before: v.optional(rowIdParam),
})
const reportQuery = v.object({
  from: v.optional(v.pipe(v.string(), v.check(isDay, 'must be a date YYYY-MM-DD'))),
  to: v.optional(v.pipe(v.string(), v.check(isDay, 'must be a date YYYY-MM-DD'))),
})
const rewardCode = digits(1, INT_MAX, 'must be a reward code')
const tagId = digits(1, INT_MAX, 'a WeChat tag id')

/** The `:appid` an operator call names, when it names one (refused calls are audited under it). */
const requestedAppid = (path: string) => /\/accounts\/([^/]{1,64})/.exec(path)?.[1]

/** The operator API, to mount at `/admin/api`. */
export function adminRoutes(o: AdminRouteOptions): Hono {
  const app = new Hono()
  const t = translator(o.locale)
  // Compare digests so the comparison time does not depend on the token's length either.
  const expected = o.adminToken ? sha1Hex(o.adminToken) : undefined

  /** A refused call goes to the audit log with the client's address (never the token). */
  const auditRefusal = async (c: Context, status: number, reason: string | undefined) => {
    const requested = requestedAppid(c.req.path)
    try {
      await audit(o.db, {
        appid: requested && o.appids.includes(requested) ? requested : '-',
        actor: status === 401 ? 'anonymous' : ACTOR,
        action: 'refused',
        target: `${c.req.method} ${c.req.path}`.replaceAll('\u0000', '%00').slice(0, 300),
        details: { status, reason: reason?.slice(0, 300), appid: requested },
        now: o.clock.now(),
        clientAddress: c.var.clientAddress,
      })
    } catch (error) {
      o.logger.warn('could not audit a refused operator call', { status, error })
    }
  }

  app.use('*', async function adminAuth(c, next) {
    if (!expected)
      throw new HTTPException(404, { message: 'operator API disabled: set ADMIN_TOKEN' })
    const given = /^Bearer (.+)$/.exec(c.req.header('authorization') ?? '')?.[1]
    if (!given || !timingSafeEqual(await sha1Hex(given), await expected)) {
      const message = 'missing or wrong bearer token'
      await auditRefusal(c, 401, message)
      throw new HTTPException(401, { message })
    }
    await next()
    if (c.res.status >= 400 && c.res.status < 500)
      await auditRefusal(
        c,
        c.res.status,
        c.error?.message ?? (c.res.status === 404 ? 'no such route' : undefined),
      )
  })

  app.use('*', refuseNulInUrl)

  const account = accountParam(o.appids)
  const memberOf = async (c: Context) => {
    const appid = account(c)
    const member = await findMember(o.db, appid, c.req.param('openid')!)
    if (!member) throw new HTTPException(404, { message: 'unknown member' })
    return { appid, member }
  }

  app.post('/accounts/:appid/members/:openid/points', async (c) => {
    const { appid, member } = await memberOf(c)
    const body = await parseBody(c, pointsBody)
    const now = o.clock.now()
    const key = body.idempotencyKey ?? `admin:${crypto.randomUUID()}`
    const outcome = await withMemberLocked(o.db, member.id, async (trx, locked) => {
      if (body.delta > 0 && (await overflows(trx, appid, locked, body.delta, key)))
        return { status: 'limit' as const, balance: locked.points_balance }
      const result = await applyDelta(
        trx,
        locked,
        {
          appid,
          memberId: member.id,
          rule: body.delta > 0 ? 'grant' : 'deduct',
          idempotencyKey: key,
          reference: body.reason,
          now,
          timeZone: o.timeZone,
        },
        body.delta,
      )
      if (result.status === 'applied') {
        const delta = body.delta > 0 ? `+${body.delta}` : String(body.delta)
        const lines = [t('points.changed', { delta, reason: body.reason, balance: result.balance })]
        const up = levelUpLine(result, t)
        if (up) lines.push(up)
        await notifyMember(trx, {
          appid,
          openid: member.openid,
          source: `points:${key}`,
          text: lines.join('\n'),
          now,
        })
        await audit(trx, {
          appid,
          actor: ACTOR,
          action: body.delta > 0 ? 'points.grant' : 'points.deduct',
          target: member.openid,
          details: { ...body, idempotencyKey: key },
          now,
        })
      }
      return result
    })
    if (outcome.status === 'limit')
      return c.json(
        {
          code: 'BALANCE_LIMIT',
          message: `delta: the balance or lifetime points would exceed ${INT_MAX}`,
          status: outcome.status,
          balance: outcome.balance,
        },
        409,
      )
    const payload = { status: outcome.status, balance: outcome.balance, level: outcome.level.key }
    if (outcome.status === 'insufficient')
      return c.json(
        { code: 'INSUFFICIENT_POINTS', message: `balance is ${outcome.balance}`, ...payload },
        409,
      )
    return c.json(payload, outcome.status === 'applied' ? 201 : 200)
  })

  app.get('/accounts/:appid/members/:openid/ledger', async (c) => {
    const { member } = await memberOf(c)
    const query = parseQuery(c, ledgerQuery)
    const limit = Math.min(200, query.limit ?? 50)
    const before = query.before ?? 0
    let q = o.db
      .selectFrom('points_ledger')
      .select([
        'id',
        'delta',
        'rule',
        'reference',
        'balance_after',
        'earned',
        'state',
        'created_at',
        'expires_at',
      ])
      .where('member_id', '=', member.id)
      .orderBy('id', 'desc')
      .limit(limit)
    if (before > 0) q = q.where('id', '<', before)
    const entries = await q.execute()
    return c.json({
      balance: member.points_balance,
      frozen: member.points_frozen,
      lifetime: member.points_lifetime,
      level: member.level,
      entries,
    })
  })

  if (o.shop)
    app.route('/', shopAdminRoutes({ db: o.db, clock: o.clock, logger: o.logger, shop: o.shop }))
  if (o.shop)
    app.route(
      '/',
      reconciliationAdminRoutes({ db: o.db, clock: o.clock, logger: o.logger, shop: o.shop }),
    )
  app.route(
    '/analytics',
    analyticsAdminRoutes({
      db: o.db,
      clock: o.clock,
      timeZone: o.timeZone,
      appids: o.appids,
      locale: o.locale,
      robots: o.robots,
    }),
  )
  app.route(
    '/',
    campaignAdminRoutes({ db: o.db, clock: o.clock, timeZone: o.timeZone, appids: o.appids }),
  )
  app.route(
    '/',
    activityAdminRoutes({ db: o.db, clock: o.clock, timeZone: o.timeZone, appids: o.appids }),
  )

  app.post('/accounts/:appid/tags/:tagid/members', async (c) => {
    const appid = account(c)
    const tagid = parseParam(c, 'tagid', tagId)
    const body = await parseBody(c, tagBody)
    const api = o.wechat.api(appid)
    if (!api) throw new HTTPException(409, { message: 'the account has no WECHAT_SECRET: no API' })
    const members = await o.db
      .selectFrom('members')
      .select(['id', 'openid'])
      .where('appid', '=', appid)
      .where('openid', 'in', body.openids)
      .execute()
    const unknown = body.openids.filter((x) => !members.some((m) => m.openid === x))
    if (unknown.length)
      throw new HTTPException(404, { message: `unknown members: ${unknown.join(', ')}` })
    // WeChat first: only what it accepted is recorded (and targeted by campaigns).
    await tagMembers(api, tagid, body.openids)
    const now = o.clock.now()
    await o.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('member_tags')
        .values(members.map((m) => ({ member_id: m.id, tagid, tagged_at: now })))
        .onConflict((oc) => oc.columns(['member_id', 'tagid']).doNothing())
        .execute()
      await audit(trx, {
        appid,
        actor: ACTOR,
        action: 'tags.add',
        target: String(tagid),
        details: body,
        now,
      })
    })
    return c.json({ tagid, tagged: members.length })
  })

  app.get('/accounts/:appid/segments', async (c) => {
    const appid = account(c)
    return c.json({ segments: await segmentCounts(o.db, appid) })
  })

  app.get('/accounts/:appid/invites/report', async (c) => {
    const appid = account(c)
    const today = localDay(o.clock.now(), o.timeZone)
    const query = parseQuery(c, reportQuery)
    const to = query.to ?? today
    const from = query.from ?? addDays(to, -29)
    if (from > to) throw new HTTPException(400, { message: 'from: must not be after to' })
    if (addDays(from, 366) <= to)
      throw new HTTPException(400, { message: 'to: the period is at most 366 days' })
    return c.json(await inviteReport(o.db, { appid, from, to, timeZone: o.timeZone }))
  })

  app.post('/accounts/:appid/members/:openid/invite-qr', async (c) => {
    const { appid, member } = await memberOf(c)
    const body = await parseBody(c, inviteQrBody)
    const api = o.wechat.api(appid)
    if (!api) throw new HTTPException(409, { message: 'the account has no WECHAT_SECRET: no API' })
    const qr = await inviteQr(o.db, api, {
      member,
      campaign: body.campaign,
      now: o.clock.now(),
      settings: o.invites,
    })
    // Handing out a campaign QR is that member sharing in the campaign (the report's sharers).
    await recordShare(o.db, {
      member,
      campaign: body.campaign,
      now: o.clock.now(),
      timeZone: o.timeZone,
    })
    await audit(o.db, {
      appid,
      actor: ACTOR,
      action: 'invite.qr',
      target: member.openid,
      details: body,
      now: o.clock.now(),
    })
    return c.json(
      { ...qr, imageUrl: qrImageUrl(o.wechat.qrImageBase, qr.ticket) },
      qr.issued ? 201 : 200,
    )
  })

  app.get('/accounts/:appid/rules', async (c) => {
    const appid = account(c)
    const rows = await o.db
      .selectFrom('point_rules')
      .selectAll()
      .where('appid', 'in', [appid, '*'])
      .orderBy('rule')
      .execute()
    const effective = new Map<string, (typeof rows)[number]>()
    for (const r of rows) if (r.appid === appid || !effective.has(r.rule)) effective.set(r.rule, r)
    return c.json({
      rules: [...effective.values()].map((r) => ({
        rule: r.rule,
        points: r.points,
        capCount: r.cap_count,
        capPeriod: r.cap_period,
        enabled: r.enabled,
        overridden: r.appid === appid,
      })),
    })
  })

  app.put('/accounts/:appid/rules/:rule', async (c) => {
    const appid = account(c)
    const rule = c.req.param('rule')
    if (!/^[a-z][a-z0-9_]{1,40}$/.test(rule))
      throw new HTTPException(400, { message: 'rule: lowercase letters, digits and _' })
    const body = await parseBody(c, ruleBody)
    if (((body.capCount ?? null) === null) !== ((body.capPeriod ?? null) === null)) {
      throw new HTTPException(400, { message: 'capCount and capPeriod: set both or neither' })
    }
    const row = {
      points: body.points,
      cap_count: body.capCount ?? null,
      cap_period: body.capPeriod ?? null,
      enabled: body.enabled ?? true,
    }
    await o.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('point_rules')
        .values({ appid, rule, ...row })
        .onConflict((oc) => oc.columns(['appid', 'rule']).doUpdateSet(row))
        .execute()
      await audit(trx, {
        appid,
        actor: ACTOR,
        action: 'rule.update',
        target: rule,
        details: body,
        now: o.clock.now(),
      })
    })
    return c.json({ rule, ...body })
  })

  app.get('/accounts/:appid/rewards', async (c) => {
    const appid = account(c)
    await ensureDefaultRewards(o.db, appid, o.clock.now())
    const rewards = await o.db
      .selectFrom('rewards')
      .selectAll()
      .where('appid', '=', appid)
      .orderBy('code')
      .execute()
    return c.json({ rewards })
  })

  app.post('/accounts/:appid/rewards', async (c) => {
    const appid = account(c)
    const body = await parseBody(c, rewardCreate)
    const now = o.clock.now()
    const created = await o.db.transaction().execute(async (trx) => {
      const row = await trx
        .insertInto('rewards')
        .values({
          appid,
          code: body.code,
          name: body.name,
          cost: body.cost,
          stock: body.stock,
          per_member_limit: body.perMemberLimit,
          created_at: now,
          ...(body.cashbackFen
            ? { kind: 'cashback' as const, cashback_fen: body.cashbackFen }
            : {}),
        })
        .onConflict((oc) => oc.columns(['appid', 'code']).doNothing())
        .returningAll()
        .executeTakeFirst()
      if (row)
        await audit(trx, {
          appid,
          actor: ACTOR,
          action: 'reward.create',
          target: String(body.code),
          details: body,
          now,
        })
      return row
    })
    if (!created) throw new HTTPException(409, { message: `code: reward ${body.code} exists` })
    return c.json(created, 201)
  })

  app.patch('/accounts/:appid/rewards/:code', async (c) => {
    const appid = account(c)
    const code = parseParam(c, 'code', rewardCode)
    const body = await parseBody(c, rewardPatch)
    const set = {
      name: body.name,
      cost: body.cost,
      stock: body.stock,
      per_member_limit: body.perMemberLimit,
      enabled: body.enabled,
    }
    const changes = Object.fromEntries(Object.entries(set).filter(([, x]) => x !== undefined))
    if (Object.keys(changes).length === 0)
      throw new HTTPException(400, { message: 'body: nothing to change' })
    const updated = await o.db.transaction().execute(async (trx) => {
      const row = await trx
        .updateTable('rewards')
        .set(changes)
        .where('appid', '=', appid)
        .where('code', '=', code)
        .returningAll()
        .executeTakeFirst()
      if (row)
        await audit(trx, {
          appid,
          actor: ACTOR,
          action: 'reward.update',
          target: String(code),
          details: body,
          now: o.clock.now(),
        })
      return row
    })
    if (!updated) throw new HTTPException(404, { message: 'unknown reward' })
    return c.json(updated)
  })

  app.post('/accounts/:appid/redemptions/:id/cancel', async (c) => {
    const appid = account(c)
    const id = parseParam(c, 'id', rowIdParam)
    const now = o.clock.now()
    const result = await cancelRedemption(o.db, {
      appid,
      redemptionId: id,
      now,
      timeZone: o.timeZone,
    })
    if (result === 'not_found') throw new HTTPException(404, { message: 'unknown redemption' })
    if (result === 'transfer_in_progress') return cancelCashbackTransfer(c, appid, id, now)
    if (result === 'paid_out')
      throw new HTTPException(409, { message: 'the cashback is paid out: it cannot be cancelled' })
    if (result === 'cancelled')
      await audit(o.db, {
        appid,
        actor: ACTOR,
        action: 'redemption.cancel',
        target: String(id),
        details: {},
        now,
      })
    return c.json({ status: result })
  })

  /**
   * A cashback whose transfer may still pay out: cancelled at WeChat Pay (only before the member
   * confirms); the redemption is cancelled, and the points come back, when the bill is.
   */
  async function cancelCashbackTransfer(c: Context, appid: string, id: number, now: Date) {
    if (!o.shop)
      throw new HTTPException(409, {
        message: 'the cashback is being paid out (no shop configured)',
      })
    const state = await cancelCashback(
      { db: o.db, shop: o.shop, timeZone: o.timeZone, logger: o.logger, t },
      id,
      now,
    ).catch((error: unknown) => {
      if (!(error instanceof PayApiError)) throw error
      throw new HTTPException(409, { message: `WeChat Pay refused the cancel: ${error.code}` })
    })
    if (state === 'success')
      throw new HTTPException(409, { message: 'the cashback is paid out: it cannot be cancelled' })
    await audit(o.db, {
      appid,
      actor: ACTOR,
      action: 'redemption.cancel',
      target: String(id),
      details: { transfer: state },
      now,
    })
    return c.json({ status: state === 'cancelled' ? 'cancelled' : 'cancelling', transfer: state })
  }

  return app
}

/**
 * Whether granting `delta` would take the member's balance or lifetime points past the `integer`
 * columns — unless the idempotency key was already used (then the grant is a duplicate, answered
 * as before).
 */
async function overflows(
  trx: Transaction<Database>,
  appid: string,
  member: Member,
  delta: number,
  key: string,
): Promise<boolean> {
  if (member.points_balance + delta <= INT_MAX && member.points_lifetime + delta <= INT_MAX)
    return false
  const used = await trx
    .selectFrom('points_ledger')
    .select('id')
    .where('appid', '=', appid)
    .where('idempotency_key', '=', key)
    .executeTakeFirst()
  return used === undefined
}
