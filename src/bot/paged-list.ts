/**
 * List replies that grow with what operators add (活动, 兑换) fit WeChat's text budget by design:
 * a page holds as many entries as fit, and ends with how to see the next one. Pages are cut the same
 * way for every page number, so page 2 starts where page 1 stopped.
 */
import { TEXT_MAX_BYTES, utf8Bytes } from '../wechat/text-budget.js'
import type { MessageKey, Translate } from './i18n.js'

/**
 * The bytes a list reply may use: the text budget less room for a line the inbound pipeline may
 * append (a level-up), so the safety net in dispatch never has to cut a list.
 */
export const LIST_MAX_BYTES = TEXT_MAX_BYTES - 256

/** A list to page. */
export interface PagedList {
  /** Lines before the entries on every page (the title). */
  head: string[]
  /** One line (or block) per entry, in order. */
  entries: string[]
  /** Lines after the entries on every page (how to use the list). */
  tail: string[]
  /** The last line of a page that has a next one. */
  more: (page: { page: number; pages: number; next: number }) => string
  /** The last line of the last page when there are several. */
  last: (page: { page: number; pages: number }) => string
  /** 1-based. */
  page: number
  maxBytes?: number
}

/** One page's text, or how many pages there are when the one asked for is not among them. */
export type ListPage =
  | { ok: true; text: string; page: number; pages: number }
  | { ok: false; pages: number }

/**
 * The text of page `list.page`. Room for the head, the tail and the page line is kept on every
 * page; the entries fill the rest in order (an entry too big for a page alone gets one).
 * @example pageOf({ head: [title], entries, tail: [footer], more, last, page: 2 })
 */
export function pageOf(list: PagedList): ListPage {
  const maxBytes = list.maxBytes ?? LIST_MAX_BYTES
  // The widest page line there could be (page numbers of up to 4 digits).
  const pageLine = Math.max(
    utf8Bytes(list.more({ page: 9999, pages: 9999, next: 9999 })),
    utf8Bytes(list.last({ page: 9999, pages: 9999 })),
  )
  const fixed = [...list.head, ...list.tail].reduce((n, l) => n + utf8Bytes(l) + 1, pageLine)
  const room = maxBytes - fixed
  const starts = [0]
  let used = 0
  list.entries.forEach((entry, i) => {
    const size = utf8Bytes(entry) + 1
    if (used > 0 && used + size > room) {
      starts.push(i)
      used = 0
    }
    used += size
  })
  const pages = starts.length
  const { page } = list
  if (!Number.isSafeInteger(page) || page < 1 || page > pages) return { ok: false, pages }
  const entries = list.entries.slice(starts[page - 1], starts[page] ?? list.entries.length)
  const footer =
    page < pages
      ? [list.more({ page, pages, next: page + 1 })]
      : pages > 1
        ? [list.last({ page, pages })]
        : []
  return {
    ok: true,
    text: [...list.head, ...entries, ...list.tail, ...footer].join('\n'),
    page,
    pages,
  }
}

/**
 * The page a command's argument asks for: `第2页`, `2页`, `page 2`, `p2` — and a bare `2` when
 * `bare` (a list whose command takes no number otherwise). Null when the argument is no page.
 * @example pageArgument('第2页', { bare: false }) // 2
 */
export function pageArgument(args: string, options: { bare: boolean }): number | null {
  const a = args.trim()
  const m =
    /^(?:第\s*(\d+)\s*页|(\d+)\s*页|(?:page|p)\s*(\d+))$/iu.exec(a) ??
    (options.bare ? /^(\d+)$/.exec(a) : null)
  if (!m) return null
  const digits = m[1] ?? m[2] ?? m[3] ?? m[4] ?? ''
  return Number(digits)
}

/**
 * A list reply in the member's words: the page asked for with 「第 1/3 页，发送「活动 2」看下一页」,
 * or, past the last page, how many there are. `command` is the key of the command that shows a
 * page (`活动 {page}`).
 * @example listPageText(ctx.t, { head, entries, tail, page: 1, command: 'activity.page' })
 */
export function listPageText(
  t: Translate,
  list: Pick<PagedList, 'head' | 'entries' | 'tail' | 'page' | 'maxBytes'> & {
    command: MessageKey
  },
): string {
  const command = (page: number) => t(list.command, { page })
  const shown = pageOf({
    ...list,
    more: ({ page, pages, next }) => t('list.more', { page, pages, next: command(next) }),
    last: (p) => t('list.last', p),
  })
  if (shown.ok) return shown.text
  return t('list.beyond', { page: list.page, pages: shown.pages, first: command(1) })
}
