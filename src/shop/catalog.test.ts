import { describe, expect, it } from 'vitest'
import type { Product } from '../db/schema.js'
import { priceFor } from './catalog.js'

const product = (kind: Product['kind'], price_fen: number) => ({ kind, price_fen }) as Product

describe('priceFor', () => {
  it('rounds a discounted price down, in the buyer’s favour, and never below 1 fen', () => {
    expect(priceFor(product('flash_sale', 1990), { discount_percent: 95 })).toBe(1890) // 1890.5
    expect(priceFor(product('group_buy', 999), { discount_percent: 90 })).toBe(899) // 899.1
    expect(priceFor(product('flash_sale', 1), { discount_percent: 50 })).toBe(1)
    expect(priceFor(product('flash_sale', 1990))).toBe(1990)
    // plans are never discounted
    expect(priceFor(product('membership', 3000), { discount_percent: 80 })).toBe(3000)
  })
})
