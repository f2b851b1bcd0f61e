/**
 * The console's language: Chinese by default, English on request (`?lang=en` sets a cookie, the
 * switch in the header flips it). `t(key, { name })` fills `{name}` placeholders.
 */
import { en } from './messages/en.js'
import { type MessageKey, zhCN } from './messages/zh-CN.js'

export type Lang = 'zh-CN' | 'en'
export type { MessageKey }

/** Looks up a message and fills its placeholders. */
export type Translate = (key: MessageKey, params?: Record<string, string | number>) => string

const CATALOGS: Record<Lang, Record<MessageKey, string>> = { 'zh-CN': zhCN, en }

/** The translator for `lang`. */
export function consoleTranslator(lang: Lang): Translate {
  const catalog = CATALOGS[lang]
  return (key, params) => {
    const text = catalog[key]
    return params ? text.replace(/\{(\w+)\}/g, (m, k: string) => String(params[k] ?? m)) : text
  }
}

/** `zh-CN` or `en` from a query or cookie value; undefined for anything else. */
export function parseLang(value: string | undefined): Lang | undefined {
  if (value === 'en' || value === 'zh-CN') return value
  return undefined
}
