/**
 * The page frame: skip link, header (account, language switch, operator, sign-out), the section
 * navigation (a disclosure, closed by console.js on phones), and the page's content.
 */
import type { Child } from 'hono/jsx'
import { assetUrl } from '../assets.js'
import type { Lang, Translate } from '../i18n.js'
import { SECTIONS, type SectionKey, sectionLabel } from '../page.js'
import type { ConsoleSession } from '../sessions.js'
import { CsrfField } from './form.js'

export interface LayoutProps {
  title: string
  section: SectionKey
  t: Translate
  lang: Lang
  session: ConsoleSession
  /** The current path with its query (for the language switch and aria-current). */
  path: string
  /** Each section's link, for sections that have a page. */
  links: Partial<Record<SectionKey, string>>
  /** The account shown and the configured ones (a switcher when there are several). */
  account: { current: string; all: readonly string[] }
  /** Whether the page draws charts (loads ECharts). */
  charts?: boolean
  children?: Child
}

/** The `?lang=` link that flips the language, keeping the rest of the query. */
function langLink(path: string, lang: Lang) {
  const url = new URL(path, 'http://x')
  url.searchParams.set('lang', lang === 'en' ? 'zh-CN' : 'en')
  return `${url.pathname}${url.search}`
}

/** A signed-in page. */
export function Layout(p: LayoutProps) {
  const { t } = p
  const op = p.session.operator
  return (
    <Document lang={p.lang} title={`${p.title} · ${t('app.title')}`} charts={p.charts}>
      <a class="skip" href="#main">
        {t('app.skip')}
      </a>
      <header class="top">
        <span class="brand">{t('app.title')}</span>
        <AccountSwitch {...p} />
        <a href={langLink(p.path, p.lang)} lang={p.lang === 'en' ? 'zh-CN' : 'en'}>
          {t('lang.other')}
        </a>
        <span class="muted">
          {t('session.signedInAs', { name: op.name, role: t(`role.${op.role}`) })}
        </span>
        <form method="post" action="/console/logout">
          <CsrfField token={p.session.csrfToken} />
          <button type="submit" class="secondary">
            {t('session.signOut')}
          </button>
        </form>
      </header>
      <div class="shell">
        <details class="nav" open>
          <summary>{t('nav.menu')}</summary>
          <nav aria-label={t('nav.label')}>
            <ul>
              {SECTIONS.map((s) => (
                <li>
                  <a href={p.links[s]} aria-current={s === p.section ? 'page' : undefined}>
                    {t(sectionLabel(s))}
                  </a>
                </li>
              ))}
            </ul>
          </nav>
        </details>
        <main id="main" tabindex={-1}>
          <h1>{p.title}</h1>
          {p.children}
        </main>
      </div>
    </Document>
  )
}

/**
 * The account shown; with several, a GET form to switch (to the section's first page: a detail
 * page of one account does not exist in another). The choice is remembered (`consoleAccount`).
 */
function AccountSwitch(p: LayoutProps) {
  const { t, account } = p
  if (account.all.length < 2) return <span class="muted">{account.current}</span>
  return (
    <form method="get" action={p.links[p.section] ?? '/console'} class="account-switch">
      <label for="account-switch">{t('account.label')}</label>
      <select id="account-switch" name="appid">
        {account.all.map((appid) => (
          <option value={appid} selected={appid === account.current}>
            {appid}
          </option>
        ))}
      </select>
      <button type="submit" class="secondary">
        {t('account.switch')}
      </button>
    </form>
  )
}

/**
 * The tab's icon, a brand-green ring (圈), inline: the browser then asks for no /favicon.ico (a 404
 * in its console), and the CSP's `img-src data:` allows it.
 */
const ICON =
  "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E%3Ccircle cx='8' cy='8' r='5.5' fill='none' stroke='%2307c160' stroke-width='3'/%3E%3C/svg%3E"

/** The HTML document around any console page (also the sign-in and error pages). */
export function Document(p: { lang: Lang; title: string; charts?: boolean; children?: Child }) {
  return (
    <html lang={p.lang}>
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="same-origin" />
        <title>{p.title}</title>
        <link rel="icon" href={ICON} />
        <link rel="stylesheet" href={assetUrl('console', 'css')} />
        {p.charts && <script src={assetUrl('echarts', 'js')} defer />}
        <script src={assetUrl('console', 'js')} defer />
      </head>
      <body>{p.children}</body>
    </html>
  )
}
