/**
 * `consoleRoutes(deps)`: the operators' web console, mounted at `/console` by app.ts. Order:
 * hashed assets (public, immutable) → headers and language → input the database cannot store
 * (400) → sign-in → session guard → CSRF and viewer guard on every POST → sign-out and the pages
 * listed in pages/index.ts. Refusals render as a page in the operator's language.
 */
import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import { bodySize } from '../middleware/body-size.js'
import { findAsset, IMMUTABLE, preferredCoding } from './assets.js'
import { mountLogin, mountLogout } from './auth-routes.js'
import { Document } from './components/layout.js'
import { type ConsoleDeps, type ConsoleEnv, ConsoleRefusal } from './context.js'
import { consoleTranslator } from './i18n.js'
import type { SectionKey } from './page.js'
import { consolePages } from './pages/index.js'
import {
  consoleAccount,
  consoleActions,
  consoleHeaders,
  consoleInput,
  consoleLanguage,
  consoleSession,
} from './security.js'

/** The href of a page path under /console. */
export const consoleHref = (path: string) => (path === '/' ? '/console' : `/console${path}`)

/**
 * The largest body the console reads (413 beyond it, before the session and CSRF checks and before
 * `consoleInput` reads the body whole). The largest legitimate form is an award or tag form naming
 * the most members it takes (1000 ticked plus 1000 typed openids): about 70 KB url-encoded, 145 KB
 * as multipart; the console has no file uploads.
 */
export const CONSOLE_MAX_BODY_BYTES = 256 * 1024

/** The console app, to mount at `/console`. */
export function consoleRoutes(deps: ConsoleDeps): Hono<ConsoleEnv> {
  const app = new Hono<ConsoleEnv>()
  const links: Partial<Record<SectionKey, string>> = {}
  for (const page of consolePages) links[page.section] ??= consoleHref(page.path)

  app.get('/assets/:file', (c) => {
    const asset = findAsset(c.req.param('file'))
    if (!asset) return c.text('no such asset', 404)
    const headers = {
      'content-type': asset.contentType,
      'cache-control': IMMUTABLE,
      'x-content-type-options': 'nosniff',
      vary: 'accept-encoding',
    }
    const coding = preferredCoding(c.req.header('accept-encoding'))
    if (!coding) return c.body(asset.body, 200, headers)
    // Already compressed: Workers must send the bytes as they are (`encodeBody`; Node ignores it).
    const init = { status: 200, headers: { ...headers, 'content-encoding': coding } }
    return new Response(asset.encoded(coding), Object.assign(init, { encodeBody: 'manual' }))
  })

  app.use('*', consoleHeaders)
  app.use('*', consoleLanguage(deps))
  app.onError((error, c) => {
    const t = c.var.t ?? consoleTranslator(deps.locale)
    let status = 500
    let text = t('error.internal')
    if (error instanceof ConsoleRefusal) {
      status = error.status
      text = t(error.key, error.params)
    } else if (error instanceof HTTPException) {
      status = error.status
      text =
        status === 404
          ? t('error.notFound')
          : status === 413
            ? t('error.tooLarge')
            : t('error.input', { reason: error.message })
    } else deps.logger.error('console request failed', { path: c.req.path, error })
    if (status < 500) deps.logger.warn('console refused', { path: c.req.path, status, key: text })
    c.header('cache-control', 'no-store')
    return c.html(
      <Document lang={c.var.lang ?? deps.locale} title={t('error.title')}>
        <main id="main" class="login card">
          <h1>{t('error.title')}</h1>
          <p role="alert">{text}</p>
          <p>
            <a href="/console">{t('error.back')}</a>
          </p>
        </main>
      </Document>,
      status as 403,
    )
  })

  app.use('*', bodySize({ maxBytes: CONSOLE_MAX_BODY_BYTES }))
  app.use('*', consoleInput)
  mountLogin(app, deps)
  app.use('*', consoleSession(deps))
  app.use('*', consoleActions)
  app.use('*', consoleAccount(deps))
  app.use('*', async function navigation(c, next) {
    c.set('links', links)
    await next()
  })
  mountLogout(app, deps)
  for (const page of consolePages) page.mount(app, deps)
  app.all('*', () => {
    throw new ConsoleRefusal(404, 'error.notFound')
  })
  return app
}
