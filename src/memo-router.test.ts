/**
 * The remembered router answers what Hono's default router answers, for any path, however often
 * and in whatever order it is asked; it keeps a bounded number of matches.
 */
import fc from 'fast-check'
import { Hono } from 'hono'
import type { Router } from 'hono/router'
import { RegExpRouter } from 'hono/router/reg-exp-router'
import { SmartRouter } from 'hono/router/smart-router'
import { TrieRouter } from 'hono/router/trie-router'
import { describe, expect, it } from 'vitest'
import { MEMO_PATH_MAX, MEMO_ROUTES, MemoRouter } from './memo-router.js'

/** Routes shaped like the app's: middleware on `*`, literals beside parameters, regex parameters. */
const ROUTES: [string, string][] = [
  ['ALL', '*'],
  ['ALL', '/console/*'],
  ['GET', '/wechat/:appid?'],
  ['POST', '/wechat/:appid?'],
  ['POST', '/admin/api/accounts/:appid/campaigns/strategies'],
  ['POST', '/admin/api/accounts/:appid/campaigns/:id/:action{schedule|pause|resume|finish}'],
  ['GET', '/admin/api/accounts/:appid/campaigns/:id/report'],
  ['PATCH', '/admin/api/accounts/:appid/campaigns/:id'],
  ['GET', '/console/campaigns/new'],
  ['GET', '/console/campaigns/:id{[0-9]+}'],
  ['GET', '/console/campaigns/:id{[0-9]+}/edit'],
  ['GET', '/r/:code'],
  ['GET', '/healthz'],
]
const defaultRouter = () =>
  new SmartRouter<string>({ routers: [new RegExpRouter(), new TrieRouter()] })
const withRoutes = <R extends Router<string>>(router: R): R => {
  for (const [method, path] of ROUTES) router.add(method, path, `${method} ${path}`)
  return router
}
/** A match as Hono reads it: the handlers in order, each with its parameters' values. */
function read(router: Router<string>, method: string, path: string) {
  const [handlers, stash] = router.match(method, path)
  return handlers.map(([handler, params]) => [
    handler,
    Object.fromEntries(Object.entries(params).map(([k, v]) => [k, stash ? stash[v as number] : v])),
  ])
}

const segment = fc.oneof(
  fc.constantFrom('wechat', 'admin', 'api', 'accounts', 'wx1', 'campaigns', 'strategies'),
  fc.constantFrom('7', '42', 'report', 'pause', 'finish', 'new', 'edit', 'console', 'r', 'x%20y'),
  fc.stringMatching(/^[a-z0-9%]{1,6}$/),
)
const pathArb = fc.array(segment, { maxLength: 7 }).map((s) => `/${s.join('/')}`)
const METHODS = ['GET', 'POST', 'PATCH', 'HEAD']
const methodArb = fc.constantFrom(...METHODS)

describe('MemoRouter', () => {
  it('matches as the default router does, asked once or again, in any order', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(methodArb, pathArb), { maxLength: 40 }), (asks) => {
        const memo = withRoutes(new MemoRouter<string>())
        const plain = withRoutes(defaultRouter())
        // each asked again, and with every other method: the second answer comes from the memo
        const again = asks.flatMap(([, path]) => METHODS.map((m) => [m, path] as const))
        for (const [method, path] of [...asks, ...again])
          expect(read(memo, method, path)).toEqual(read(plain, method, path))
      }),
    )
  })

  it('keeps at most MEMO_ROUTES matches and none for a long path', () => {
    const memo = withRoutes(new MemoRouter<string>())
    for (let i = 0; i < MEMO_ROUTES; i++) memo.match('GET', `/r/${i}`)
    expect(memo.size).toBe(MEMO_ROUTES)
    // full: dropped, and the new one kept
    expect(read(memo, 'GET', '/r/next')).toEqual([
      ['ALL *', {}],
      ['GET /r/:code', { code: 'next' }],
    ])
    expect(memo.size).toBe(1)
    const long = `/r/${'x'.repeat(MEMO_PATH_MAX)}`
    expect(read(memo, 'GET', long)[1]).toEqual(['GET /r/:code', { code: long.slice(3) }])
    expect(memo.size).toBe(1)
  })

  it('forgets what it matched when a route is added', () => {
    const memo = new MemoRouter<string>(new TrieRouter())
    memo.add('GET', '/r/:code', 'code')
    expect(read(memo, 'GET', '/r/new')).toEqual([['code', { code: 'new' }]])
    memo.add('GET', '/r/new', 'new')
    expect(read(memo, 'GET', '/r/new')).toEqual([
      ['code', { code: 'new' }],
      ['new', {}],
    ])
    expect(memo.name).toBe('MemoRouter(TrieRouter)')
  })

  it('serves the app: two accounts at /wechat/:appid get their own parameter, again and again', async () => {
    const app = new Hono({ router: new MemoRouter() })
    app.use('*', async (c, next) => {
      await next()
      c.header('x-seen', '1')
    })
    app.get('/wechat/:appid?', (c) => c.text(c.req.param('appid') ?? 'default'))
    app.get('/console/campaigns/new', (c) => c.text('new'))
    app.get('/console/campaigns/:id{[0-9]+}', (c) => c.text(`campaign ${c.req.param('id')}`))
    for (let i = 0; i < 3; i++) {
      for (const [path, body] of [
        ['/wechat', 'default'],
        ['/wechat/wx_a', 'wx_a'],
        ['/wechat/wx_b', 'wx_b'],
        ['/console/campaigns/new', 'new'],
        ['/console/campaigns/12', 'campaign 12'],
      ] as const) {
        const res = await app.request(path)
        expect([res.status, await res.text(), res.headers.get('x-seen')]).toEqual([200, body, '1'])
      }
      expect((await app.request('/console/campaigns/x')).status).toBe(404)
    }
  })
})
