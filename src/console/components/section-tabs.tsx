/** A section's own links (e.g. 运行状态 · 运营账号), shown at the top of each of its pages. */
import type { MessageKey, Translate } from '../i18n.js'

/** The section's pages as links, the current one marked (put it in a labelled `<nav>`). */
export function SectionTabs(p: {
  t: Translate
  tabs: readonly { href: string; key: MessageKey }[]
  current: string
}) {
  return (
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
  )
}
