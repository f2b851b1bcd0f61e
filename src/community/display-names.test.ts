import { describe, expect, it } from 'vitest'
import { DENIED_NAME_WORDS, deniedNameWord, nameTag, validateDisplayName } from './display-names.js'

describe('display names', () => {
  it('trims and accepts 1–16 characters on one line', () => {
    expect(validateDisplayName('  小明\u3000')).toEqual({ ok: true, name: '小明' })
    expect(validateDisplayName('a'.repeat(16))).toEqual({ ok: true, name: 'a'.repeat(16) })
    expect(validateDisplayName('🎉'.repeat(16))).toMatchObject({ ok: true })
    expect(validateDisplayName('a'.repeat(17))).toEqual({ ok: false, reason: 'too_long' })
    expect(validateDisplayName(' \t ')).toEqual({ ok: false, reason: 'empty' })
  })

  it('refuses control characters, line breaks and invisible direction marks', () => {
    for (const bad of ['a\nb', 'a\rb', 'a\u0000b', 'a\u0085b', 'a\u2028b', 'a\u202eb', 'a\u200bb'])
      expect(validateDisplayName(bad), JSON.stringify(bad)).toEqual({
        ok: false,
        reason: 'control',
      })
  })

  it('refuses deny-listed words, in any width or case, ASCII words only whole', () => {
    expect(DENIED_NAME_WORDS).toEqual(expect.arrayContaining(['管理员', '官方', '客服']))
    expect(validateDisplayName('群管理员')).toEqual({ ok: false, reason: 'denied', word: '管理员' })
    expect(deniedNameWord('官 方 号')).toBe('官方')
    expect(deniedNameWord('Ａｄｍｉｎ')).toBe('admin')
    expect(deniedNameWord('the admin')).toBe('admin')
    expect(deniedNameWord('badminton')).toBeUndefined()
    // the hook can be replaced
    expect(validateDisplayName('Bob', (n) => (n === 'Bob' ? 'Bob' : undefined))).toEqual({
      ok: false,
      reason: 'denied',
      word: 'Bob',
    })
  })

  it('tags a member without a name by a short stable hash, not a piece of the openid', () => {
    const tag = nameTag('o6_bmjrPTlm6_2sgVt7hMZOPfL2M')
    expect(tag).toMatch(/^[0-9a-f]{4}$/)
    expect(nameTag('o6_bmjrPTlm6_2sgVt7hMZOPfL2M')).toBe(tag)
    expect('o6_bmjrPTlm6_2sgVt7hMZOPfL2M'.toLowerCase()).not.toContain(tag)
    expect(nameTag('o_friend')).not.toBe(nameTag('o_frienc'))
  })
})
