/** Helpers for the console's tests: operators of each role, signing in through HTTP, a clock. */
import type { Hono } from 'hono'
import type { Kysely } from 'kysely'
import { addOperator, type Role } from '../src/console/operators.js'
import type { Database } from '../src/db/schema.js'

/** The seeded operators; each one's password is `<name>-password`. */
export const OPERATORS: { name: string; role: Role }[] = [
  { name: 'owner1', role: 'owner' },
  { name: 'op1', role: 'operator' },
  { name: 'viewer1', role: 'viewer' },
]
export const passwordOf = (name: string) => `${name}-password`

/** Adds the seeded operators (idempotent per database: a taken name is skipped). */
export async function seedOperators(db: Kysely<Database>, now: Date): Promise<void> {
  for (const o of OPERATORS)
    await addOperator(db, { ...o, password: passwordOf(o.name), now }).catch((e: Error) => {
      if (e.message !== 'name-taken') throw e
    })
}

/** A clock tests move by hand. */
export function manualClock(start: Date) {
  let now = start.getTime()
  return { now: () => new Date(now), advance: (ms: number) => (now += ms) }
}

/** The cookies a response sets, as `name=value` pairs for a Cookie header. */
export function cookiesOf(res: Response): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of res.headers.getSetCookie()) {
    const [pair] = line.split(';')
    const i = pair!.indexOf('=')
    out[pair!.slice(0, i)] = pair!.slice(i + 1)
  }
  return out
}

/** The `_csrf` value of the first form in a page. */
export const csrfOf = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? ''

/** Posts the sign-in form (after loading it for its CSRF cookie); returns the response. */
export async function postLogin(
  app: Hono,
  name: string,
  password: string,
  headers: Record<string, string> = {},
): Promise<Response> {
  const form = await app.request('/console/login', { headers })
  const csrf = csrfOf(await form.text())
  const cookie = `qz_login=${cookiesOf(form).qz_login}`
  return app.request('/console/login', {
    method: 'POST',
    headers: { ...headers, cookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ _csrf: csrf, name, password }).toString(),
  })
}

/** Signs in; returns the session cookie header and the session's CSRF token. */
export async function signIn(app: Hono, name: string, password = passwordOf(name)) {
  const res = await postLogin(app, name, password)
  if (res.status !== 303) throw new Error(`sign-in as ${name} answered ${res.status}`)
  const cookie = `qz_session=${cookiesOf(res).qz_session}`
  const page = await app.request('/console/system/operators', { headers: { cookie } })
  return { cookie, csrf: csrfOf(await page.text()) }
}

/** Posts a console form with a session. */
export async function postForm(
  app: Hono,
  path: string,
  cookie: string,
  fields: Record<string, string>,
): Promise<Response> {
  return app.request(path, {
    method: 'POST',
    headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  })
}
