/** Helpers for the console's tests: operators of each role, signing in through HTTP, a clock. */

import type { Hono } from 'hono'
import type { Kysely } from 'kysely'
import { createRouter } from '../handlers/index.js'
import { createApp } from '../src/app.js'
import { translator } from '../src/bot/i18n.js'
import { dispatchCampaigns } from '../src/community/campaigns.js'
import { addDays, weekStart } from '../src/community/community-time.js'
import { addOperator, type Role } from '../src/console/operators.js'
import type { Database, Segment } from '../src/db/schema.js'
import { silentLogger } from '../src/logger.js'
import type { Stopping } from '../src/stopping.js'
import { placeInSegment } from './segment-fixtures.js'
import { testConfig } from './server.js'

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
  // The 60 days as the nightly job leaves them: built (the series read them from the rollup).
  await db
    .insertInto('analytics_days')
    .values(
      Array.from({ length: 60 }, (_, i) => ({
        appid,
        day: addDays(today, -1 - i),
        built_at: new Date(),
      })),
    )
    .execute()
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

/**
 * Invites and segments on top of `seedAnalytics`: 11 members in segments with an invite chain
 * six levels deep (m0 → m1 → … → m6, and m0 → m7, m8; m9 → m10), invite shares, 60 days of the
 * `invites.*` rollups, yesterday's segment moves (with a move and its reverse), invite-source
 * retention cells (days and weeks) and LTV cells. Returns the members' openids (`m0` … `m10` with a prefix).
 */
export async function seedInvitesAndSegments(db: Kysely<Database>, appid: string, today: string) {
  const segments = ['loyal', 'active', 'active', 'new', 'new', 'new', 'active', 'loyal']
  const openids = Array.from({ length: 11 }, (_, i) => `o_seed_m${i}`)
  const members = await db
    .insertInto('members')
    .values(
      openids.map((openid, i) => ({
        appid,
        openid,
        first_seen_at: new Date(Date.parse(`${addDays(today, -25 + i)}T04:00:00Z`)),
        subscribed: true,
        last_active_at: new Date(Date.parse(`${addDays(today, -3)}T04:00:00Z`)),
        display_name: i === 0 ? '老张' : null,
      })),
    )
    .returning(['id', 'openid'])
    .execute()
  const id = (i: number) => members.find((m) => m.openid === openids[i])!.id
  for (const [i] of openids.entries())
    await placeInSegment(
      db,
      appid,
      [id(i)],
      (segments[i] ?? (i === 8 ? 'at_risk' : 'dormant')) as Segment,
    )
  const pairs: [number, number, boolean][] = [
    [0, 1, true],
    [1, 2, true],
    [2, 3, false],
    [3, 4, false],
    [4, 5, false],
    [5, 6, false],
    [0, 7, true],
    [0, 8, false],
    [9, 10, true],
  ]
  await db
    .insertInto('invites')
    .values(
      pairs.map(([from, to, qualified], n) => {
        const at = new Date(Date.parse(`${addDays(today, -20 + n)}T04:00:00Z`))
        return {
          appid,
          invitee_key: `${appid}:${openids[to]}`,
          invitee_member_id: id(to),
          inviter_member_id: id(from),
          source: 'oa_qr' as const,
          status: qualified ? ('qualified' as const) : ('pending' as const),
          created_at: at,
          qualified_at: qualified ? at : null,
        }
      }),
    )
    .execute()
  await db
    .insertInto('invite_shares')
    .values([0, 1, 9].map((i) => ({ appid, member_id: id(i), day: addDays(today, -10 - i) })))
    .execute()
  const rows: { appid: string; metric: string; day: string; dim: string; value: number }[] = []
  for (let i = 60; i >= 1; i--) {
    const day = addDays(today, -i)
    const attributed = 4 + (i % 3)
    const qualified = 1 + (i % 2)
    const figures: Record<string, number> = {
      'invites.qr_issued': 10 + (i % 5),
      'invites.follows': 6 + (i % 4),
      'invites.attributed': attributed,
      'invites.qualified': qualified,
      'invites.sharers': 5,
      'invites.share_rate': 0.05,
      'invites.per_sharer': attributed / 5,
      'invites.conversion': qualified / attributed,
      'invites.k_factor': (attributed / 5) * (qualified / attributed) * 0.05,
    }
    for (const [metric, value] of Object.entries(figures))
      rows.push({ appid, metric, day, dim: '', value })
  }
  const moves = { 'none>new': 5, 'new>active': 3, 'active>at_risk': 2, 'at_risk>active': 1 }
  for (const [dim, value] of Object.entries(moves))
    rows.push({ appid, metric: 'segments.flow', day: addDays(today, -1), dim, value })
  await db.insertInto('analytics_daily').values(rows).execute()
  const cells = []
  const ltv = []
  for (let i = 45; i >= 1; i--) {
    const start = addDays(today, -i)
    for (let age = 0; age <= Math.min(30, i - 1); age++) {
      const retained = age === 0 ? 20 : Math.round(20 * (0.1 + 0.3 * Math.exp(-0.2 * age)))
      const key = { appid, grain: 'day' as const, cohort_start: start, age }
      cells.push({ ...key, source: 'invite' as const, cohort_size: 20, retained })
      ltv.push({
        ...key,
        source: '' as const,
        cohort_size: 50,
        revenue_fen: 50 * 120 * age + (i % 7) * 100,
        payers: Math.min(50, 2 * age),
      })
    }
  }
  const weeks = []
  for (let k = 2; k <= 11; k++) {
    const start = weekStart(addDays(today, -7 * k))
    for (let age = 0; age <= k - 2; age++)
      for (const source of ['', 'invite'] as const)
        weeks.push({
          appid,
          grain: 'week' as const,
          source,
          cohort_start: start,
          age,
          cohort_size: source ? 140 : 350,
          retained: Math.round((source ? 140 : 350) * (age === 0 ? 0.9 : 0.12 + 0.3 / (age + 1))),
        })
  }
  await db
    .insertInto('cohort_retention')
    .values([...cells, ...weeks])
    .execute()
  await db.insertInto('cohort_ltv').values(ltv).execute()
  return openids
}

