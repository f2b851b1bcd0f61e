/**
 * What the 积分商城 pages share: the section's own links (规则与等级 · 奖品 · 兑换记录 · 返现打款 · 徽章),
 * reading typed forms, and the `?appid=` a form or redirect keeps.
 */
import { SectionTabs } from '../components/section-tabs.js'
import type { Translate } from '../i18n.js'

const TABS = [
  { href: '/console/rewards', key: 'rewards.tab.rules' },
  { href: '/console/rewards/catalog', key: 'rewards.tab.catalog' },
  { href: '/console/rewards/redemptions', key: 'rewards.tab.redemptions' },
  { href: '/console/rewards/transfers', key: 'rewards.tab.transfers' },
  { href: '/console/rewards/badges', key: 'rewards.tab.badges' },
] as const

/** A section page's href. */
export type RewardsHref = (typeof TABS)[number]['href']

/** Rows per page of the redemption and transfer lists. */
export const PAGE = 50

/** The section's pages, the current one marked. */
export function RewardsTabs(p: { t: Translate; current: RewardsHref }) {
  return <SectionTabs t={p.t} label="rewards.tabs" tabs={TABS} current={p.current} />
}

/** A whole number as typed: empty is absent, anything else not digits is NaN (refused). */
export function wholeNumber(s: string): number | undefined {
  if (s === '') return undefined
  return /^-?\d{1,12}$/.test(s) ? Number(s) : Number.NaN
}

/** A nullable number as a form shows it ('' for null). */
export const shown = (n: number | null) => (n === null ? '' : String(n))

/** A submitted form's text fields `keys`, trimmed ('' when absent), and its `enabled` checkbox. */
export function readFields<K extends string>(body: Record<string, unknown>, keys: readonly K[]) {
  const out = {} as Record<K, string>
  for (const k of keys) out[k] = typeof body[k] === 'string' ? (body[k] as string).trim() : ''
  return { ...out, enabled: body.enabled !== undefined }
}
