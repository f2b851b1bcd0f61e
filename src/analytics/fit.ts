/**
 * The operations plan's curves, fitted to observed series (issue #16 item 4). Pure functions, no
 * database; every result is plain JSON (finite numbers or null).
 *
 * Growth: R(t) = R(0)·e^{kt} with k = r − l (acquisition minus loss), fitted by ordinary least
 * squares on ln R(t) = ln R(0) + k·t. Both R² are reported: `r2.log` is the regression's own (what
 * least squares minimised, and what the prediction interval rests on); `r2.original` compares
 * e^{fit} with R on the original scale (what a chart of followers shows). The 30-day forecast is
 * e^{ŷ} — the median of the log-normal prediction, not its mean — with the interval
 * e^{ŷ ± t_{(1+level)/2, n−2}·s·√(1 + 1/n + (t − t̄)²/Sxx)}. Day-to-day residuals are correlated,
 * so the interval is narrower than the truth on long horizons: read it as a lower bound on the
 * uncertainty.
 *
 * Retention, from pooled cohort shares r(t) at ages t ≥ 1 (age 0 is the follow day itself):
 *   exponential  L(t) = 1 − e^{−mt}, so r(t) = e^{−mt}: weighted least squares on ln r through the
 *                origin, m = −Σ w·t·ln r / Σ w·t² (weights = members observed at that age; ages
 *                with no one retained have no logarithm and are left out of this fit only);
 *   floor        r(t) = b + (1 − b)·e^{−mt}: weighted nonlinear least squares on the shares
 *                themselves — b in closed form for each m (clamped to [0, 1]), m by a log grid
 *                then golden-section search on the profile.
 * Every fit is judged on the original scale (weighted RMSE, weighted R², AIC = n·ln(WSSE/n) + 2p
 * with the weights scaled to mean 1). Which model is better is decided between the floor model and
 * e^{−mt} fitted the same way (nonlinear least squares on the shares, i.e. the floor model with
 * b = 0): compared with the log fit instead, the floor would win even on data without a floor,
 * because least squares on logs gives the tail's small, noisy shares as much say as day 1.
 */
import { studentTQuantile } from './student-t.js'

/** The plan's reference retention lines (share of a cohort active on day 1, 7 and 30). */
export const REFERENCE_RETENTION = { d1: 0.25, d7: 0.15, d30: 0.08 } as const

/** One observation of a growing quantity at time t (days). */
export interface GrowthPoint {
  t: number
  value: number
}

/** R(t) = R(0)·e^{kt} fitted by OLS on ln R. */
export interface GrowthFit {
  model: 'exponential'
  /** Points used (values > 0). */
  n: number
  /** Daily growth rate k (continuous): R grows by e^k − 1 a day. */
  k: number
  /** R(0), the fitted value at t = 0. */
  r0: number
  /** ln 2 / k when k > 0, else null. */
  doublingDays: number | null
  /** ln 2 / −k when k < 0, else null. */
  halvingDays: number | null
  r2: { log: number; original: number }
  /** The regression on ln R, for intervals: ln R = intercept + k·t, residual standard error s. */
  regression: {
    intercept: number
    slope: number
    s: number
    df: number
    tMean: number
    sxx: number
  }
}

/** A forecast value with its prediction interval. */
export interface ForecastPoint {
  t: number
  value: number
  lower: number
  upper: number
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0)
const r2Of = (ssRes: number, ssTot: number) => (ssTot > 0 ? 1 - ssRes / ssTot : ssRes === 0 ? 1 : 0)

/**
 * Fits R(t) = R(0)·e^{kt} by OLS on ln R. Points with a value ≤ 0 have no logarithm and are left
 * out. Null with fewer than 3 usable points or a single t (no slope, no interval).
 * @example fitGrowth([{ t: 0, value: 100 }, { t: 1, value: 105 }, { t: 2, value: 110 }])!.k // ≈ 0.0488
 */
