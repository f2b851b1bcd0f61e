import { expect, it } from 'vitest'
import type { OpsStatus } from '../community/ops-status.js'
import { noopMetrics } from '../metrics.js'
import { healthRoutes } from './health.js'

const up: OpsStatus = {
  ok: true,
  db: { ok: true, ms: 1 },
  outbox: {
    backlog: 3,
    oldestDueSeconds: 7,
    byKind: { custom: { backlog: 3, oldestDueSeconds: 7 } },
    paused: [{ appid: 'wx1', api: 'template', until: '2026-11-24T16:00:00.000Z' }],
  },
  refunds: { failed: { count: 2, oldestSeconds: 86400 } },
  jobs: { lagSeconds: 12, sinceSuccess: { campaigns: 12 } },
}
const metrics = {
  ...noopMetrics,
  render: async () => ({ contentType: 'text/plain', body: 'x 1\n' }),
}

it('answers /healthz with the vital signs, and 503 when the database is down', async () => {
  const ok = healthRoutes({ status: async () => up, metrics, sandbox: false, accounts: 1 })
  const res = await ok.request('/healthz')
  expect(res.status).toBe(200)
  expect(await res.json()).toEqual({
    ok: true,
    db: { ok: true, ms: 1 },
    outbox: {
      backlog: 3,
      oldestDueSeconds: 7,
      paused: [{ appid: 'wx1', api: 'template', until: '2026-11-24T16:00:00.000Z' }],
    },
    refunds: { failed: 2 },
    jobs: { lagSeconds: 12 },
    sandbox: false,
    accounts: 1,
  })
  const down = healthRoutes({
    status: async () => ({ ...up, ok: false, db: { ok: false, ms: 5, error: 'refused' } }),
    metrics,
    sandbox: false,
    accounts: 1,
  })
  expect((await down.request('/healthz')).status).toBe(503)
})

it('guards /metrics with METRICS_TOKEN when one is set', async () => {
  const app = healthRoutes({
    status: async () => up,
    metrics,
    metricsToken: 'metrics-token-0123456789',
    sandbox: false,
    accounts: 1,
  })
  expect((await app.request('/metrics')).status).toBe(401)
  const bad = { headers: { authorization: 'Bearer wrong-token-0123456789' } }
  expect((await app.request('/metrics', bad)).status).toBe(401)
  const good = { headers: { authorization: 'Bearer metrics-token-0123456789' } }
  const res = await app.request('/metrics', good)
  expect(res.status).toBe(200)
  expect(await res.text()).toBe('x 1\n')
})

it('serves no /metrics where the runtime keeps none', async () => {
  const app = healthRoutes({
    status: async () => up,
    metrics: noopMetrics,
    sandbox: false,
    accounts: 1,
  })
  expect((await app.request('/metrics')).status).toBe(404)
})