/** Every ECharts option a console page embeds, by chart id, in page order. */
// biome-ignore lint/suspicious/noExplicitAny: a test reads whatever the option holds
export function chartsOf(html: string): [string, Record<string, any>][] {
  const found = html.matchAll(
    /<script type="application\/json" id="(chart-[^"]+)">(.*?)<\/script>/gs,
  )
  return [...found].map((m) => [m[1]!, JSON.parse(m[2]!)])
}

/** The ECharts option a console page embeds for chart `id`. */
// biome-ignore lint/suspicious/noExplicitAny: a test reads whatever the option holds
export function chartOf(html: string, id: string): Record<string, any> {
  const found = chartsOf(html).find(([chart]) => chart === id)
  if (!found) throw new Error(`no chart ${id}`)
  return found[1]
}

/**
 * The app on `db` at `clock`'s time (the test accounts, a fixed client address); `background`: the
 * database for work after a response, `stopping` its stop (AppDeps).
 */
export function consoleTestApp(
  db: Kysely<Database>,
  clock: { now(): Date },
  background?: Kysely<Database>,
  stopping?: Stopping,
): Hono {
  return createApp({
    config: testConfig(),
    db,
    background,
    stopping,
    router: createRouter(),
    logger: silentLogger,
    clock,
    clientAddress: () => '203.0.113.9',
  })
}

/** Runs the campaigns due at `slot` as the dispatch job would at `now`: no cap, no quiet hours. */
export function dispatchDue(db: Kysely<Database>, now: Date, slot: Date = now) {
  return dispatchCampaigns(db, {
    now,
    slot,
    settings: {
      timeZone: 'Asia/Shanghai',
      capHours: 0,
      capSlackMinutes: 0,
      quietHours: null,
      publicBaseUrl: 'https://quanzi.example',
    },
    t: translator('zh-CN'),
  })
}
