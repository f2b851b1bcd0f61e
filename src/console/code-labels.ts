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
