/**
 * The bot router: commands by keyword (Chinese and English aliases), regular expressions, events
 * and message types, and a fallback. Handlers in `handlers/` register themselves here; the router
 * knows its commands so `帮助` can list what exists.
 */
import { isEvent } from '../wechat/message.js'
import type { Reply } from '../wechat/reply.js'
import type { BotContext } from './context.js'
import type { MessageKey } from './i18n.js'

/** A handler answers with a reply, or nothing (→ `success`). */
export type Handler = (
  ctx: BotContext,
) => Promise<Reply | null | undefined> | Reply | null | undefined

/** The groups `帮助` lists commands under, in this order. */
export const COMMAND_GROUPS = [
  'daily',
  'points',
  'invite',
  'activity',
  'settings',
  'moderator',
] as const
export type CommandGroup = (typeof COMMAND_GROUPS)[number]

/** A command as `帮助` lists it. */
export interface CommandSpec {
  /** Keywords; the first is shown first. Matched case-insensitively, with or without a leading `/`. */
  names: string[]
  /** Message key of the one-line description (`帮助 <指令>`). */
  description: MessageKey
  /** Where `帮助` lists it; absent = not listed (帮助 itself). */
  group?: CommandGroup
  /** Message key of the argument placeholder `帮助` shows after the name, e.g. `<代码>`. */
  args?: MessageKey
  /**
   * Who the command is for: `moderator` commands are listed only to moderators. The handler still
   * checks (and audits) the speaker itself. Default `everyone`.
   */
  scope?: 'everyone' | 'moderator'
}

type EventName = string

/** A routed push: the reply, and what answered it. */
export interface Answered {
  reply: Reply | null
  handler: string | null
}

const answered = (handler: string, reply: Reply | null | undefined): Answered => ({
  reply: reply ?? null,
  handler,
})

/** Routes a push to the first matching handler. */
export class Router {
  readonly #commands: { spec: CommandSpec; handler: Handler }[] = []
  /** Every name of every command, normalised: a push's word is one lookup. */
  readonly #byName = new Map<string, { spec: CommandSpec; handler: Handler }>()
  /** Han-script names, normalised, in registration order (typed without a space: `兑换3`). */
  readonly #prefixes: { name: string; command: { spec: CommandSpec; handler: Handler } }[] = []
  readonly #hears: { pattern: RegExp; handler: Handler }[] = []
  readonly #on = new Map<EventName, Handler>()
  #otherwise: Handler | undefined
  /** {@link commands}' list, until the next command is registered. */
  #specs: readonly CommandSpec[] | undefined

  /**
   * Registers a command.
   * @example router.command({ names: ['签到', 'checkin'], description: 'command.checkin' }, checkin)
   */
  command(spec: CommandSpec, handler: Handler): this {
    for (const name of spec.names) {
      if (this.#findCommand(name)) throw new Error(`command ${name} is registered twice`)
    }
    const command = { spec, handler }
    this.#commands.push(command)
    this.#specs = undefined
    for (const name of spec.names) {
      const n = normalize(name)
      this.#byName.set(n, command)
      if (/^\p{Script=Han}/u.test(n)) this.#prefixes.push({ name: n, command })
    }
    return this
  }

  /** Registers a regular expression tried on the text after commands. */
  hears(pattern: RegExp, handler: Handler): this {
    this.#hears.push({ pattern, handler })
    return this
  }

  /**
   * Registers a handler for events (`subscribe`, `SCAN`, `CLICK` …) or message types (`image` …).
   * Events are matched by their exact `Event` value.
   */
  on(names: EventName | EventName[], handler: Handler): this {
    for (const name of [names].flat()) this.#on.set(name, handler)
    return this
  }

  /** The handler for ordinary messages nothing else matched. Events never fall through to it. */
  otherwise(handler: Handler): this {
    this.#otherwise = handler
    return this
  }

  /** Commands in registration order (for help: listed on every 帮助, made once). */
  commands(): readonly CommandSpec[] {
    this.#specs ??= Object.freeze(this.#commands.map((c) => c.spec))
    return this.#specs
  }

  /** The command a word names (any alias, as matching does), if any. */
  find(word: string): CommandSpec | undefined {
    return this.#findCommand(word)?.spec
  }

  /** The text a push is matched on. */
  static textOf(message: BotContext['message']): string {
    if (message.type === 'text') return message.content.trim()
    if (message.type === 'voice')
      return (message.recognition ?? '').replace(/[。！？.!?]+$/u, '').trim()
    if (message.type === 'event' && message.event === 'CLICK') return message.eventKey.trim()
    return ''
  }

  /**
   * Runs the matching handler; null when nothing matched or it had nothing to say.
   */
  async route(ctx: BotContext): Promise<Reply | null> {
    return (await this.answer(ctx)).reply
  }

  /**
   * {@link route}, also naming what answered (a command's first name, `hears:<pattern>`,
   * `on:<event>`, `otherwise`; null when nothing matched) for what the caller logs about the reply.
   * `ctx` is this call's own: a command's `args` or a pattern's `match` is written into it for the
   * handler (a copy of the whole context per push cost more than the command's lookup;
   * bench/README.md, session 44).
   */
  async answer(ctx: BotContext): Promise<Answered> {
    const m = ctx.message
    const event = isEvent(m) ? m.event : m.type
    const byType = this.#on.get(event)
    if (byType) return answered(`on:${event}`, await byType(ctx))
    if (m.type === 'unknown') return { reply: null, handler: null }

    const text = ctx.text
    if (text) {
      // Most pushes are one word (a command): split only text with a space in it.
      const [word = '', ...rest] = SPACE.test(text) ? text.split(/\s+/) : [text]
      const command = this.#findCommand(word) ?? this.#findPrefixCommand(text)
      if (command) {
        const args = rest.length > 0 ? rest.join(' ') : text.slice(command.matched.length).trim()
        ctx.args = args
        return answered(command.spec.names[0] ?? command.matched, await command.handler(ctx))
      }
      for (const { pattern, handler } of this.#hears) {
        const match = pattern.exec(text)
        if (match) {
          ctx.match = match
          return answered(`hears:${pattern}`, await handler(ctx))
        }
      }
    }
    if (isEvent(m) || !this.#otherwise) return { reply: null, handler: null }
    return answered('otherwise', await this.#otherwise(ctx))
  }

  #findCommand(word: string) {
    // The word as sent first: a command's name as registered (lower case, no slash) is found
    // without lower-casing it — for a Chinese word a runtime call on every push. What it finds is
    // what the normalised word finds (lower-casing a lower-case name changes nothing).
    const first = word.charCodeAt(0)
    const found =
      (first !== 0x2f && first !== 0xff0f && this.#byName.get(word)) ||
      this.#byName.get(normalize(word))
    return found ? { spec: found.spec, handler: found.handler, matched: word } : undefined
  }

  /** Chinese commands are often typed without a space: `兑换3` → `兑换` with args `3`. */
  #findPrefixCommand(text: string) {
    const lower = normalize(text)
    for (const { name, command } of this.#prefixes) {
      if (lower.startsWith(name)) {
        const matched = text.slice(0, text.length - (lower.length - name.length))
        return { spec: command.spec, handler: command.handler, matched }
      }
    }
    return undefined
  }
}

const SPACE = /\s/

/** A command word as matched: a leading `/` or `／` dropped, lower case. */
function normalize(word: string): string {
  // By its first character, not a regular expression: every push's first word comes here.
  const first = word.charCodeAt(0)
  return (first === 0x2f || first === 0xff0f ? word.slice(1) : word).toLowerCase()
}
