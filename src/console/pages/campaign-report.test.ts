/** The report page's redemption line: the A/B test on redemptions in words (recommendations' uplift). */
import { describe, expect, it } from 'vitest'
import { campaignRollup } from '../../../test/analytics-fixtures.js'
import { type VariantCounts, variantReport } from '../../community/campaign-report.js'
import { consoleTranslator } from '../i18n.js'
import { redemptionVerdict } from './campaign-report.js'

/** A variant's counts: the rollup fixture's, with `redeemed` of them redeemed. */
const counts = (variant: string, enqueued: number, redeemed: number): VariantCounts => ({
  ...campaignRollup(0, new Date(0), variant, enqueued, 0),
  redeemed,
})

describe('the redemption verdict', () => {
  it('says the redemption uplift of one variant over the other, with its significance', () => {
    const zh = consoleTranslator('zh-CN')
    // A names {{rec}}: 120 of 1000 redeemed; B does not: 50 of 1000 (z ≈ 5.6)
    const clear = variantReport([counts('A', 1000, 120), counts('B', 1000, 50)])
    expect(clear.abTest?.redemption?.significant).toBe(true)
    expect(redemptionVerdict(clear, zh)).toBe(
      '兑换率：B 比 A 低 7.0 个百分点（p = < 0.001，差异显著）',
    )
    const unclear = variantReport([counts('A', 100, 6), counts('B', 100, 4)])
    expect(redemptionVerdict(unclear, consoleTranslator('en'))).toBe(
      'Redemption rate: B is 2.0 points lower than A (p = 0.516, not significant yet)',
    )
  })

  it('says nothing without two variants or without a redemption', () => {
    const zh = consoleTranslator('zh-CN')
    expect(redemptionVerdict(variantReport([counts('A', 10, 3)]), zh)).toBeUndefined()
    expect(
      redemptionVerdict(variantReport([counts('A', 10, 0), counts('B', 10, 0)]), zh),
    ).toBeUndefined()
  })
})
