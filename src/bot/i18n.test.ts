/**
 * The bot's translator: parameters, and the plural word of a number (`{n|one|other}`), so English
 * never says "1 days" (a member trial found "Streak: 1 days", "at most 1 times").
 */
import { describe, expect, it } from 'vitest'
import { translator } from './i18n.js'
import { en } from './messages/en.js'

describe('translator', () => {
  const t = translator('en')

  it('says one day, two days: the plural word follows the number', () => {
    expect(t('checkin.done', { points: 5, streak: 1 })).toBe(
      'Checked in ✅ +5 points\nStreak: 1 day',
    )
    expect(t('checkin.done', { points: 5, streak: 2 })).toBe(
      'Checked in ✅ +5 points\nStreak: 2 days',
    )
    expect(t('redeem.limit', { name: 'Tea', limit: 1 })).toBe(
      '"Tea" can be redeemed at most 1 time per member.',
    )
    expect(t('me.month', { days: 1, used: 0, limit: 2 })).toBe(
      'This month: 1 check-in, 0/2 make-ups',
    )
    expect(t('checkin.done', { points: 5, streak: 0 })).toContain('Streak: 0 days')
    expect(t('invite.paid', { points: 1, balance: 1 })).toBe(
      '🎉 A friend you invited joined: +1 point, balance 1',
    )
  })

  it('leaves an unknown parameter visible, with or without plural words', () => {
    expect(t('checkin.done', { points: 5 })).toBe(
      'Checked in ✅ +5 points\nStreak: {streak} {streak|day|days}',
    )
  })

  it('has no English message that puts a number before a plural noun by hand', () => {
    // "{n} days", "{n} times", "{n} check-ins" — 1 would read "1 days"
    const offenders = Object.entries(en).filter(([, text]) =>
      /\{\w+\} (?:days|times|check-ins|points|minutes)\b/.test(text),
    )
    expect(offenders).toEqual([])
  })

  it('zh-CN is unchanged by the plural syntax', () => {
    expect(translator('zh-CN')('checkin.done', { points: 5, streak: 1 })).toContain('1')
  })
})
