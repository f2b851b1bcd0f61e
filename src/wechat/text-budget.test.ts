import { describe, expect, it } from 'vitest'
import { fitText, TEXT_MAX_BYTES, utf8Bytes } from './text-budget.js'

const marker = '…（内容太长，后面的没有显示）'
const loneSurrogate = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/
const graphemeStarts = (s: string) =>
  new Set(
    [...new Intl.Segmenter(undefined, { granularity: 'grapheme' }).segment(s)].map((g) => g.index),
  )

describe('fitText', () => {
  it('leaves a text within the budget alone', () => {
    const s = `${'签到'.repeat(300)}\n👍`
    expect(fitText(s, { marker })).toEqual({ content: s, cut: false, bytes: utf8Bytes(s) })
  })

  it('cuts an oversized text after the last whole line that fits, with the marker', () => {
    const lines = Array.from({ length: 60 }, (_, i) => `${i + 1}. 社区活动第 ${i + 1} 期 🎉 报名`)
    const s = lines.join('\n')
    expect(utf8Bytes(s)).toBeGreaterThan(TEXT_MAX_BYTES)
    const f = fitText(s, { marker })
    expect(f.cut).toBe(true)
    expect(f.bytes).toBe(utf8Bytes(s))
    expect(utf8Bytes(f.content)).toBeLessThanOrEqual(TEXT_MAX_BYTES)
    const kept = f.content.split('\n')
    expect(kept.at(-1)).toBe(marker)
    expect(kept.slice(0, -1)).toEqual(lines.slice(0, kept.length - 1))
    // as many lines as fit: one more would not
    expect(utf8Bytes([...lines.slice(0, kept.length), marker].join('\n'))).toBeGreaterThan(
      TEXT_MAX_BYTES,
    )
  })

  it('cuts one long line at a grapheme boundary whatever emoji straddles the limit', () => {
    // 👍🏽 (2 surrogate pairs), 👨‍👩‍👧 (ZWJ sequence), 🇨🇳 (regional indicators), é as e + U+0301
    for (const emoji of ['👍🏽', '👨‍👩‍👧', '🇨🇳', 'e\u0301']) {
      for (let shift = 0; shift < 12; shift++) {
        const s = 'a'.repeat(shift) + `签${emoji}`.repeat(400)
        const f = fitText(s, { marker })
        expect(f.cut).toBe(true)
        expect(utf8Bytes(f.content)).toBeLessThanOrEqual(TEXT_MAX_BYTES)
        expect(f.content).not.toMatch(loneSurrogate)
        expect(f.content.endsWith(`\n${marker}`)).toBe(true)
        const head = f.content.slice(0, -marker.length - 1)
        expect(s.startsWith(head)).toBe(true)
        expect(graphemeStarts(s).has(head.length), `${emoji} shift ${shift}`).toBe(true)
        // nothing more than one grapheme's worth is given up
        expect(utf8Bytes(f.content)).toBeGreaterThan(TEXT_MAX_BYTES - utf8Bytes(`签${emoji}`) - 1)
      }
    }
  })
})