export function fitGrowth(points: GrowthPoint[]): GrowthFit | null {
  const ps = points.filter((p) => p.value > 0 && Number.isFinite(p.value) && Number.isFinite(p.t))
  const n = ps.length
  if (n < 3) return null
  const ts = ps.map((p) => p.t)
  const ys = ps.map((p) => Math.log(p.value))
  const tMean = sum(ts) / n
  const yMean = sum(ys) / n
  const sxx = sum(ts.map((t) => (t - tMean) ** 2))
  if (sxx === 0) return null
  const sxy = sum(ts.map((t, i) => (t - tMean) * (ys[i]! - yMean)))
  const k = sxy / sxx
  const intercept = yMean - k * tMean
  const ssRes = sum(ts.map((t, i) => (ys[i]! - intercept - k * t) ** 2))
  const ssTot = sum(ys.map((y) => (y - yMean) ** 2))
  const values = ps.map((p) => p.value)
  const vMean = sum(values) / n
  const ssResOriginal = sum(ts.map((t, i) => (values[i]! - Math.exp(intercept + k * t)) ** 2))
  const ssTotOriginal = sum(values.map((v) => (v - vMean) ** 2))
  return {
    model: 'exponential',
    n,
    k,
    r0: Math.exp(intercept),
    doublingDays: k > 0 ? Math.LN2 / k : null,
    halvingDays: k < 0 ? Math.LN2 / -k : null,
    r2: { log: r2Of(ssRes, ssTot), original: r2Of(ssResOriginal, ssTotOriginal) },
    regression: { intercept, slope: k, s: Math.sqrt(ssRes / (n - 2)), df: n - 2, tMean, sxx },
  }
}

/**
 * The fitted growth at each t with its prediction interval at `level` (default 0.95): the median
 * e^{ŷ} and e^{ŷ ± q·s·√(1 + 1/n + (t − t̄)²/Sxx)}, q the t quantile with n − 2 degrees of freedom.
 */
export function forecastGrowth(fit: GrowthFit, ts: number[], level = 0.95): ForecastPoint[] {
  if (!(level > 0 && level < 1)) throw new RangeError(`level must be in (0, 1), got ${level}`)
  const { intercept, slope, s, df, tMean, sxx } = fit.regression
  const q = studentTQuantile((1 + level) / 2, df)
  return ts.map((t) => {
    const y = intercept + slope * t
    const half = q * s * Math.sqrt(1 + 1 / fit.n + (t - tMean) ** 2 / sxx)
    return { t, value: Math.exp(y), lower: Math.exp(y - half), upper: Math.exp(y + half) }
  })
}

/** Observed acquisition and loss rates: the plan's r and l, from daily new and lost followers. */
export interface GrowthRates {
  /** Σ new / Σ followers the day before: the daily acquisition rate r. */
  acquisition: number
  /** Σ unfollowed / Σ followers the day before: the daily loss rate l. */
  loss: number
  /** r − l, a discrete daily rate. */
  net: number
  /** ln(1 + r − l): the continuous k these rates imply, comparable with the fitted k. */
  impliedK: number | null
  days: number
}

/**
 * Pooled daily rates from consecutive days: day i contributes new_i and unfollowed_i over total_{i−1}
 * (days whose previous total is missing or 0 are skipped). Null when no day qualifies.
 */
export function growthRates(
  days: { t: number; total: number; new: number; unfollowed: number }[],
): GrowthRates | null {
  const byT = new Map(days.map((d) => [d.t, d]))
  let base = 0
  let gained = 0
  let lost = 0
  let n = 0
  for (const d of days) {
    const previous = byT.get(d.t - 1)
    if (!previous || previous.total <= 0) continue
    base += previous.total
    gained += d.new
    lost += d.unfollowed
    n++
  }
  if (n === 0) return null
  const acquisition = gained / base
  const loss = lost / base
  const net = acquisition - loss
  return { acquisition, loss, net, impliedK: net > -1 ? Math.log1p(net) : null, days: n }
}

/** Pooled retention at one age: the share of the members observed at age t who were active. */
export interface RetentionPoint {
  /** Age in days (≥ 1 is used). */
  t: number
  share: number
  /** Members observed at that age (the sum of the cohort sizes that reached it). */
  weight: number
}

