/**
 * The operator API under `/admin/api/accounts/:appid/…`, authenticated with `Authorization: Bearer
 * <ADMIN_TOKEN>` (admin-auth.ts). JSON in is validated and errors name the field. Every change is
 * an operator action (actions/, shared with the console) audited through one helper
 * (actions/audited-action.ts): in the same transaction, or right after the change's own commit
 * where it locks in its own transaction or calls WeChat (a redemption cancellation, an award).
 *
 *   members/:openid/points, …/ledger     grant or deduct points, a member's ledger (member-routes.ts)
 *   rules, rewards, redemptions/:id/cancel   points rules and rewards (reward-routes.ts)
 *   reviews, reviews/:id/hide            product reviews; hiding takes their points back (review-routes.ts)
 *   badges, members/:openid/badges       badge rules and a member's badges (badge-routes.ts)
 *   segments, tags/:tagid/members        lifecycle segments, WeChat tags (audience-routes.ts)
 *   invites/report, members/:openid/invite-qr   the invite report, invite QRs (invite-routes.ts)
 *   campaigns…                           campaigns and their reports (campaign-routes.ts)
 *   journeys…                            lifecycle journeys and their reports (journey-routes.ts)
 *   activities…                          activities, sign-ups, awards (activity-routes.ts)
 *   shop/…                               the shop's catalog, orders and refunds (shop-routes.ts)
 *   shop/reconciliation…                 daily reconciliation reports (reconciliation-routes.ts)
 *   groups, moderators, join-ways, audit-log   社群 (community-routes.ts)
 *   /admin/api/analytics/…               analytics (src/routes/admin-analytics.ts)
 */
import { Hono } from 'hono'
import type { Kysely } from 'kysely'
import type { WechatAccess } from '../bot/context.js'
import { type Locale, translator } from '../bot/i18n.js'
import type { Clock } from '../clock.js'
import type { ReportCounts } from '../community/campaign-reach.js'
import type { InviteSettings } from '../community/invites.js'
import type { GroupRobots } from '../community/moderation.js'
import type { Database } from '../db/schema.js'
import type { Logger } from '../logger.js'
import { bodySize } from '../middleware/body-size.js'
import { analyticsAdminRoutes } from '../routes/admin-analytics.js'
import { refuseNulInUrl } from '../routes/validate.js'
import type { Shop } from '../shop/maintenance.js'
import { activityAdminRoutes } from './activity-routes.js'
import { adminAuth } from './admin-auth.js'
import { audienceAdminRoutes } from './audience-routes.js'
import { badgeAdminRoutes } from './badge-routes.js'
import { campaignAdminRoutes } from './campaign-routes.js'
import { communityAdminRoutes } from './community-routes.js'
import { inviteAdminRoutes } from './invite-routes.js'
import { journeyAdminRoutes } from './journey-routes.js'
import { memberAdminRoutes } from './member-routes.js'
import type { OperatorDeps } from './operator-deps.js'
import { reconciliationAdminRoutes } from './reconciliation-routes.js'
import { reviewAdminRoutes } from './review-routes.js'
import { rewardAdminRoutes } from './reward-routes.js'
import { shopAdminRoutes } from './shop-routes.js'

export interface AdminRouteOptions {
  db: Kysely<Database>
  /** How a campaign report counts (app.ts: the recount's database, the slices' size). */
  reportCounts?: ReportCounts
  clock: Clock
  adminToken?: string
  appids: string[]
  timeZone: string
  /** Language of the notices members get (points granted or deducted). */
  locale: Locale
  /** Outbound API access (tags, campaign invite QRs). */
  wechat: WechatAccess
  invites: InviteSettings
  /** The shop, when configured: its operator routes are mounted too (shop-routes.ts). */
  shop?: Shop
  logger: Logger
  /** Group robots (the chats analytics alerts may be posted to). */
  robots?: GroupRobots
}

/**
 * The largest body the operator API reads (413 beyond it, after the token check). Its largest
 * legitimate JSON names up to 1000 openids (an award, a tag): about 35 KB.
 */
export const ADMIN_MAX_BODY_BYTES = 1024 * 1024

/** The operator API, to mount at `/admin/api`. */
export function adminRoutes(o: AdminRouteOptions): Hono {
  const app = new Hono()
  const { db, reportCounts, clock, timeZone, logger, wechat, invites, shop, appids } = o
  const deps: OperatorDeps = {
    ...{ db, reportCounts, clock, timeZone, logger, wechat, invites, shop, appids },
    t: translator(o.locale),
  }
  app.use('*', adminAuth(o))
  app.use('*', bodySize({ maxBytes: ADMIN_MAX_BODY_BYTES }))
  app.use('*', refuseNulInUrl)

  app.route('/', memberAdminRoutes(deps))
  if (deps.shop) {
    const shopDeps = { ...deps, shop: deps.shop }
    app.route('/', shopAdminRoutes(shopDeps))
    app.route('/', reconciliationAdminRoutes(shopDeps))
  }
  app.route(
    '/analytics',
    analyticsAdminRoutes({
      db: o.db,
      clock: o.clock,
      timeZone: o.timeZone,
      appids: o.appids,
      locale: o.locale,
      robots: o.robots,
      shop,
    }),
  )
  app.route('/', campaignAdminRoutes(deps))
  app.route('/', journeyAdminRoutes(deps))
  app.route('/', activityAdminRoutes(deps))
  app.route('/', audienceAdminRoutes(deps))
  app.route('/', inviteAdminRoutes(deps))
  app.route('/', rewardAdminRoutes(deps))
  app.route('/', reviewAdminRoutes(deps))
  app.route('/', badgeAdminRoutes(deps))
  app.route('/', communityAdminRoutes(deps))
  return app
}
