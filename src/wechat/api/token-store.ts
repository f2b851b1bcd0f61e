/**
 * Where access tokens are kept between calls and between processes. The token provider reads the
 * stored token on every cache miss and refreshes under the store's per-AppID lock, so processes
 * cold-starting together fetch once. The database implementation is `databaseTokenStore`
 * (src/community/token-store.ts); a memory one for tests is in test/memory-stores.ts.
 */

/** A token as stored. */
export interface StoredToken {
  token: string
  /** When WeChat stops accepting it (or when it was expired early by {@link TokenStore.expire}). */
  expiresAt: Date
}

/** What {@link TokenStore.refresh} asks while it holds the lock. */
export interface TokenRefresh {
  /** Whether the stored token may be kept rather than replaced. */
  isFresh(stored: StoredToken): boolean
  /** Fetches a new token from WeChat. */
  fetch(): Promise<StoredToken>
}

/**
 * Access tokens by key (the AppID, or `wecom:<corpid>`), shared by every process using the same
 * store.
 *
 * Invariants every implementation keeps:
 * - `read` never waits for a refresh in progress; it returns the last token written, or undefined
 *   when none has been.
 * - `refresh` holds the key's lock while it runs: for one key, at most one `refresh` body runs at a
 *   time across all processes. Under the lock it reads the stored token again (another holder may
 *   just have replaced it), returns it if `isFresh` says so, and otherwise calls `fetch` once and
 *   writes its token before releasing the lock. If `fetch` throws, nothing is written, the lock is
 *   released and the error propagates.
 * - `expire` is compare-and-expire: it moves the expiry to now only if `token` is still the stored
 *   one, so a late report about an old token never expires its replacement.
 */
export interface TokenStore {
  /** The stored token for `key`, or undefined. */
  read(key: string): Promise<StoredToken | undefined>
  /** Keeps or replaces the stored token under the key's lock; returns the token stored after it. */
  refresh(key: string, refresh: TokenRefresh): Promise<StoredToken>
  /** Expires `token` now if it is still the one stored for `key`. */
  expire(key: string, token: string): Promise<void>
}