/** How well a retention model describes the shares, on the original scale. */
export interface RetentionFit {
  model: 'exponential' | 'floor'
  /** `log-ls`: least squares on ln r (the plan's); `nls`: least squares on the shares. */
  method: 'log-ls' | 'nls'
  /** Loss rate m: r(t) = e^{−mt} (exponential) or b + (1 − b)·e^{−mt} (floor). */
  m: number
  /** The floor b (0 for the exponential model). */
  b: number
  /** Parameters fitted (1 or 2), for AIC. */
  parameters: number
  /** Ages used. */
  n: number
  /** Weighted root mean squared error of the share. */
  rmse: number
  /** Weighted R² of the share. */
  r2: number
  /** n·ln(WSSE/n) + 2·parameters, weights scaled to mean 1; lower is better. */
  aic: number
  /** The plan's L(30) = 1 − r(30): the share lost by day 30. */
  lostBy30: number
  /** Days until half the members above the floor are lost: ln 2 / m. */
  halfLifeDays: number | null
  predicted: { d1: number; d7: number; d30: number }
}

const usable = (points: RetentionPoint[]) =>
  points.filter(
    (p) => p.t >= 1 && p.weight > 0 && Number.isFinite(p.share) && p.share >= 0 && p.share <= 1,
  )

/** Builds the fit record for r(t) = b + (1 − b)·e^{−mt} evaluated on `ps`. */
function describe(
  model: RetentionFit['model'],
  method: RetentionFit['method'],
  m: number,
  b: number,
  parameters: number,
  ps: RetentionPoint[],
): RetentionFit {
  const r = (t: number) => b + (1 - b) * Math.exp(-m * t)
  const n = ps.length
  const w = sum(ps.map((p) => p.weight))
  const wsse = sum(ps.map((p) => p.weight * (p.share - r(p.t)) ** 2))
  const mean = sum(ps.map((p) => p.weight * p.share)) / w
  const wsst = sum(ps.map((p) => p.weight * (p.share - mean) ** 2))
  const scaled = (wsse * n) / w
  return {
    model,
    method,
    m,
    b,
    parameters,
    n,
    rmse: Math.sqrt(wsse / w),
    r2: r2Of(wsse, wsst),
    aic: n * Math.log(Math.max(scaled / n, 1e-300)) + 2 * parameters,
    lostBy30: 1 - r(30),
    halfLifeDays: m > 0 ? Math.LN2 / m : null,
    predicted: { d1: r(1), d7: r(7), d30: r(30) },
  }
}

/**
 * r(t) = e^{−mt} (the plan's L(t) = 1 − e^{−mt}) by weighted least squares on ln r through the
 * origin. Null when no age ≥ 1 has a share > 0.
 */
export function fitRetentionExponential(points: RetentionPoint[]): RetentionFit | null {
  const ps = usable(points)
  const logged = ps.filter((p) => p.share > 0)
  if (logged.length === 0) return null
  const m =
    -sum(logged.map((p) => p.weight * p.t * Math.log(p.share))) /
    sum(logged.map((p) => p.weight * p.t * p.t))
  return describe('exponential', 'log-ls', m, 0, 1, ps)
}

/** The floor b minimising the weighted SSE for a given m (in [0, 1], or `fixed`), and that SSE. */
function profile(ps: RetentionPoint[], m: number, fixed?: number): { b: number; sse: number } {
  let b = fixed ?? 0
  if (fixed === undefined) {
    let num = 0
    let den = 0
    for (const p of ps) {
      const e = Math.exp(-m * p.t)
      num += p.weight * (p.share - e) * (1 - e)
      den += p.weight * (1 - e) ** 2
    }
    b = den > 0 ? Math.min(1, Math.max(0, num / den)) : 0
  }
  let sse = 0
  for (const p of ps) sse += p.weight * (p.share - b - (1 - b) * Math.exp(-m * p.t)) ** 2
  return { b, sse }
}

const M_MIN = 1e-4
const M_MAX = 50

