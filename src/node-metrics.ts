/**
 * The Prometheus implementation of {@link Metrics} for Node (prom-client): counters and histograms
 * the engine reports to, gauges read at scrape time from the database (outbox backlog, job
 * freshness — the same for every instance) and from the `pg` pool, and the process metrics.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import type { OpsStatus } from './community/ops-status.js'
import type { PoolCounts } from './db/postgres.js'
import type { Metrics } from './metrics.js'

/** Creates the registry and instruments. */
export function nodeMetrics(sources: {
  /** The vital signs (cached, shared with /healthz). */
  status: () => Promise<OpsStatus>
  /** The database pool's counts, when there is a pool. */
  pool?: () => PoolCounts | undefined
}): Metrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const registers = [registry]
  const requests = new Counter({
    name: 'quanzi_http_requests_total',
    help: 'HTTP requests answered, by method, route pattern and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers,
  })
  const latency = new Histogram({
    name: 'quanzi_http_request_duration_seconds',
    help: 'HTTP request latency by method and route pattern',
    labelNames: ['method', 'route'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers,
  })
  const pushes = new Counter({
    name: 'quanzi_pushes_total',
    help: 'Pushes taken by the webhooks, by channel, message type and outcome',
    labelNames: ['channel', 'type', 'outcome'] as const,
    registers,
  })
  const reply = new Histogram({
    name: 'quanzi_reply_duration_seconds',
    help: 'Time from a push arriving to its answer, by channel (WeChat waits 5 s)',
    labelNames: ['channel'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 4, 5],
    registers,
  })
  const sends = new Counter({
    name: 'quanzi_outbox_sends_total',
    help: 'Outbox items finished by this process, by result',
    labelNames: ['result'] as const,
    registers,
  })
  const jobRuns = new Counter({
    name: 'quanzi_job_runs_total',
    help: 'Job slots ended in this process, by job and outcome (skipped: another instance ran it)',
    labelNames: ['job', 'outcome'] as const,
    registers,
  })
  const pointsExpired = new Counter({
    name: 'quanzi_points_expired_total',
    help: 'Points expired by the expire-points job in this process (ledger entries points_expiry)',
    registers,
  })
  const statements = new Histogram({
    name: 'quanzi_db_statement_duration_seconds',
    help: 'Database statement run time (on PGlite a statement holds the whole server meanwhile)',
    buckets: [0.001, 0.005, 0.025, 0.1, 0.5, 1, 5, 30],
    registers,
  })
  const jobSeconds = new Histogram({
    name: 'quanzi_job_duration_seconds',
    help: 'Job run time',
    labelNames: ['job'] as const,
    buckets: [0.01, 0.1, 0.5, 1, 5, 15, 60, 300],
    registers,
  })
  new Gauge({
    name: 'quanzi_outbox_backlog',
    help: 'Outbox items due now and not yet sent, by kind (all instances)',
    labelNames: ['kind'] as const,
    registers,
    async collect() {
      this.reset()
      const s = await sources.status()
      for (const [kind, load] of Object.entries(s.outbox.byKind)) this.set({ kind }, load.backlog)
    },
  })
  new Gauge({
    name: 'quanzi_outbox_oldest_due_seconds',
    help: 'How long the oldest due outbox item has waited, by kind',
    labelNames: ['kind'] as const,
    registers,
    async collect() {
      this.reset()
      const s = await sources.status()
      for (const [kind, load] of Object.entries(s.outbox.byKind))
        this.set({ kind }, load.oldestDueSeconds)
    },
  })
  new Gauge({
    name: 'quanzi_refunds',
    help: 'Refunds unfinished (requested, processing) or needing an operator (failed, abnormal), by status',
    labelNames: ['status'] as const,
    registers,
    async collect() {
      this.reset()
      const s = await sources.status()
      for (const status of ['requested', 'processing', 'failed', 'abnormal'])
        this.set({ status }, s.refunds[status]?.count ?? 0)
    },
  })
  new Gauge({
    name: 'quanzi_refunds_oldest_seconds',
    help: 'Age of the oldest refund in each unfinished or operator-bound status',
    labelNames: ['status'] as const,
    registers,
    async collect() {
      this.reset()
      const s = await sources.status()
      for (const [status, r] of Object.entries(s.refunds)) this.set({ status }, r.oldestSeconds)
    },
  })
  new Gauge({
    name: 'quanzi_job_seconds_since_success',
    help: "Seconds since each job's last successful run (any instance); absent: never succeeded",
    labelNames: ['job'] as const,
    registers,
    async collect() {
      this.reset()
      const s = await sources.status()
      for (const [job, since] of Object.entries(s.jobs.sinceSuccess))
        if (since !== null) this.set({ job }, since)
    },
  })
  new Gauge({
    name: 'quanzi_db_up',
    help: '1 when the database answered the last probe',
    registers,
    async collect() {
      this.set((await sources.status()).db.ok ? 1 : 0)
    },
  })
  new Gauge({
    name: 'quanzi_db_pool_connections',
    help: 'Database pool connections by state (PostgreSQL; PGlite has one in-process connection)',
    labelNames: ['state'] as const,
    registers,
    collect() {
      const counts = sources.pool?.()
      if (!counts) return
      this.set({ state: 'in_use' }, counts.total - counts.idle)
      this.set({ state: 'idle' }, counts.idle)
      this.set({ state: 'waiting' }, counts.waiting)
    },
  })

  return {
    request({ method, route, status, seconds }) {
      requests.inc({ method, route, status: String(status) })
      latency.observe({ method, route }, seconds)
    },
    push({ channel, type, outcome, seconds }) {
      pushes.inc({ channel, type, outcome })
      // Answer time of pushes that were let in; refusals would pull it down.
      if (!outcome.startsWith('refused_')) reply.observe({ channel }, seconds)
    },
    sends(result, count) {
      if (count > 0) sends.inc({ result }, count)
    },
    job({ job, outcome, seconds }) {
      jobRuns.inc({ job, outcome })
      if (outcome !== 'skipped') jobSeconds.observe({ job }, seconds)
    },
    pointsExpired(points) {
      if (points > 0) pointsExpired.inc(points)
    },
    statement(seconds) {
      statements.observe(seconds)
    },
    async render() {
      return { contentType: registry.contentType, body: await registry.metrics() }
    },
  }
}
