/**
 * The 社群 section's own links (群与进群二维码 · 管理员 · 审计日志), shown at the top of each of its
 * pages, and the pager its lists share.
 */

import { SectionTabs } from '../components/section-tabs.js'
import type { ConsoleContext } from '../context.js'
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

/** The current URL (path and query) with `changes` applied; an undefined value drops the key. */
export function hrefWith(c: ConsoleContext, changes: Record<string, string | undefined>): string {
  const url = new URL(c.req.url)
  for (const [k, v] of Object.entries(changes))
    if (v === undefined) url.searchParams.delete(k)
    else url.searchParams.set(k, v)
  const query = url.searchParams.toString()
  return `${url.pathname}${query ? `?${query}` : ''}`
}

/** A list's `?<param>=` offset (0 when absent or not a whole number). */
export function offsetOf(c: ConsoleContext, param: string): number {
  const raw = c.req.query(param) ?? ''
  return /^\d{1,7}$/.test(raw) ? Number(raw) : 0
}

/** Newer/older links of an offset-paged list of `size` rows a page. */
export function OffsetPager(p: {
  c: ConsoleContext
  param: string
  offset: number
  size: number
  more: boolean
  label: string
}) {
  const { t } = p.c.var
  if (p.offset === 0 && !p.more) return null
  const at = (n: number) => hrefWith(p.c, { [p.param]: n > 0 ? String(n) : undefined })
  return (
    <nav class="actions" aria-label={p.label}>
      {p.offset > 0 && <a href={at(Math.max(0, p.offset - p.size))}>{t('community.newer')}</a>}
      {p.more && <a href={at(p.offset + p.size)}>{t('community.older')}</a>}
    </nav>
  )
}