/** The m minimising `sse`: a log grid on [1e-4, 50], then golden-section search around its best. */
function searchM(sse: (m: number) => number): number {
  const steps = 400
  const grid = Array.from({ length: steps + 1 }, (_, i) => M_MIN * (M_MAX / M_MIN) ** (i / steps))
  let best = 0
  let bestSse = Number.POSITIVE_INFINITY
  grid.forEach((m, i) => {
    const v = sse(m)
    if (v < bestSse) {
      bestSse = v
      best = i
    }
  })
  let lo = Math.log(grid[Math.max(0, best - 1)]!)
  let hi = Math.log(grid[Math.min(steps, best + 1)]!)
  const phi = (Math.sqrt(5) - 1) / 2
  const f = (x: number) => sse(Math.exp(x))
  let x1 = hi - phi * (hi - lo)
  let x2 = lo + phi * (hi - lo)
  let f1 = f(x1)
  let f2 = f(x2)
  for (let i = 0; i < 200 && hi - lo > 1e-12; i++) {
    if (f1 <= f2) {
      hi = x2
      x2 = x1
      f2 = f1
      x1 = hi - phi * (hi - lo)
      f1 = f(x1)
    } else {
      lo = x1
      x1 = x2
      f1 = f2
      x2 = lo + phi * (hi - lo)
      f2 = f(x2)
    }
  }
  const m = Math.exp((lo + hi) / 2)
  return sse(m) <= bestSse ? m : grid[best]!
}

/**
 * r(t) = b + (1 − b)·e^{−mt} by weighted nonlinear least squares: for each m the best b is closed
 * form, so the fit is a one-dimensional search over m (a log grid on [1e-4, 50], then
 * golden-section search between the best grid point's neighbours). Null without 2 ages ≥ 1.
 */
export function fitRetentionFloor(points: RetentionPoint[]): RetentionFit | null {
  const ps = usable(points)
  if (ps.length < 2) return null
  const m = searchM((m) => profile(ps, m).sse)
  return describe('floor', 'nls', m, profile(ps, m).b, 2, ps)
}

/**
 * r(t) = e^{−mt} fitted like the floor model — weighted nonlinear least squares on the shares
 * (the floor model with b = 0) — the baseline that makes the AIC comparison about the floor and
 * not about the log transform. Null without an age ≥ 1.
 */
export function fitRetentionExponentialOnShares(points: RetentionPoint[]): RetentionFit | null {
  const ps = usable(points)
  if (ps.length < 1) return null
  return describe(
    'exponential',
    'nls',
    searchM((m) => profile(ps, m, 0).sse),
    0,
    1,
    ps,
  )
}

/** Both retention models, which fits better, and the observed and reference d1/d7/d30. */
export interface RetentionComparison {
  /** The plan's L(t) = 1 − e^{−mt}: r = e^{−mt} by weighted least squares on ln r. */
  exponential: RetentionFit | null
  /** r = b + (1 − b)·e^{−mt} by weighted nonlinear least squares. */
  floor: RetentionFit | null
  /** r = e^{−mt} by weighted nonlinear least squares: the comparison's baseline. */
  exponentialOnShares: RetentionFit | null
  /**
   * The better model by AIC, floor against `exponentialOnShares` (both fitted on the shares, so
   * the verdict is about the floor, not the estimator; the log fit weighs the noisy tail, where
   * shares are small, as much as day 1, and loses on the original scale even without a floor).
   */
  better: RetentionFit['model'] | null
  /** AIC(exponential on shares) − AIC(floor): > 2 favours the floor clearly, < 0 the exponential. */
  aicDifference: number | null
  observed: { d1: number | null; d7: number | null; d30: number | null }
  reference: typeof REFERENCE_RETENTION
}

/** Fits the retention models to the same points and says which is better (lower AIC). */
export function compareRetention(points: RetentionPoint[]): RetentionComparison {
  const exponentialOnShares = fitRetentionExponentialOnShares(points)
  const floor = fitRetentionFloor(points)
  const at = (t: number) => points.find((p) => p.t === t && p.weight > 0)?.share ?? null
  const aicDifference = exponentialOnShares && floor ? exponentialOnShares.aic - floor.aic : null
  return {
    exponential: fitRetentionExponential(points),
    floor,
    exponentialOnShares,
    better:
      aicDifference !== null
        ? aicDifference > 0
          ? 'floor'
          : 'exponential'
        : (exponentialOnShares?.model ?? null),
    aicDifference,
    observed: { d1: at(1), d7: at(7), d30: at(30) },
    reference: REFERENCE_RETENTION,
  }
}
