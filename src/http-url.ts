/**
 * Whether `u` is an absolute http(s) URL written exactly as the URL parser writes it back, so it
 * holds no whitespace, control characters or anything a parser would silently drop or re-encode —
 * safe for a `Location` header, a template message and a news article.
 * @example isHttpUrl('https://your.host/points') // true
 * @example isHttpUrl('https://your.host/\r\nSet-Cookie: x') // false
 */
export function isHttpUrl(u: string): boolean {
  if (u.length > 2048) return false
  let url: URL
  try {
    url = new URL(u)
  } catch {
    return false
  }
  return (url.protocol === 'https:' || url.protocol === 'http:') && url.href === u
}
