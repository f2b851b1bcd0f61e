import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  compareRetention,
  fitGrowth,
  fitRetentionExponential,
  fitRetentionFloor,
  forecastGrowth,
  growthRates,
  type RetentionPoint,
} from './fit.js'

/** A seeded uniform generator (mulberry32) and standard normals from it (Box–Muller). */
function rng(seed: number) {
  let a = seed >>> 0
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const normal = () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform())
  return { uniform, normal }
}

const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => i + from)

describe('growth R(t) = R(0)·e^{kt}', () => {
  it('recovers k and R(0) exactly from a noiseless series, with a zero-width interval', () => {
    const points = range(40).map((t) => ({ t, value: 200 * Math.exp(0.05 * t) }))
    const fit = fitGrowth(points)!
    expect(fit.k).toBeCloseTo(0.05, 12)
    expect(fit.r0).toBeCloseTo(200, 9)
    expect(fit.r2.log).toBeCloseTo(1, 12)
    expect(fit.r2.original).toBeCloseTo(1, 12)
    expect(fit.doublingDays).toBeCloseTo(Math.LN2 / 0.05, 9)
    expect(fit.halvingDays).toBeNull()
    const [f] = forecastGrowth(fit, [69])
    expect(f!.value).toBeCloseTo(200 * Math.exp(0.05 * 69), 6)
    expect(f!.upper - f!.lower).toBeLessThan(1e-6)
  })

  it('matches an independent matrix solution on noisy data, interval included', () => {
    const { normal } = rng(7)
    const ts = range(40)
    const ys = ts.map((t) => Math.log(150) + 0.05 * t + 0.02 * normal())
    const fit = fitGrowth(ts.map((t, i) => ({ t, value: Math.exp(ys[i]!) })))!
    // β = (XᵀX)⁻¹Xᵀy with X = [1, t]
    const n = ts.length
    const st = ts.reduce((a, t) => a + t, 0)
    const stt = ts.reduce((a, t) => a + t * t, 0)
    const sy = ys.reduce((a, y) => a + y, 0)
    const sty = ts.reduce((a, t, i) => a + t * ys[i]!, 0)
    const det = n * stt - st * st
    const inv = [stt / det, -st / det, n / det] // [a11, a12 = a21, a22]
    const b0 = inv[0]! * sy + inv[1]! * sty
    const b1 = inv[1]! * sy + inv[2]! * sty
    expect(fit.k).toBeCloseTo(b1, 12)
    expect(Math.log(fit.r0)).toBeCloseTo(b0, 12)
    expect(Math.abs(fit.k - 0.05)).toBeLessThan(0.003)
    const sse = ts.reduce((a, t, i) => a + (ys[i]! - b0 - b1 * t) ** 2, 0)
    const s = Math.sqrt(sse / (n - 2))
    const x0 = 69
    const lever = inv[0]! + 2 * inv[1]! * x0 + inv[2]! * x0 * x0
    const q = 2.0243941639119694 // SciPy t.ppf(0.975, 38)
    const [f] = forecastGrowth(fit, [x0])
    expect(f!.value).toBeCloseTo(Math.exp(b0 + b1 * x0), 8)
    expect(f!.upper).toBeCloseTo(Math.exp(b0 + b1 * x0 + q * s * Math.sqrt(1 + lever)), 8)
    expect(f!.lower).toBeCloseTo(Math.exp(b0 + b1 * x0 - q * s * Math.sqrt(1 + lever)), 8)
    const ssTot = ys.reduce((a, y) => a + (y - sy / n) ** 2, 0)
    expect(fit.r2.log).toBeCloseTo(1 - sse / ssTot, 12)
    expect(fit.r2.original).toBeGreaterThan(0.99)
  })

  it('covers about 95 % of future values with its 95 % interval', () => {
    const { normal } = rng(42)
    let inside = 0
    const trials = 2000
    for (let i = 0; i < trials; i++) {
      const fit = fitGrowth(
        range(20).map((t) => ({ t, value: 1000 * Math.exp(0.03 * t + 0.05 * normal()) })),
      )!
      const truth = 1000 * Math.exp(0.03 * 29 + 0.05 * normal())
      const [f] = forecastGrowth(fit, [29])
      if (truth >= f!.lower && truth <= f!.upper) inside++
    }
    expect(inside / trials).toBeGreaterThan(0.935)
    expect(inside / trials).toBeLessThan(0.965)
  })

  it('skips values ≤ 0 and needs three points', () => {
    expect(
      fitGrowth([
        { t: 0, value: 5 },
        { t: 1, value: 6 },
      ]),
    ).toBeNull()
    expect(
      fitGrowth([
        { t: 0, value: 5 },
        { t: 1, value: 0 },
        { t: 2, value: 7 },
      ]),
    ).toBeNull()
    expect(fitGrowth(range(3).map(() => ({ t: 4, value: 9 })))).toBeNull()
    const shrinking = fitGrowth(range(10).map((t) => ({ t, value: 80 * Math.exp(-0.1 * t) })))!
    expect(shrinking.k).toBeCloseTo(-0.1, 12)
    expect(shrinking.halvingDays).toBeCloseTo(Math.LN2 / 0.1, 9)
    expect(shrinking.doublingDays).toBeNull()
  })

  it('pools the observed acquisition and loss rates over the previous day’s total', () => {
    const rates = growthRates([
      { t: 0, total: 100, new: 0, unfollowed: 0 },
      { t: 1, total: 110, new: 12, unfollowed: 2 },
      { t: 2, total: 115, new: 8, unfollowed: 3 },
      { t: 4, total: 120, new: 6, unfollowed: 1 }, // day 3 missing: not counted
    ])!
    expect(rates.days).toBe(2)
    expect(rates.acquisition).toBeCloseTo(20 / 210, 14)
    expect(rates.loss).toBeCloseTo(5 / 210, 14)
    expect(rates.impliedK).toBeCloseTo(Math.log(1 + 15 / 210), 14)
    expect(growthRates([{ t: 0, total: 5, new: 1, unfollowed: 0 }])).toBeNull()
  })
})

