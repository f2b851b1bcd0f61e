/**
 * This process's memory of final answers to signed pushes, for WeChat's resends: the answers it
 * read for a resend, and those it gave late enough to be resent ({@link mayBeResent}).
 *
 * WeChat resends a push it got no answer to in time as the same request — same query (timestamp,
 * nonce, signature), same body (protocol reference §1.4). The database decides such a resend in one
 * statement: the replay cache finds the (timestamp, nonce) with the same body digest (`retry`) and
 * the dedupe ledger finds the push answered, with the bytes that were sent. Once a push is
 * `replied` or `failed` those bytes never change (inbound-events.ts), so the answer to an exact
 * resend is known here the moment the first delivery's answer is stored or read, and this memo
 * gives it without the statement. Dispatch remembers an answer it read for a resend, and one it
 * gave late enough to be resent ({@link mayBeResent}); not the answers given within a second.
 *
 * Not a shared decision: it holds only answers the database already settled, keyed by the exact
 * stamp. An instance without the entry asks the database, which stays the authority; another
 * body under the same timestamp and nonce has another digest, misses, and is refused there; a push
 * still being worked on (or deferred past the deadline) is never remembered. Bounded by entries,
 * bytes and age: WeChat's resends come within seconds, and a miss only costs the statement.
 * The database forgets sooner than this memo only where the webhook's freshness check is turned
 * off (`WECHAT_MAX_SKEW_SECONDS=0`) and a week-old request is resent within a minute of the daily
 * prune: then this memo still answers it as before, where the database would take it as new.
 */
import { LRUCache } from 'lru-cache'
import type { InboundStatus } from '../db/schema.js'
import type { ReplayStamp } from '../wechat/envelope.js'

/** A final answer: what was sent (null for `success`) and the status it was stored with. */
export interface Answer {
  body: string | null
  status: Extract<InboundStatus, 'replied' | 'failed'>
}

/** Sizes of the memo; the defaults suit one process. */
export interface AnsweredOptions {
  /** Most answers kept (default 10,000). */
  max?: number
  /** Most bytes of keys and bodies kept, counted as UTF-16 (default 4 MiB). */
  maxBytes?: number
  /** How long an answer is kept, ms (default 60 s: WeChat's three deliveries span about 15 s). */
  ttlMs?: number
  /** The clock ages are measured on (ms; default `performance.now`). */
  now?: () => number
}

/**
 * How long after a request reached this process an answer counts as late enough for WeChat to
 * resend its push ({@link mayBeResent}).
 */
export const RESEND_LIKELY_AFTER_MS = 1_000

/**
 * Whether WeChat may ask again for the answer to a request that reached this process at
 * `receivedAt` (epoch ms, what the reply deadline counts from) and was answered at `now`, late
 * after `afterMs`. WeChat resends a push only when no answer reached it within 5 s, so one
 * answered within a second of its arrival is almost never asked for again — only when the answer
 * was lost on its way back, or the request spent seconds before this process read it (on the
 * network, or in the socket's queue behind an event loop held up that long). Such answers are not
 * worth remembering: an entry for each costs every push a copy, its bytes in the old space and the
 * collector's work on them, for a resend that rarely comes. That resend costs one statement (the
 * claim statement reads the stored answer), and what it read is remembered for the next delivery,
 * 5 s later. The request's signed `timestamp` would also see the time before arrival, but it is on
 * WeChat's clock, in whole seconds: a clock seconds ahead of WeChat's would count every answer
 * late, one behind would miss the lateness it is there for.
 */
export const mayBeResent = (
  receivedAt: number,
  now: number,
  afterMs = RESEND_LIKELY_AFTER_MS,
): boolean => now - receivedAt >= afterMs

/** The memo: `get` before the claim statement, `remember` once an answer is final. */
export interface AnsweredPushes {
  get(appid: string, stamp: ReplayStamp): Answer | undefined
  /** How many answers it holds (expired ones until they are dropped). */
  readonly size: number
  remember(appid: string, stamp: ReplayStamp, answer: Answer): void
}

/**
 * @example
 * const answered = answeredPushes()
 * const known = stamp && answered.get(appid, stamp) // a resend answered before: no statement
 */
export function answeredPushes(options: AnsweredOptions = {}): AnsweredPushes {
  const ttl = options.ttlMs ?? 60_000
  const clock = options.now ?? (() => performance.now())
  /** When the newest answer was remembered (`clock`): once it is older than `ttl`, all are. */
  let newest = Number.NEGATIVE_INFINITY
  const cache = new LRUCache<string, Answer>({
    max: options.max ?? 10_000,
    maxSize: options.maxBytes ?? 4 * 2 ** 20,
    // Two bytes a character (Chinese replies are UTF-16 strings) and an entry's own objects.
    sizeCalculation: (answer, key) => 2 * (key.length + (answer.body?.length ?? 0)) + 96,
    ttl,
    // Checks age against `clock` each time instead of caching it behind a timer
    // (Workers allow no timers outside a request).
    ttlResolution: 0,
    perf: { now: clock },
  })
  // A template, not an array joined: a fifth of the time, and no array per push.
  const keyOf = (appid: string, s: ReplayStamp) =>
    `${appid}\u0000${s.timestamp}\u0000${s.nonce}\u0000${s.digest}`
  return {
    // Most often empty (answers given at once are not kept): then no key is built, nor looked up.
    // lru-cache counts an expired entry until its own key is asked for: once the newest entry is
    // past its age, every one is, and they are dropped here.
    get(appid, stamp) {
      if (cache.size === 0) return undefined
      if (clock() - newest > ttl) {
        cache.clear()
        return undefined
      }
      return cache.get(keyOf(appid, stamp))
    },
    /** How many answers it holds (expired ones until they are dropped). */
    get size() {
      return cache.size
    },
    remember(appid, stamp, answer) {
      const body = answer.body === null ? null : ownCopy(answer.body)
      cache.set(keyOf(appid, stamp), { body, status: answer.status })
      newest = clock()
    },
  }
}

/**
 * A copy of a string that holds none of its parts. The reply body is built from slices of the
 * push's own strings (the openid out of the decrypted XML and the like): kept as it is, each entry
 * held its request's strings alive — the old space measured 24–27 MB larger after a 60 s load
 * (`npm run bench:memory`), against 3.5–4.3 MB with a copy. Slicing a concatenation makes V8
 * flatten it into one new string (2.5 µs for a 1.6 kB reply, against 20 µs for a JSON round trip).
 */
const ownCopy = (s: string): string => ` ${s}`.slice(1)
