/** A section's own links (e.g. 系统: 运行状态 · 运营账号), shown at the top of each of its pages. */

/** The links, the current one marked `aria-current="page"`. */
export function SectionTabs(p: {
  label: string
  tabs: readonly { href: string; label: string }[]
  current: string
}) {
  return (
    <nav aria-label={p.label}>
      <p>
        {p.tabs.map((tab, i) => (
          <>
            {i > 0 && ' · '}
            <a href={tab.href} aria-current={tab.href === p.current ? 'page' : undefined}>
              {tab.label}
            </a>
          </>
        ))}
      </p>
    </nav>
  )
}
