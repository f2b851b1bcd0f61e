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
    t = build(catalogs[locale], locale)
    translators.set(locale, t)
  }
  return t
}

const translators = new Map<Locale, Translate>()

/**
 * `{name}` is the parameter; `{name|one|other}` is the word for its number in the locale's plural
 * rules (en: `{n} {n|day|days}` → "1 day", "2 days"), so no message says "1 days".
 */
function build(catalog: Record<MessageKey, string>, locale: Locale): Translate {
  const plural = new Intl.PluralRules(locale)
  return (key, params = {}) =>
    catalog[key].replace(
      /\{(\w+)(?:\|([^|}]*)\|([^}]*))?\}/g,
      (m, name: string, one?: string, other?: string) => {
        if (!(name in params)) return m
        if (one === undefined) return String(params[name])
        return plural.select(Number(params[name])) === 'one' ? one : other!
      },
    )
}
