/**
 * `/metrics` on Workers: the Prometheus text exposition of the gauges read from the database —
 * the same for every instance, named as on Node (node-metrics.ts). Per-request counters and
 * histograms are not kept: a Worker runs in many short-lived isolates, so in-memory counts would
 * be partial and reset at random; request counts, errors and latency come from Cloudflare's own
 * Workers analytics (dashboard, or `wrangler tail` for logs). Portable: no `node:`, no prom-client.
 */
import type { OpsStatus } from './community/ops-status.js'
import { type Metrics, noopMetrics } from './metrics.js'

type Sample = [labels: Record<string, string>, value: number]

const escapeLabel = (v: string) =>
  v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')

function gauge(name: string, help: string, samples: Sample[]): string {
  const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} gauge`]
  for (const [labels, value] of samples) {
    const set = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`)
    lines.push(`${name}${set.length ? `{${set.join(',')}}` : ''} ${value}`)
  }
  return lines.join('\n')
}

/** Renders the database gauges of `status` (exported for tests). */
export function renderStatusGauges(s: OpsStatus): string {
  const kinds = Object.entries(s.outbox.byKind)
  const unfinished = ['requested', 'processing', 'failed', 'abnormal']
  return `${[
    gauge(
      'quanzi_outbox_backlog',
      'Outbox items due now and not yet sent, by kind (all instances)',
      kinds.map(([kind, load]) => [{ kind }, load.backlog]),
    ),
    gauge(
      'quanzi_outbox_oldest_due_seconds',
      'How long the oldest due outbox item has waited, by kind',
      kinds.map(([kind, load]) => [{ kind }, load.oldestDueSeconds]),
    ),
    gauge(
      'quanzi_refunds',
      'Refunds unfinished (requested, processing) or needing an operator (failed, abnormal), by status',
      unfinished.map((status) => [{ status }, s.refunds[status]?.count ?? 0]),
    ),
    gauge(
      'quanzi_job_seconds_since_success',
      "Seconds since each job's last successful run (any instance); absent: never succeeded",
      Object.entries(s.jobs.sinceSuccess).flatMap(([job, since]): Sample[] =>
        since === null ? [] : [[{ job }, since]],
      ),
    ),
    gauge('quanzi_db_up', '1 when the database answered the last probe', [[{}, s.db.ok ? 1 : 0]]),
  ].join('\n')}\n`
}

/** {@link Metrics} for Workers: counts nothing, renders the database gauges. */
export function workerMetrics(sources: { status: () => Promise<OpsStatus> }): Metrics {
  return {
    ...noopMetrics,
    async render() {
      return {
        contentType: 'text/plain; version=0.0.4; charset=utf-8',
        body: renderStatusGauges(await sources.status()),
      }
    },
  }
}
