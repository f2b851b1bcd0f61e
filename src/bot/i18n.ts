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
  let t = translators.get(locale)
  if (!t) {
    t = build(catalogs[locale])
    translators.set(locale, t)
  }
  return t
}

const translators = new Map<Locale, Translate>()

function build(catalog: Record<MessageKey, string>): Translate {
  return (key, params = {}) =>
    catalog[key].replace(/\{(\w+)\}/g, (m, name: string) =>
      name in params ? String(params[name]) : m,
    )
}
