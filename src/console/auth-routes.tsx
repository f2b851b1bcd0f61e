/**
 * Signing in and out. The sign-in form carries its own CSRF token (a short-lived cookie it must
 * match, since there is no session yet); attempts are counted per name and client address before
 * the password is checked, and guessing is refused (login-throttle.ts); every sign-in is audited
 * with the operator's name.
 */
import type { Hono } from 'hono'
import { deleteCookie, getCookie } from 'hono/cookie'
import { audit } from '../community/audit-log.js'
import { CsrfField, Field, Notice } from './components/form.js'
import { Document } from './components/layout.js'
import type { ConsoleContext, ConsoleDeps, ConsoleEnv } from './context.js'
import type { MessageKey } from './i18n.js'
import { claimLoginAttempt, clearLoginFailures } from './login-throttle.js'
import { findOperatorForLogin } from './operators.js'
import { hashPassword, verifyPassword } from './password.js'
import { csrfField, SESSION_COOKIE, setConsoleCookie } from './security.js'
import { createSession, revokeSession } from './sessions.js'

const LOGIN_CSRF = 'qz_login'
const randomHex = () =>
  Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) =>
    b.toString(16).padStart(2, '0'),
  ).join('')

// Unknown names still cost one verification, so timing does not tell which names exist.
let decoy: Promise<string> | undefined

function LoginPage(p: { c: ConsoleContext; csrf: string; name?: string; error?: MessageKey }) {
  const { t, lang } = p.c.var
  return (
    <Document lang={lang} title={`${t('login.title')} · ${t('app.title')}`}>
      <main id="main" class="login card">
        <h1>{t('app.title')}</h1>
        <Notice kind="error" text={p.error && t(p.error)} />
        <form method="post" action="/console/login" class="stack">
          <CsrfField token={p.csrf} />
          <Field id="login-name" label={t('login.name')}>
            <input
              id="login-name"
              name="name"
              autocomplete="username"
              required
              maxlength={40}
              value={p.name ?? ''}
            />
          </Field>
          <Field id="login-password" label={t('login.password')}>
            <input
              id="login-password"
              name="password"
              type="password"
              autocomplete="current-password"
              required
              maxlength={200}
            />
          </Field>
          <button type="submit">{t('login.submit')}</button>
        </form>
        <p>
          <a href={`/console/login?lang=${lang === 'en' ? 'zh-CN' : 'en'}`}>{t('lang.other')}</a>
        </p>
      </main>
    </Document>
  )
}

/** GET/POST /login (before the session guard). */
export function mountLogin(app: Hono<ConsoleEnv>, deps: ConsoleDeps): void {
  const form = (
    c: ConsoleContext,
    status: 200 | 401 | 403 | 429,
    error?: MessageKey,
    name?: string,
  ) => {
    const csrf = randomHex()
    setConsoleCookie(c, deps, LOGIN_CSRF, csrf, { path: '/console/login', maxAge: 3600 })
    c.header('cache-control', 'no-store')
    return c.html(<LoginPage c={c} csrf={csrf} name={name} error={error} />, status)
  }

  app.get('/login', (c) => form(c, 200))

  app.post('/login', async (c) => {
    const body = await c.req.parseBody()
    if (!csrfField(getCookie(c, LOGIN_CSRF) ?? '', body._csrf)) return form(c, 403, 'login.expired')
    const name = typeof body.name === 'string' ? body.name.trim().slice(0, 40) : ''
    const password = typeof body.password === 'string' ? body.password : ''
    const now = deps.clock.now()
    const address = c.var.clientAddress ?? 'unknown'
    const limits = deps.loginLimits
    // the slot is taken (and the attempt recorded as a failure) before the password is checked,
    // so simultaneous guesses cannot all pass the count; a success clears it below
    if (!(await claimLoginAttempt(deps.db, { name, address, now, limits })))
      return form(c, 429, 'login.throttled', name)
    const operator = name ? await findOperatorForLogin(deps.db, name) : undefined
    decoy ??= hashPassword(randomHex())
    const ok = await verifyPassword(password, operator?.password_hash ?? (await decoy))
    if (!operator || !ok || operator.disabled) return form(c, 401, 'login.failed', name)
    await clearLoginFailures(deps.db, name)
    const session = await createSession(deps.db, { operatorId: Number(operator.id), now })
    await audit(deps.db, {
      appid: '-',
      actor: operator.name,
      action: 'console.login',
      target: operator.name,
      details: null,
      now,
      clientAddress: address,
    })
    deleteCookie(c, LOGIN_CSRF, { path: '/console/login' })
    setConsoleCookie(c, deps, SESSION_COOKIE, session.token)
    return c.redirect('/console', 303)
  })
}

/** POST /logout (behind the session and CSRF guards). */
export function mountLogout(app: Hono<ConsoleEnv>, deps: ConsoleDeps): void {
  app.post('/logout', async (c) => {
    await revokeSession(deps.db, c.var.session.id, deps.clock.now())
    deleteCookie(c, SESSION_COOKIE, { path: '/console' })
    return c.redirect('/console/login', 303)
  })
}
