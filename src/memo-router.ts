/**
 * `MemoRouter`: Hono's default router with its matches remembered by method and path. The app's
 * 180-odd routes cannot all go into Hono's RegExpRouter (in Hono 4.13 it refuses a parameter beside
 * a literal segment or another parameter at the same place, e.g. `/console/campaigns/new` and
 * `/console/campaigns/:id{[0-9]+}`: 13 of the app's patterns), so its SmartRouter falls back to the
 * TrieRouter, which walks the tree and sorts the matched handlers on every request: 5–8 µs and
 * 3 KB a push in process, 3 µs of the server's CPU a push over HTTP (bench/README.md, session 43).
 * A request's match depends on its method and path alone (Hono matches a HEAD as a GET and hands
 * the router the path without its query), and most requests ask for a few paths (`POST /wechat`
 * above all): the second asks for a match already made.
 *
 * Bounded: at most {@link MEMO_ROUTES} matches are kept, and all are dropped when it is full (a scan
 * of unknown paths costs the hot paths one match each per {@link MEMO_ROUTES} requests); paths
 * longer than {@link MEMO_PATH_MAX} are matched every time. Hono only reads a match (its handlers,
 * each with its parameters — values, or places in a stash of values — decoded when asked for), so
 * one match can serve many requests. Runtime-neutral (Node and Workers).
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
  readonly #inner: Router<T>
  readonly #matches = new Map<string, Result<T>>()

  constructor(
    inner: Router<T> = new SmartRouter({ routers: [new RegExpRouter(), new TrieRouter()] }),
  ) {
    this.#inner = inner
  }

  /** The router it remembers for, as it names itself (a SmartRouter names its choice once made). */
  get name(): string {
    return `MemoRouter(${this.#inner.name})`
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
