/**
 * The console's one pager. Lists paged by row id (`?before=`, newest first) show `← 最新 · 更早 →`
 * (`Pager`); the few lists in another order (groups by size, moderators by key) page by offset with
 * the same look, `← 上一页 · 下一页 →` (`OffsetPager`). Links keep the request's `?appid=` and the
 * list's filters (`keep`), never one-off notices (`?saved=`, `?done=` …).
 */
import type { ConsoleContext } from '../context.js'

/** Where a pager's links point: the list's path, the query parameters kept, an anchor. */
interface Target {
  c: ConsoleContext
  /** The list's page (default: the request's path; give it when a POST may render the list). */
  path?: string
  /** Query parameters kept besides `appid`: the list's filters. */
  keep?: readonly string[]
  /** The list's element id, scrolled to (`#ledger`). */
  anchor?: string
  /** The navigation's accessible name (default: 翻页); name each when a page has two lists. */
  label?: string
}

/**
 * `path` (default: the request's) with the request's `appid` and `keep` parameters, and `set`
 * (a parameter set, or dropped when undefined).
 * @example listHref(c, { keep: ['state'] }, { before: '42' })
 * // on /console/rewards/transfers?state=fail&saved=1 → /console/rewards/transfers?state=fail&before=42
 */
export function listHref(
  c: ConsoleContext,
  to: Pick<Target, 'path' | 'keep' | 'anchor'>,
  set: Record<string, string | undefined> = {},
): string {
  const q = new URLSearchParams()
  for (const k of ['appid', ...(to.keep ?? [])]) {
    const v = c.req.query(k)
    if (v && !(k in set)) q.set(k, v)
  }
  for (const [k, v] of Object.entries(set)) if (v !== undefined) q.set(k, v)
  const query = q.toString()
  const path = to.path ?? new URL(c.req.url).pathname
  return `${path}${query ? `?${query}` : ''}${to.anchor ? `#${to.anchor}` : ''}`
}

/** `path` with the request's `?appid=` kept and `set` added, for links, forms and redirects. */
export const keepAccount = (c: ConsoleContext, path: string, set: Record<string, string> = {}) =>
  listHref(c, { path }, set)

/** The `?before=` row id of a keyset-paged list (0: the newest page). */
export function beforeOf(c: ConsoleContext): number {
  const text = c.req.query('before') ?? ''
  return /^\d{1,15}$/.test(text) ? Number(text) : 0
}

/** A list's `?<param>=` offset (0 when absent or not a whole number). */
export function offsetOf(c: ConsoleContext, param: string): number {
  const raw = c.req.query(param) ?? ''
  return /^\d{1,7}$/.test(raw) ? Number(raw) : 0
}

/** The links' look: back (when there is a page before) · forward (when there is one after). */
function Links(p: { label: string; back?: [string, string]; forward?: [string, string] }) {
  if (!p.back && !p.forward) return null
  return (
    <nav class="pager" aria-label={p.label}>
      {p.back && <a href={p.back[0]}>← {p.back[1]}</a>}
      {p.back && p.forward && ' · '}
      {p.forward && (
        <a href={p.forward[0]} rel="next">
          {p.forward[1]} →
        </a>
      )}
    </nav>
  )
}

/**
 * Links to the newest page (when this one is older) and to the next older page of a list paged by
 * row id. `older` is the id the older page starts before — the last row shown — when there is one.
 * @example <Pager c={c} keep={['state']} older={more ? rows.at(-1)?.id : undefined} />
 */
export function Pager(p: Target & { older: number | undefined }) {
  const { t } = p.c.var
  return (
    <Links
      label={p.label ?? t('pager.label')}
      back={beforeOf(p.c) > 0 ? [listHref(p.c, p), t('pager.newest')] : undefined}
      forward={
        p.older === undefined
          ? undefined
          : [listHref(p.c, p, { before: String(p.older) }), t('pager.older')]
      }
    />
  )
}

/** Links to the previous and next page of a list paged by `?<param>=` offset, `size` rows a page. */
export function OffsetPager(
  p: Target & { param: string; offset: number; size: number; more: boolean },
) {
  const { t } = p.c.var
  const at = (n: number) => listHref(p.c, p, { [p.param]: n > 0 ? String(n) : undefined })
  return (
    <Links
      label={p.label ?? t('pager.label')}
      back={p.offset > 0 ? [at(Math.max(0, p.offset - p.size)), t('pager.previous')] : undefined}
      forward={p.more ? [at(p.offset + p.size), t('pager.next')] : undefined}
    />
  )
}
