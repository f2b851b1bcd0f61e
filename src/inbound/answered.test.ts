import { describe, expect, it } from 'vitest'
import { answeredPushes, mayBeResent, RESEND_LIKELY_AFTER_MS } from './answered.js'

const stamp = { timestamp: '1700000000', nonce: 'n1', digest: 'a'.repeat(64) }
const answer = { body: '<xml>hi</xml>', status: 'replied' as const }

describe('answered pushes', () => {
  it('answers only the exact stamp it was told, per account', () => {
    const memo = answeredPushes()
    memo.remember('wx1', stamp, answer)
    expect(memo.get('wx1', stamp)).toEqual(answer)
    // Another body under the same timestamp and nonce is the database's to refuse.
    expect(memo.get('wx1', { ...stamp, digest: 'b'.repeat(64) })).toBeUndefined()
    expect(memo.get('wx1', { ...stamp, nonce: 'n2' })).toBeUndefined()
    expect(memo.get('wx1', { ...stamp, timestamp: '1700000001' })).toBeUndefined()
    expect(memo.get('wx2', stamp)).toBeUndefined()
  })

  it('keeps `success` (a null body) as an answer', () => {
    const memo = answeredPushes()
    memo.remember('wx1', stamp, { body: null, status: 'replied' })
    expect(memo.get('wx1', stamp)).toEqual({ body: null, status: 'replied' })
  })

  it('forgets an answer once it is older than its age limit', () => {
    let now = 1_000
    const memo = answeredPushes({ ttlMs: 60_000, now: () => now })
    memo.remember('wx1', stamp, answer)
    now += 59_999
    expect(memo.get('wx1', stamp)).toEqual(answer)
    now += 2
    expect(memo.get('wx1', stamp)).toBeUndefined()
  })

  it('drops every answer once the newest is past its age, asked for another one', () => {
    let now = 1_000
    const memo = answeredPushes({ ttlMs: 60_000, now: () => now })
    memo.remember('wx1', stamp, answer)
    memo.remember('wx1', { ...stamp, nonce: 'n2' }, answer)
    now += 30_000
    expect(memo.get('wx1', { ...stamp, nonce: 'n3' })).toBeUndefined()
    expect(memo.size).toBe(2) // still young: kept
    now += 30_001
    expect(memo.get('wx1', { ...stamp, nonce: 'n3' })).toBeUndefined()
    expect(memo.size).toBe(0) // lru-cache alone would count both until each is asked for
  })

  it('stays within its entry and byte bounds, dropping the least recently used', () => {
    const few = answeredPushes({ max: 2 })
    for (const nonce of ['a', 'b', 'c']) few.remember('wx1', { ...stamp, nonce }, answer)
    expect(few.get('wx1', { ...stamp, nonce: 'a' })).toBeUndefined()
    expect(few.get('wx1', { ...stamp, nonce: 'c' })).toEqual(answer)

    // Each entry here is ~2 × (key + body) + 96 ≈ 4.4 kB: 10 kB holds two.
    const big = { body: 'x'.repeat(2_000), status: 'replied' as const }
    const small = answeredPushes({ maxBytes: 10_000 })
    for (const nonce of ['a', 'b', 'c']) small.remember('wx1', { ...stamp, nonce }, big)
    expect(small.get('wx1', { ...stamp, nonce: 'a' })).toBeUndefined()
    expect(small.get('wx1', { ...stamp, nonce: 'b' })).toEqual(big)
    expect(small.get('wx1', { ...stamp, nonce: 'c' })).toEqual(big)
  })

  it('counts an answer as resendable once it comes a second after its request arrived', () => {
    const arrived = 1_700_000_000_400
    expect(mayBeResent(arrived, arrived)).toBe(false)
    expect(mayBeResent(arrived, arrived + RESEND_LIKELY_AFTER_MS - 1)).toBe(false)
    expect(mayBeResent(arrived, arrived + RESEND_LIKELY_AFTER_MS)).toBe(true)
  })
})
