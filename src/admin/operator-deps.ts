/**
 * What the operator API's routes — and the console's pages — are built with. Each operator action
 * (src/admin/actions/) takes the part of it it needs, so one `OperatorDeps` serves them all.
 */
import type { WechatAccess } from '../bot/context.js'
import type { Translate } from '../bot/i18n.js'
import type { ReportCounts } from '../community/campaign-reach.js'
import type { InviteSettings } from '../community/invites.js'
import type { Logger } from '../logger.js'
import type { Shop } from '../shop/maintenance.js'
import type { ActionDeps } from './actions/audited-action.js'

/** The database, clock and time zone, plus what some actions need besides. */
export interface OperatorDeps extends ActionDeps {
  /** How a campaign report counts (app.ts: the recount's database, the slices' size). */
  reportCounts?: ReportCounts
  logger: Logger
  /** The members' language (the notices they get: points granted or deducted, cashback). */
  t: Translate
  /** Outbound API access (tags, invite QRs). */
  wechat: WechatAccess
  invites: InviteSettings
  /** The shop, when configured (products, orders, refunds, reconciliation, cashback transfers). */
  shop?: Shop
  /** The configured accounts: an operator route names one of them. */
  appids: string[]
}
