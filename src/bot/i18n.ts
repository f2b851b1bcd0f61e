/** Looks up bot copy by key in the account's locale and fills `{name}` parameters. */
import { en } from './messages/en.js'
import { type MessageKey, zhCN } from './messages/zh-CN.js'

export type { MessageKey }
export type Locale = 'zh-CN' | 'en'
/** Translates a key with parameters. */
export type Translate = (key: MessageKey, params?: Record<string, string | number>) => string

const catalogs: Record<Locale, Record<MessageKey, string>> = { 'zh-CN': zhCN, en }

/**
 * A translator for one locale. Unknown parameters are left as `{name}` so a mistake is visible.
 * @example translator('en')('fallback.text', { text: 'hi' })
 */
export function translator(locale: Locale): Translate {
  const catalog = catalogs[locale]
  return (key, params = {}) =>
    catalog[key].replace(/\{(\w+)\}/g, (m, name: string) =>
      name in params ? String(params[name]) : m,
    )
}
