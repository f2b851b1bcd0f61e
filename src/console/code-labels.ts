/**
 * Codes the database stores — a level key, a ledger entry's kind, a sign-up's status, an audit
 * action — in the operator's words. The known codes are typed unions, so a message missing for one
 * fails `tsc`; a code the console does not know (a row written by a newer version) shows as itself
 * rather than breaking the page.
 */
import { AUDIT_ACTIONS, type AuditAction, REFUSED } from '../community/audit-log.js'
import { LEVELS, type Level } from '../community/levels.js'
import type { ActivitySignupsTable, RefundsTable } from '../db/schema.js'
import type { TemplateRule } from '../wechat/api/errors.js'
import type { Translate } from './i18n.js'

/**
 * Every kind (`rule`) the points ledger holds besides `activity_<key>`: the rules of the rules table
 * and the labels the ledger's writers use (points-ledger.ts callers, the SQL functions of
 * migrations 0007, 0035, 0042, 0057, points-expiry.ts).
 */
export const LEDGER_KINDS = [
  'daily_login',
  'checkin',
  'streak_bonus',
  'monthly_checkin',
  'checkin_makeup',
  'first_purchase',
  'purchase',
  'points_release',
  'purchase_refund',
  'product_review',
  'product_review_hidden',
  'product_review_unhidden',
  'friend_invite',
  'invite_chain',
  'content_share',
  'complete_profile',
  'grant',
  'deduct',
  'moderator_grant',
  'moderator_deduct',
  'redeem',
  'redeem_refund',
  'journey_offer',
  'mp_link_out',
  'mp_link_in',
  'points_expiry',
] as const
type LedgerKind = (typeof LEDGER_KINDS)[number]

const isOneOf = <K extends string>(list: readonly K[], code: string): code is K =>
  (list as readonly string[]).includes(code)

/** A ledger entry's kind: `grant` → 运营发放, `activity_yoga` → 活动奖励（yoga）. */
export function ledgerKindName(t: Translate, rule: string): string {
  if (isOneOf<LedgerKind>(LEDGER_KINDS, rule)) return t(`member.ledger.kind.${rule}`)
  const activity = /^activity_(.+)$/.exec(rule)
  if (activity) return t('member.ledger.kind.activity', { key: activity[1]! })
  return rule
}

const LEVEL_KEYS = LEVELS.map((l) => l.key)

/** A level's name, the one the bot tells members (`rewards.level.*` read the bot's messages). */
export function levelName(t: Translate, key: string): string {
  return isOneOf<Level['key']>(LEVEL_KEYS, key) ? t(`rewards.level.${key}`) : key
}

type SignupStatus = ActivitySignupsTable['status']
const SIGNUP_STATUSES: readonly SignupStatus[] = ['confirmed', 'waitlisted', 'cancelled']

/** An activity sign-up's status. */
export function signupStatusName(t: Translate, status: string): string {
  return isOneOf(SIGNUP_STATUSES, status) ? t(`member.signup.status.${status}`) : status
}

type RefundStatus = RefundsTable['status']
const REFUND_STATUSES: readonly RefundStatus[] = [
  'requested',
  'processing',
  'success',
  'closed',
  'abnormal',
  'failed',
]

/** A refund's status (the system page counts the unfinished ones by status). */
export function refundStatusName(t: Translate, status: string): string {
  return isOneOf(REFUND_STATUSES, status) ? t(`shop.refundStatus.${status}`) : status
}

/**
 * An audit entry's action: `points.grant` → 发放积分, a moderator's command refused
 * (`points.grant.refused`) → 非管理员尝试（已拒绝）：发放积分, a refused API call (`refused`).
 */
export function auditActionName(t: Translate, action: string): string {
  if (isOneOf<AuditAction>(AUDIT_ACTIONS, action)) return t(`community.action.${action}`)
  if (action === REFUSED) return t('community.action.refused')
  const base = action.replace(/\.refused$/, '')
  if (base !== action && isOneOf<AuditAction>(AUDIT_ACTIONS, base))
    return t('community.action.refusedOf', { action: t(`community.action.${base}`) })
  return action
}

/** A template rule WeChat's check found broken (`too_long` → 26 个字，超过 20 字的上限…). */
export function templateRuleText(t: Translate, rule: TemplateRule): string {
  return t(`wechat.rule.${rule.code}`, 'params' in rule ? rule.params : undefined)
}

/** The seeded journeys (migration 0047), by key: accounts copy them, so every journey is one. */
export const JOURNEY_KEYS = ['welcome', 'recall', 'vip'] as const
/** The seeded journeys' step keys (migration 0047). */
export const JOURNEY_STEP_KEYS = ['day0', 'day1', 'day3', 'offer', 'invite'] as const

/** A journey's name by its key (新人欢迎); a journey the console does not know by its stored name. */
export function journeyName(t: Translate, j: { key: string; name: string }): string {
  return isOneOf(JOURNEY_KEYS, j.key) ? t(`journeys.name.${j.key}`) : j.name
}

/** A journey step's name by its key (`day0` → 首日欢迎); an unknown key shows as itself. */
export function journeyStepName(t: Translate, key: string): string {
  return isOneOf(JOURNEY_STEP_KEYS, key) ? t(`journeys.stepName.${key}`) : key
}

/** The scheduled jobs (jobs/*.ts `name`), for the 系统 page (one not here shows as its code). */
export const JOB_NAMES = [
  'activity-reminders',
  'alerts',
  'analytics-rollup',
  'backfill-unionids',
  'campaigns',
  'checkin-reminders',
  'database-maintenance',
  'expire-points',
  'journeys',
  'prune-inbound-events',
  'recompute-recommendations',
  'recompute-segments',
  'reconcile-bills',
  'release-points',
  'retention',
  'shop-maintenance',
] as const

/** A scheduled job's name (`prune-inbound-events` → 清理已处理的入站消息); unknown ones as themselves. */
export function jobName(t: Translate, job: string): string {
  return isOneOf(JOB_NAMES, job) ? t(`system.jobName.${job}`) : job
}

/** The group channels a campaign audience takes besides `bridge:<id>` (campaign-input.ts). */
export const GROUP_CHANNELS = ['wecom_aibot', 'wecom_customer'] as const

/** A group's channel: 企业微信（智能机器人）, 企业微信客户群, 桥接群 telegram; else itself. */
export function groupChannelName(t: Translate, channel: string): string {
  if (isOneOf(GROUP_CHANNELS, channel)) return t(`community.channel.${channel}`)
  const bridge = /^bridge:(.+)$/.exec(channel)
  return bridge ? t('campaigns.channel.bridge', { id: bridge[1]! }) : channel
}
