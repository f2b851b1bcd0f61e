import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { logGamma, studentTCdf, studentTQuantile } from './student-t.js'

// Reference values from SciPy 1.17 (scipy.stats.t.ppf / t.cdf), computed outside this code.
const QUANTILES: [p: number, df: number, t: number][] = [
  [0.975, 1, 12.706204736174694],
  [0.975, 2, 4.302652729749462],
  [0.975, 3, 3.1824463052837078],
  [0.975, 10, 2.228138851986274],
  [0.975, 28, 2.0484071417952454],
  [0.975, 100, 1.9839715185235518],
  [0.975, 1000, 1.9623390808264083],
  [0.95, 5, 2.0150483733330233],
  [0.995, 3, 5.840909309733355],
  [0.9995, 1, 636.6192487687897],
  [0.999, 2.5, 13.82219311086596],
  [0.6, 7, 0.2631668613520229],
  [0.025, 12, -2.1788128296672293],
  [0.99999, 3, 47.92772837600671],
]
const CDF: [t: number, df: number, p: number][] = [
  [2.0, 3, 0.9303370157205785],
  [-1.5, 10, 0.08225366322272007],
  [0.1, 1, 0.5317255174305535],
  [30, 2, 0.9994453686590201],
  [-4, 50, 0.00010459512318201668],
]

describe("Student's t", () => {
  it.each(QUANTILES)('quantile(%d, df %d) = %d', (p, df, t) => {
    expect(Math.abs(studentTQuantile(p, df) - t) / Math.abs(t)).toBeLessThan(1e-9)
  })

  it.each(CDF)('cdf(%d, df %d) = %d', (t, df, p) => {
    expect(Math.abs(studentTCdf(t, df) - p)).toBeLessThan(1e-12)
  })

  it('ln Γ matches factorials and Γ(1/2) = √π', () => {
    expect(logGamma(0.5)).toBeCloseTo(0.5 * Math.log(Math.PI), 13)
    expect(logGamma(11)).toBeCloseTo(Math.log(3628800), 12)
    expect(logGamma(1)).toBeCloseTo(0, 14)
  })

  it('is the inverse of the CDF and symmetric, for any p and df', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 1e-6, max: 1 - 1e-6, noNaN: true }),
        fc.double({ min: 0.5, max: 500, noNaN: true }),
        (p, df) => {
          const t = studentTQuantile(p, df)
          expect(studentTCdf(t, df)).toBeCloseTo(p, 9)
          // 1 − p is rounded, so compare relatively
          expect(Math.abs(studentTQuantile(1 - p, df) + t)).toBeLessThanOrEqual(1e-6 * Math.abs(t))
        },
      ),
      { numRuns: 300 },
    )
  })

  it('tends to the normal quantile as df grows, and refuses nonsense', () => {
    expect(studentTQuantile(0.975, 1e7)).toBeCloseTo(1.959963984540054, 5)
    expect(studentTQuantile(0.5, 3)).toBe(0)
    expect(() => studentTQuantile(1, 3)).toThrow(RangeError)
    expect(() => studentTQuantile(0.9, 0)).toThrow(RangeError)
  })
})
