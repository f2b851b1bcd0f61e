/**
 * The byte budget of a text message. WeChat takes a passive text reply's `Content` only up to
 * 2048 UTF-8 bytes (the passive-reply doc's limit; SDK maintainers report 2047 as the largest that
 * arrives) and answers a longer one with nothing or 「该公众号暂时无法提供服务」; a customer-service
 * `text.content` — where a reply that missed the deadline goes — is reported to stop at the same
 * 2048 bytes. One budget serves both. Portable: TextEncoder only.
 */

/** The most UTF-8 bytes a text message's content may have (one under the documented 2048). */
export const TEXT_MAX_BYTES = 2047

const encoder = new TextEncoder()

/** The UTF-8 length of `s` (a lone surrogate counts as U+FFFD's 3 bytes, as TextEncoder writes it). */
export function utf8Bytes(s: string): number {
  return encoder.encode(s).length
}

/** What {@link fitText} made of a text. */
export interface FittedText {
  content: string
  /** Whether anything was cut. */
  cut: boolean
  /** The UTF-8 length of the text as given. */
  bytes: number
}

/**
 * `content` if it fits `maxBytes`, else its longest head that fits with `marker` on a line of its
 * own: cut after the last whole line that fits, or — when even the first line does not — at the
 * last whole grapheme (never inside a surrogate pair, an emoji sequence or a base + mark).
 * @example fitText(longList, { marker: '…（未显示完）' }).content
 */
export function fitText(
  content: string,
  options: { marker: string; maxBytes?: number },
): FittedText {
  const maxBytes = options.maxBytes ?? TEXT_MAX_BYTES
  const bytes = utf8Bytes(content)
  if (bytes <= maxBytes) return { content, cut: false, bytes }
  const tail = `\n${options.marker}`
  const end = fittingPrefix(content, maxBytes - utf8Bytes(tail))
  const line = content.lastIndexOf('\n', end)
  const kept = line > 0 && line <= end ? content.slice(0, line) : graphemeHead(content, end)
  const head = kept.trimEnd()
  return { content: head ? `${head}${tail}` : options.marker, cut: true, bytes }
}

/** The UTF-16 length of the longest prefix of `s` (ending on a code point) within `room` bytes. */
function fittingPrefix(s: string, room: number): number {
  let used = 0
  let i = 0
  while (i < s.length) {
    const cp = s.codePointAt(i)!
    const size = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4
    if (used + size > room) break
    used += size
    i += cp > 0xffff ? 2 : 1
  }
  return i
}

/**
 * `s` up to `end`, backed off to the last grapheme boundary at or before it. Only the stretch
 * around the cut is segmented (a cluster longer than that is cut at a code point).
 */
function graphemeHead(s: string, end: number): string {
  const Segmenter = (Intl as { Segmenter?: typeof Intl.Segmenter }).Segmenter
  if (!Segmenter) return s.slice(0, end)
  const from = Math.max(0, end - 64)
  const window = s.slice(from, Math.min(s.length, end + 64))
  let boundary = from
  for (const { index } of new Segmenter(undefined, { granularity: 'grapheme' }).segment(window)) {
    if (from + index > end) break
    boundary = from + index
  }
  // The window's first segment may start mid-cluster; a boundary at its start is trusted only
  // when it is the text's start or there is no later one.
  return s.slice(0, boundary === from && from > 0 ? end : boundary)
}
