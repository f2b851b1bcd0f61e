/** A section's own links (e.g. 系统: 运行状态 · 运营账号), shown at the top of each of its pages. */
import type { MessageKey, Translate } from '../i18n.js'

/** The section's pages as links, the current one marked (`aria-current="page"`). */
export function SectionTabs(p: {
  t: Translate
  /** What the navigation is called (its `aria-label`). */
  label: MessageKey
  tabs: readonly { href: string; key: MessageKey }[]
  current: string
}) {
  return (
    <nav aria-label={p.t(p.label)}>
      <p>
        {p.tabs.map((tab, i) => (
          <>
            {i > 0 && ' · '}
            <a href={tab.href} aria-current={tab.href === p.current ? 'page' : undefined}>
              {p.t(tab.key)}
            </a>
          </>
        ))}
      </p>
    </nav>
  )
}
