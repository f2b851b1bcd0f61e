/**
 * `clientAddress({ peer, trustedProxyHops })`: puts the client's address on the context as
 * `c.var.clientAddress` (for the audit log and rate limits). `peer` is injected by the entry — on
 * Node the socket's remote address (`getConnInfo`), on Workers `CF-Connecting-IP` — so this file
 * stays runtime-neutral. Behind `trustedProxyHops` reverse proxies that append to
 * `X-Forwarded-For`, the address is the one the outermost trusted proxy saw (entries further left
 * were written by the client and are not believed). `unknown` when there is no peer.
 */
import type { Context, MiddlewareHandler } from 'hono'

declare module 'hono' {
  interface ContextVariableMap {
    /** The client's address as far as it can be trusted (see {@link clientAddress}). */
    clientAddress: string
  }
}

/** Where a request came from: the peer's address, if the runtime tells. */
export type PeerAddress = (c: Context) => string | undefined

export interface ClientAddressOptions {
  peer?: PeerAddress
  /** Reverse proxies in front that append the address they saw to X-Forwarded-For (0 = none). */
  trustedProxyHops?: number
}

/** The client's address from the peer and `X-Forwarded-For`, trusting `hops` proxies. */
export function resolveClientAddress(
  peer: string | undefined,
  forwardedFor: string | undefined,
  hops: number,
): string {
  const chain = [
    ...(hops > 0 && forwardedFor ? forwardedFor.split(',').map((s) => s.trim()) : []),
    peer ?? 'unknown',
  ]
  const address = chain[Math.max(0, chain.length - 1 - hops)] || 'unknown'
  return address.length <= 64 && /^[\w.:%-]+$/.test(address) ? address : 'invalid'
}

export function clientAddress(options: ClientAddressOptions = {}): MiddlewareHandler {
  const hops = options.trustedProxyHops ?? 0
  // Not async: it has nothing to do after the rest (one promise fewer a request), and
  // X-Forwarded-For is read only when a proxy in front is trusted to write it.
  return function clientAddressMiddleware(c, next) {
    let peer: string | undefined
    try {
      peer = options.peer?.(c)
    } catch {
      peer = undefined
    }
    const forwardedFor = hops > 0 ? c.req.header('x-forwarded-for') : undefined
    c.set('clientAddress', resolveClientAddress(peer, forwardedFor, hops))
    return next()
  }
}
