/**
 * What every console page gets: the dependencies (`ConsoleDeps`, the same database and clock the
 * admin API uses) and, per request, the signed-in operator, their CSRF token, the language and the
 * formatters (`ConsoleEnv`). Refusals are `ConsoleRefusal`s, rendered as a page in the operator's
 * language.
 */
import type { Context, MiddlewareHandler } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import type { Kysely } from 'kysely'
import type { Actor } from '../admin/actions/audited-action.js'
import type { WechatAccess } from '../bot/context.js'
import type { Clock } from '../clock.js'
import type { ReportCounts } from '../community/campaign-reach.js'
import type { CampaignSettings } from '../community/campaigns.js'
import type { OpsStatus } from '../community/ops-status.js'
import type { Database } from '../db/schema.js'
import type { Logger } from '../logger.js'
import type { Shop } from '../shop/maintenance.js'
import type { EncryptionMode } from '../wechat/webhook.js'
import type { Format } from './format.js'
import type { Lang, MessageKey, Translate } from './i18n.js'
import type { LoginThrottleLimits } from './login-throttle.js'
import type { Role } from './operators.js'
import type { SectionKey } from './page.js'
import type { ConsoleSession, SessionLimits } from './sessions.js'

/** The console's dependencies, injected by app.ts. */
export interface ConsoleDeps {
  db: Kysely<Database>
  /** How a campaign report counts (app.ts: the recount's database, the slices' size). */
  reportCounts?: ReportCounts
  clock: Clock
  logger: Logger
  /** The configured accounts; pages show the first unless `?appid=` names another. */
  appids: string[]
  timeZone: string
  /** The default language (QUANZI_LOCALE). */
  locale: Lang
  /** Proxies trusted for X-Forwarded-Proto (the cookie is Secure when the request was HTTPS). */
  trustedProxyHops: number
  sessionLimits?: SessionLimits
  /** The campaign cap and quiet hours the engine applies (shown on the campaign form). */
  campaigns?: Pick<CampaignSettings, 'capHours' | 'quietHours'>
  loginLimits?: LoginThrottleLimits
  /** What 系统 shows of the deployment (app.ts passes it; absent, that page shows less). */
  system?: SystemInfo
  /** The mini-program shop and WeChat Pay, when configured (商城订单 acts through it). */
  shop?: Shop
  /** Outbound WeChat API access, as the admin API has it (tagging); absent, those forms say so. */
  wechat?: WechatAccess
}

/** The deployment as 系统 shows it: never a secret, only whether one is configured. */
export interface SystemInfo {
  /** The vital signs /healthz and /metrics report (the same cached read). */
  status: () => Promise<OpsStatus>
  accounts: { appid: string; mode: EncryptionMode; secret: boolean; previousKey: boolean }[]
  /** The scheduled jobs (name and cron, in the community's time zone). */
  jobs: { name: string; cron: string }[]
  sandbox: boolean
}

/** Per-request variables of the console app. */
export interface ConsoleVariables {
  lang: Lang
  t: Translate
  fmt: Format
  /** The signed-in session (absent only on the sign-in page and assets). */
  session: ConsoleSession
  /** Each built section's link (the navigation). */
  links: Partial<Record<SectionKey, string>>
  /** The account the request is about (`consoleAccount` in security.ts) and the ones to switch to. */
  appid: string
  appids: readonly string[]
}

export type ConsoleEnv = { Variables: ConsoleVariables }
export type ConsoleContext = Context<ConsoleEnv>

/** A refusal shown as a page: the status and the message key that explains it. */
export class ConsoleRefusal extends HTTPException {
  constructor(
    status: ContentfulStatusCode,
    readonly key: MessageKey,
    readonly params?: Record<string, string | number>,
  ) {
    super(status, { message: key })
  }
}

/**
 * Refuses (403) an operator whose role is not one of `roles`.
 * @example app.post('/system/operators', requireRole('owner'), handler)
 */
export function requireRole(...roles: Role[]): MiddlewareHandler<ConsoleEnv> {
  return async function roleGuard(c, next) {
    const role = c.var.session.operator.role
    if (!roles.includes(role))
      throw new ConsoleRefusal(403, roles.includes('operator') ? 'error.viewer' : 'error.ownerOnly')
    await next()
  }
}

/**
 * Whether the signed-in operator has a per-day grant limit: such an operator may not set what
 * things are worth in points, so pages show those values read-only ({@link refuseLimited}).
 */
export function isLimited(c: ConsoleContext): boolean {
  const { role, dailyGrantLimit } = c.var.session.operator
  return role === 'operator' && dailyGrantLimit !== null
}

/**
 * Refuses (403) an operator with a per-day grant limit: what things are worth in points (points
 * rules, an activity's points) is set by an owner or an operator without a limit — else the limit
 * would bound the grants but not what a check-in or an award gives. Pages do not offer those
 * fields to them ({@link isLimited}); this is the server's own check.
 */
export function refuseLimited(c: ConsoleContext): void {
  if (isLimited(c)) throw new ConsoleRefusal(403, 'error.limited')
}

/**
 * The account a request is about: the form's or the query's `appid` when it is configured, else
 * the one the browser last chose (a cookie), else the first account (`consoleAccount`).
 */
export function accountOf(c: ConsoleContext): string {
  return c.var.appid
}

/** The signed-in operator as the audit log names them (an audited action's actor). */
export function actorOf(c: ConsoleContext): Actor {
  return { name: c.var.session.operator.name, clientAddress: c.var.clientAddress }
}
