/**
 * `memoRouter()`: Hono's default router with its matches remembered by method and path. The app's
 * 180-odd routes cannot all go into Hono's RegExpRouter (a parameter beside a literal segment at
 * the same place, e.g. `/campaigns/strategies` and `/campaigns/:id/:action`, is refused), so its
 * SmartRouter falls back to the TrieRouter, which walks the tree and sorts the matched handlers on
 * every request: some 6 µs and 3 KB a push (bench/README.md, session 43). A request's match depends
 * on its method and path alone, and most requests ask for a few paths (`POST /wechat` above all):
 * the second asks for a match already made.
 *
 * Bounded: at most {@link MEMO_ROUTES} matches are kept, and all are dropped when it is full (a scan
 * of unknown paths costs the hot paths one match each per {@link MEMO_ROUTES} requests); paths
 * longer than {@link MEMO_PATH_MAX} are matched every time. Hono only reads a match (its handlers
 * and the parameters' places in the path, decoded when asked for), so one match can serve many
 * requests. Runtime-neutral (Node and Workers).
 */
import type { Result, Router } from 'hono/router'
import { RegExpRouter } from 'hono/router/reg-exp-router'
import { SmartRouter } from 'hono/router/smart-router'
import { TrieRouter } from 'hono/router/trie-router'

/** How many matches are kept at most. */
export const MEMO_ROUTES = 256
/** Paths longer than this are not kept (a match's key is its path). */
export const MEMO_PATH_MAX = 256

/** A router that remembers `inner`'s matches; Hono's default router when none is given. */
export class MemoRouter<T> implements Router<T> {
  readonly name: string
  readonly #inner: Router<T>
  readonly #matches = new Map<string, Result<T>>()

  constructor(
    inner: Router<T> = new SmartRouter({ routers: [new RegExpRouter(), new TrieRouter()] }),
  ) {
    this.#inner = inner
    this.name = `MemoRouter(${inner.name})`
  }

  add(method: string, path: string, handler: T): void {
    this.#matches.clear()
    this.#inner.add(method, path, handler)
  }

  match(method: string, path: string): Result<T> {
    if (path.length > MEMO_PATH_MAX) return this.#inner.match(method, path)
    const key = `${method} ${path}`
    let match = this.#matches.get(key)
    if (match === undefined) {
      match = this.#inner.match(method, path)
      if (this.#matches.size >= MEMO_ROUTES) this.#matches.clear()
      this.#matches.set(key, match)
    }
    return match
  }

  /** How many matches are kept (tests). */
  get size(): number {
    return this.#matches.size
  }
}
