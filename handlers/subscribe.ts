/** Follow events: a welcome, naming the QR scene when the follow came through one. */
import type { Router } from '../src/bot/router.js'
import { text } from '../src/wechat/reply.js'

export function register(router: Router): void {
  router.on('subscribe', (ctx) => {
    const m = ctx.message
    const scene = m.type === 'event' && m.event === 'subscribe' ? m.scene : null
    return text(scene ? ctx.t('welcome.scene', { scene }) : ctx.t('welcome'))
  })
}
