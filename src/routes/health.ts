/**
 * `GET /healthz` (the vital signs as JSON; 503 when the database does not answer) and
 * `GET /metrics` (Prometheus text, where the runtime keeps metrics; behind METRICS_TOKEN if set).
 */
import { Hono } from 'hono'
import { bearerAuth } from 'hono/bearer-auth'
import type { OpsStatus } from '../community/ops-status.js'
import type { Metrics } from '../metrics.js'

/** Options for {@link healthRoutes}. */
export interface HealthRouteOptions {
  status: () => Promise<OpsStatus>
  metrics: Metrics
  metricsToken?: string
  sandbox: boolean
  accounts: number
}

/** The health and metrics routes. */
export function healthRoutes(o: HealthRouteOptions): Hono {
  const app = new Hono()
  app.get('/healthz', async (c) => {
    const s = await o.status()
    const body = {
      ok: s.ok,
      db: { ok: s.db.ok, ms: s.db.ms },
      outbox: {
        backlog: s.outbox.backlog,
        oldestDueSeconds: s.outbox.oldestDueSeconds,
        paused: s.outbox.paused,
      },
      refunds: Object.fromEntries(Object.entries(s.refunds).map(([k, v]) => [k, v.count])),
      jobs: { lagSeconds: s.jobs.lagSeconds },
      sandbox: o.sandbox,
      accounts: o.accounts,
    }
    c.header('cache-control', 'no-store')
    return c.json(body, s.ok ? 200 : 503)
  })
  const { render } = o.metrics
  if (render) {
    if (o.metricsToken) app.use('/metrics', bearerAuth({ token: o.metricsToken }))
    app.get('/metrics', async (c) => {
      const { contentType, body } = await render()
      return c.body(body, 200, { 'content-type': contentType, 'cache-control': 'no-store' })
    })
  }
  return app
}
