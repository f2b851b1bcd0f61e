/**
 * The console keeps the account an operator is looking at. With two accounts, every link and form
 * on every page reached from the second account's overview carries `?appid=` (a link without it
 * lands on the first account: an operator editing a campaign of account B would be shown A's
 * list). The pages are found by following links, so a new page is covered without naming it.
 */
import type { Hono } from 'hono'
import { beforeAll, expect, it } from 'vitest'
import { createRouter } from '../../handlers/index.js'
import {
  cookiesOf,
  manualClock,
  seedAnalytics,
  seedInvitesAndSegments,
  seedOperators,
  signIn,
} from '../../test/console-kit.js'
import { forEachDatabase } from '../../test/databases.js'
import { seedMemberFamily } from '../../test/member-fixtures.js'
import { PLAIN_ACCOUNT, SAFE_ACCOUNT, testConfig } from '../../test/server.js'
import { createApp } from '../app.js'
import { localDay } from '../community/community-time.js'
import { silentLogger } from '../logger.js'

const TOKEN = 'account-links-token'
const appid = PLAIN_ACCOUNT.appid

/** Every `href`/`action` of a page, HTML entities of URLs undone. */
function targets(html: string): { kind: 'href' | 'action'; url: string }[] {
  return [...html.matchAll(/\s(href|action)="([^"]*)"/g)].map((m) => ({
    kind: m[1] as 'href' | 'action',
    url: m[2]!.replaceAll('&amp;', '&'),
  }))
}

forEachDatabase('console: the account travels with every link', (get) => {
  const clock = manualClock(new Date('2026-11-20T02:00:00Z'))
  let app: Hono
  let cookie = ''

  beforeAll(async () => {
    const db = get().db
    const today = localDay(clock.now(), 'Asia/Shanghai')
    await seedOperators(db, clock.now())
    await seedAnalytics(db, appid, today)
    await seedInvitesAndSegments(db, appid, today)
    await seedMemberFamily(db, appid, 'links', clock.now())
    app = createApp({
      config: testConfig({ ADMIN_TOKEN: TOKEN }),
      db,
      router: createRouter(),
      logger: silentLogger,
      clock,
      clientAddress: () => '203.0.113.9',
    })
    const admin = (path: string, body: unknown) =>
      app.request(`/admin/api/accounts/${appid}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      })
    const campaign = await admin('/campaigns', {
      name: '回归礼',
      audience: { segment: 'at_risk' },
      template: { template_id: 'TPL_RECALL', data: { thing1: { value: '回归礼' } } },
      schedule: { cron: '0 10 * * *' },
    })
    expect(campaign.status).toBe(201)
    const activity = await admin('/activities', {
      key: 'salon',
      name: '线下沙龙',
      description: '周六下午',
      cron: '0 10 * * 6',
      cadence: 'weekly',
      points: 20,
      capacity: 10,
    })
    expect(activity.status).toBe(201)
    ;({ cookie } = await signIn(app, 'owner1'))
  })

  it('every page reached from the second account shows it, and every form posts it back', async () => {
    const jar: Record<string, string> = { qz_session: cookie.split('=')[1]! }
    const queue = [`/console?appid=${appid}`]
    const seen = new Set(['/console'])
    const wrong: string[] = []
    let pages = 0
    while (queue.length > 0 && pages < 120) {
      const path = queue.shift()!
      const cookieHeader = Object.entries(jar)
        .map(([k, v]) => `${k}=${v}`)
        .join('; ')
      const res = await app.request(path, { headers: { cookie: cookieHeader } })
      // No shop is configured here: its pages say so (商城订单 has its own suite).
      if (path.startsWith('/console/shop') && res.status === 404) continue
      expect(res.status, path).toBe(200)
      Object.assign(jar, cookiesOf(res))
      if (!res.headers.get('content-type')?.startsWith('text/html')) continue
      pages++
      const html = await res.text()
      if (!html.includes(`<option value="${appid}" selected="">`))
        wrong.push(`${path}: shown as another account`)
      for (const form of html.matchAll(/<form method="post"[^>]*>([\s\S]*?)<\/form>/g))
        if (!form[1]!.includes(`name="appid" value="${appid}"`))
          wrong.push(`${path}: ${form[0].slice(0, 80)}`)
      for (const { kind, url } of targets(html)) {
        if (kind !== 'href' || !url.startsWith('/console') || url.startsWith('/console/assets/'))
          continue
        // Follow each page once, whatever its list filters, in this browser's account.
        const to = new URL(url, 'http://x')
        if (to.searchParams.has('appid') && to.searchParams.get('appid') !== appid) continue
        if (to.pathname.endsWith('.csv') || seen.has(to.pathname)) continue
        seen.add(to.pathname)
        queue.push(to.pathname)
      }
    }
    // The walk reached the sections and their detail pages, not just the overview.
    expect(pages).toBeGreaterThan(25)
    expect(wrong).toEqual([])
    // Reached through links without `?appid=`, the list is the second account's.
    const list = await app.request('/console/campaigns', {
      headers: { cookie: `${cookie}; qz_account=${jar.qz_account}` },
    })
    expect(await list.text()).toContain('回归礼')
  })

  it('a form acts on the account it was shown for, whatever the browser switched to since', async () => {
    const openid = 'olinks_me_0123456789abcdef'
    const page = await app.request(`/console/members/${openid}?appid=${appid}`, {
      headers: { cookie },
    })
    const html = await page.text()
    const form = /<form method="post" action="([^"]*opt-out[^"]*)"[^>]*>([\s\S]*?)<\/form>/.exec(
      html,
    )!
    const fields = Object.fromEntries(
      [...form[2]!.matchAll(/name="([^"]+)" value="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]),
    )
    expect(fields.appid).toBe(appid)
    // Another tab has switched this browser to the first account since.
    // (Its action without a query: the posted field alone names the account.)
    const res = await app.request(new URL(form[1]!, 'http://x').pathname, {
      method: 'POST',
      headers: {
        cookie: `${cookie}; qz_account=${SAFE_ACCOUNT.appid}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ ...fields, optOut: '1' }).toString(),
    })
    expect(res.status).toBe(303)
    const member = await get()
      .db.selectFrom('members')
      .select('marketing_opt_out')
      .where('appid', '=', appid)
      .where('openid', '=', openid)
      .executeTakeFirstOrThrow()
    expect(member.marketing_opt_out).toBe(true)
  })
})
