/** Anything the router did not understand gets a friendly pointer to 帮助. */
import type { Router } from '../src/bot/router.js'
import { text } from '../src/wechat/reply.js'

const MAX_ECHO = 20

export function register(router: Router): void {
  router.otherwise((ctx) => {
    if (!ctx.text) return text(ctx.t('fallback.media'))
    const echo = ctx.text.length > MAX_ECHO ? `${ctx.text.slice(0, MAX_ECHO)}…` : ctx.text
    return text(ctx.t('fallback.text', { text: echo }))
  })
}
