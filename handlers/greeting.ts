/**
 * Greetings (你好, 在吗, hi, hello …): a friendly intro with a few commands to try, instead of the
 * fallback's "I did not understand".
 */
import type { Router } from '../src/bot/router.js'
import { text } from '../src/wechat/reply.js'

/** A whole message that only says hello, with any trailing particles and punctuation. */
export const GREETING =
  /^(?:你好|您好|你们好|大家好|哈喽|哈啰|哈罗|嗨|在吗|在么|在不在|有人吗|早|早安|早上好|上午好|中午好|下午好|晚上好|hi|hello|hey|hallo|hiya|yo|good (?:morning|afternoon|evening))(?:\s*(?:[呀啊哇吖鸭哦吗呢嘛~～!！。.,，?？]|there|all|everyone|😊|👋|🙂))*$/iu

export function register(router: Router): void {
  router.hears(GREETING, (ctx) => text(ctx.t('greeting')))
}
