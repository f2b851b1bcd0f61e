/** Anything the router did not understand gets a friendly pointer to 帮助. */
import type { Router } from '../src/bot/router.js'
import { text } from '../src/wechat/reply.js'

/** Characters of the member's text quoted back (user-perceived characters: graphemes). */
const MAX_ECHO = 20
const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' })

export function register(router: Router): void {
  router.otherwise((ctx) => {
    if (!ctx.text) return text(ctx.t('fallback.media'))
    // cut between characters as the member sees them, never inside an emoji
    const shown = [...graphemes.segment(ctx.text)].map((g) => g.segment)
    const echo = shown.length > MAX_ECHO ? `${shown.slice(0, MAX_ECHO).join('')}…` : ctx.text
    return text(ctx.t('fallback.text', { text: echo }))
  })
}
