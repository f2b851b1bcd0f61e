/**
 * The 社群 section's own links (群与进群二维码 · 管理员 · 审计日志), shown at the top of each of its
 * pages.
 */

import { SectionTabs } from '../components/section-tabs.js'
import type { Translate } from '../i18n.js'

const TABS = [
  { href: '/console/community', key: 'community.groupsTab' },
  { href: '/console/community/moderators', key: 'community.moderatorsTab' },
  { href: '/console/community/audit', key: 'community.auditTab' },
] as const

/** The section's pages, the current one marked. */
export function CommunityTabs(p: { t: Translate; current: (typeof TABS)[number]['href'] }) {
  return <SectionTabs t={p.t} label="community.tabs" tabs={TABS} current={p.current} />
}
