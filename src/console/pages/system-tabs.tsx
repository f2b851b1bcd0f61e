/** The 系统 section's own links (运行状态 · 运营账号), shown at the top of each of its pages. */
import { SectionTabs } from '../components/section-tabs.js'
import type { Translate } from '../i18n.js'

const TABS = [
  { href: '/console/system', key: 'system.status' },
  { href: '/console/system/operators', key: 'system.operators' },
] as const

/** The section's pages, the current one marked. */
export function SystemTabs(p: { t: Translate; current: (typeof TABS)[number]['href'] }) {
  return (
    <nav aria-label={p.t('system.tabs')}>
      <SectionTabs t={p.t} tabs={TABS} current={p.current} />
    </nav>
  )
}

/** A duration in seconds as the largest whole unit: `45 秒`, `12 分钟`, `3 小时`, `2 天`. */
export function duration(t: Translate, seconds: number): string {
  if (seconds < 120) return t('system.seconds', { n: seconds })
  if (seconds < 7200) return t('system.minutes', { n: Math.floor(seconds / 60) })
  if (seconds < 172_800) return t('system.hours', { n: Math.floor(seconds / 3600) })
  return t('system.days', { n: Math.floor(seconds / 86_400) })
}
