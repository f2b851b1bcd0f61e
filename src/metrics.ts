/**
 * What the engine counts, as one small interface: the app, the inbound pipeline, the outbox worker
 * and the scheduler report to it; the Node entry injects the Prometheus implementation
 * (node-metrics.ts, prom-client), and anything else gets {@link noopMetrics}. Portable: no `node:`.
 */

/** How a push ended (label `outcome`). */
export type PushOutcome =
  | 'replied'
  | 'success'
  | 'duplicate'
  | 'deadline_passed'
  | 'failed'
  | `refused_${string}`

/** The engine's instruments. Every method is cheap and never throws. */
export interface Metrics {
  /** One HTTP request answered: `route` is the matched pattern (never the raw path or query). */
  request(o: { method: string; route: string; status: number; seconds: number }): void
  /** One push taken by a channel's webhook, and how long its answer took. */
  push(o: { channel: string; type: string; outcome: PushOutcome; seconds: number }): void
  /** Outbox results (`sent`, `skipped`, `failed`, `retried`). */
  sends(result: string, count: number): void
  /**
   * One scheduled or manual job slot ended (`abandoned`: given up after the retry of a run whose
   * process died also died or failed; `paused`: its budget ran out, the next tick resumes it).
   */
  job(o: {
    job: string
    outcome: 'ran' | 'paused' | 'failed' | 'skipped' | 'abandoned'
    seconds: number
  }): void
  /** Points the expire-points job expired (counter `quanzi_points_expired_total`). */
  pointsExpired(points: number): void
  /** One database statement's run time (src/db/database-logs.ts). */
  statement(seconds: number): void
  /** The Prometheus text exposition, when this runtime keeps metrics. */
  render?(): Promise<{ contentType: string; body: string }>
}

/** Counts nothing (tests, Workers until they get an exporter). */
export const noopMetrics: Metrics = {
  request() {},
  push() {},
  sends() {},
  job() {},
  pointsExpired() {},
  statement() {},
}