const floorCurve = (b: number, m: number) => (t: number) => b + (1 - b) * Math.exp(-m * t)

/** Shares of simulated cohorts: each of `size` members active at age t with probability r(t). */
function simulated(r: (t: number) => number, size: number, seed: number): RetentionPoint[] {
  const { uniform } = rng(seed)
  return range(30, 1).map((t) => {
    let active = 0
    for (let i = 0; i < size; i++) if (uniform() < r(t)) active++
    return { t, share: active / size, weight: size }
  })
}

describe('retention fits', () => {
  it('recovers b = 0.1, m = 0.3 from a noiseless floor curve and prefers the floor model', () => {
    const r = floorCurve(0.1, 0.3)
    const points = range(30, 1).map((t) => ({ t, share: r(t), weight: 1000 - 10 * t }))
    const floor = fitRetentionFloor(points)!
    expect(floor.b).toBeCloseTo(0.1, 6)
    expect(floor.m).toBeCloseTo(0.3, 6)
    expect(floor.rmse).toBeLessThan(1e-7)
    expect(floor.predicted.d7).toBeCloseTo(r(7), 6)
    const c = compareRetention(points)
    expect(c.better).toBe('floor')
    expect(c.aicDifference!).toBeGreaterThan(2)
    expect(c.exponential!.r2).toBeLessThan(c.floor!.r2)
    expect(c.exponentialOnShares!.r2).toBeLessThan(c.floor!.r2)
    expect(c.exponential!.method).toBe('log-ls')
    expect(c.observed.d30).toBeCloseTo(r(30), 12)
    expect(c.reference).toEqual({ d1: 0.25, d7: 0.15, d30: 0.08 })
  })

  it('recovers b and m from simulated cohorts within tolerance', () => {
    const floor = fitRetentionFloor(simulated(floorCurve(0.1, 0.3), 3000, 11))!
    expect(Math.abs(floor.b - 0.1)).toBeLessThan(0.01)
    expect(Math.abs(floor.m - 0.3)).toBeLessThan(0.03)
    expect(compareRetention(simulated(floorCurve(0.1, 0.3), 3000, 12)).better).toBe('floor')
  })

  it('fits e^{−mt} on logs through the origin, weighted', () => {
    const points = range(30, 1).map((t) => ({ t, share: Math.exp(-0.2 * t), weight: 50 + t }))
    const exp = fitRetentionExponential(points)!
    expect(exp.m).toBeCloseTo(0.2, 12)
    expect(exp.b).toBe(0)
    expect(exp.lostBy30).toBeCloseTo(1 - Math.exp(-6), 12)
    // the weighted closed form: one heavy age pulls m towards its own −ln r / t
    const tilted = [
      { t: 1, share: Math.exp(-0.5), weight: 1000 },
      { t: 2, share: Math.exp(-0.2 * 2), weight: 1 },
    ]
    const m = (1000 * 1 * 0.5 + 1 * 2 * 0.4) / (1000 * 1 + 1 * 4)
    expect(fitRetentionExponential(tilted)!.m).toBeCloseTo(m, 12)
    // ages with nobody retained have no logarithm: left out of the fit, kept in its errors
    const withZero = [...points, { t: 31, share: 0, weight: 10 }]
    expect(fitRetentionExponential(withZero)!.m).toBeCloseTo(0.2, 12)
    expect(fitRetentionExponential(withZero)!.n).toBe(31)
  })

  it('prefers the exponential when the data have no floor', () => {
    for (const seed of [5, 6, 7, 8, 9]) {
      const c = compareRetention(simulated((t) => Math.exp(-0.2 * t), 3000, seed))
      expect(c.better).toBe('exponential')
      expect(c.aicDifference!).toBeLessThan(0)
      expect(Math.abs(c.exponential!.m - 0.2)).toBeLessThan(0.01)
      expect(Math.abs(c.exponentialOnShares!.m - 0.2)).toBeLessThan(0.01)
      expect(c.floor!.b).toBeLessThan(0.01)
    }
  })

  it('finds the floor fit no worse than a brute-force grid over (b, m)', () => {
    const points = simulated(floorCurve(0.18, 0.12), 400, 99)
    const sse = (b: number, m: number) =>
      points.reduce((a, p) => a + p.weight * (p.share - floorCurve(b, m)(p.t)) ** 2, 0)
    let best = Number.POSITIVE_INFINITY
    for (let b = 0; b <= 0.4; b += 0.002)
      for (let m = 0.02; m <= 0.5; m += 0.002) best = Math.min(best, sse(b, m))
    const fit = fitRetentionFloor(points)!
    expect(sse(fit.b, fit.m)).toBeLessThanOrEqual(best + 1e-12)
  })

  it('recovers any noiseless floor curve (property)', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 0.5, noNaN: true }),
        fc.double({ min: 0.02, max: 2, noNaN: true }),
        (b, m) => {
          const r = floorCurve(b, m)
          const fit = fitRetentionFloor(range(30, 1).map((t) => ({ t, share: r(t), weight: 100 })))!
          expect(Math.abs(fit.b - b)).toBeLessThan(1e-5)
          expect(Math.abs(fit.m - m) / m).toBeLessThan(1e-4)
        },
      ),
      { numRuns: 150 },
    )
  })

  it('needs data', () => {
    expect(fitRetentionExponential([{ t: 0, share: 1, weight: 9 }])).toBeNull()
    expect(fitRetentionFloor([{ t: 1, share: 0.3, weight: 9 }])).toBeNull()
    const none = compareRetention([])
    expect(none.better).toBeNull()
    expect(none.observed).toEqual({ d1: null, d7: null, d30: null })
  })
})
