/**
 * The access log and the request metrics label a request with the route pattern of what it asked
 * for: the handler that answered, or — when a middleware answered for it (a redirect to sign in,
 * a refusal) — the route that middleware guarded; never a sub-app's catch-all (`/console/*`), and
 * `unmatched` when nothing but middleware matched.
 */
import { Hono } from 'hono'
import { expect, it } from 'vitest'
import { createRouter } from '../../handlers/index.js'
import { testConfig } from '../../test/server.js'
import { createApp } from '../app.js'
import { silentLogger } from '../logger.js'
import { type Metrics, noopMetrics } from '../metrics.js'
import { accessLog } from './access-log.js'

/** A metrics stub that keeps each request's route and status. */
function counted() {
  const seen: string[] = []
  const metrics: Metrics = Object.assign({}, noopMetrics, {
    request: (o: { route: string; status: number }) => seen.push(`${o.route} ${o.status}`),
  })
  return { seen, metrics }
}

it('labels a request with the page asked for, not a sub-app catch-all', async () => {
  const { seen, metrics } = counted()
  const inner = new Hono()
  inner.use('*', async (_c, next) => next())
  inner.get('/open/:id', (c) => c.text('page'))
  // a guard registered after the open pages, before the guarded ones, that answers for them
  inner.use('*', async (c, next) => (c.req.header('cookie') ? next() : c.redirect('/login')))
  inner.get('/private', (c) => c.text('private'))
  inner.use('*', async (_c, next) => next())
  const app = new Hono()
  app.use('*', accessLog({ logger: silentLogger, metrics }))
  app.route('/console', inner)
  await app.request('/console/open/7')
  await app.request('/console/private')
  await app.request('/console/private', { headers: { cookie: 's=1' } })
  await app.request('/nowhere')
  expect(seen).toEqual([
    '/console/open/:id 200',
    '/console/private 302',
    '/console/private 200',
    'unmatched 404',
  ])
})

it("labels the console's pages by their own routes in the app", async () => {
  const { seen, metrics } = counted()
  const app = createApp({
    config: testConfig(),
    db: undefined as never, // none of these requests reads the database
    router: createRouter(),
    logger: silentLogger,
    metrics,
  })
  await app.request('/console/login')
  await app.request('/console/members')
  expect(seen).toEqual(['/console/login 200', '/console/members 303'])
})
