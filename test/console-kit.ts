/** Helpers for the console's tests: operators of each role, signing in through HTTP, a clock. */
import type { Hono } from 'hono'
import type { Kysely } from 'kysely'
import { addDays } from '../src/community/community-time.js'
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

/**
 * A small community's rollups: 60 built days of the overview's metrics (growing followers, a
 * weekly rhythm of activity, some points and sales), day cohorts with retention cells, and one
 * open alert — written as the nightly rollup writes them.
 */
export async function seedAnalytics(db: Kysely<Database>, appid: string, today: string) {
  const rows: { appid: string; metric: string; day: string; value: number }[] = []
  let total = 800
  for (let i = 60; i >= 1; i--) {
    const day = addDays(today, -i)
    const wave = 1 + 0.3 * Math.sin(i / 1.1)
    const added = Math.round(30 * wave + (60 - i))
    const lost = Math.round(added * 0.2)
    total += added - lost
    const dau = Math.round(total * 0.18 * wave)
    for (const [metric, value] of Object.entries({
      'followers.new': added,
      'followers.unfollowed': lost,
      'followers.net': added - lost,
      'followers.total': total,
      'activity.dau': dau,
      'checkins.participants': Math.round(dau * 0.6),
      'points.issued': dau * 12,
      'points.spent': Math.round(dau * 7 * wave),
      'commerce.orders': Math.round(dau / 20),
      'commerce.gmv_fen': Math.round(dau / 20) * 4990,
    }))
      rows.push({ appid, metric, day, value })
  }
  await db.insertInto('analytics_daily').values(rows).execute()
  const cells: {
    appid: string
    grain: 'day'
    source: ''
    cohort_start: string
    age: number
    cohort_size: number
    retained: number
  }[] = []
  for (let i = 45; i >= 1; i--) {
    const start = addDays(today, -i)
    for (let age = 0; age <= Math.min(30, i - 1); age++) {
      const share = age === 0 ? 1 : 0.06 + 0.3 * Math.exp(-0.25 * age)
      cells.push({
        appid,
        grain: 'day',
        source: '',
        cohort_start: start,
        age,
        cohort_size: 50,
        retained: Math.round(50 * share),
      })
    }
  }
  await db.insertInto('cohort_retention').values(cells).execute()
  await db
    .insertInto('cohort_days')
    .values(
      Array.from({ length: 45 }, (_, i) => ({
        appid,
        day: addDays(today, -1 - i),
        cells_built_at: new Date(),
      })),
    )
    .execute()
  await db
    .insertInto('alerts')
    .values({
      appid,
      rule: 'dau_drop',
      dim: '',
      status: 'open',
      opened_at: new Date(),
      value: 0.5,
      threshold: 0.7,
      message: '日活较过去 4 周同日均值下降 50%',
      evaluated_at: new Date(),
    })
    .execute()
}
