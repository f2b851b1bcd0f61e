/**
 * `bodySize({ maxBytes })`: 413 for bodies over the limit. With a Content-Length (what WeChat
 * sends) the header decides and the body is left untouched — the HTTP parser never delivers more
 * than the declared length, and on Node the body can then be read without building a web stream.
 * Chunked bodies fall back to Hono's streaming `bodyLimit`, which stops reading at the limit.
 * A 413 says `Connection: close`: the unread rest of the body would otherwise hold the socket until
 * the Node adapter gives up draining it and destroys it under the client's next request.
 */
import type { Context, MiddlewareHandler } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { HTTPException } from 'hono/http-exception'

export interface BodySizeOptions {
  maxBytes: number
}

export function bodySize(options: BodySizeOptions): MiddlewareHandler {
  const tooLarge = (c: Context): never => {
    // The rest of the body is not read: the connection cannot carry another request.
    c.header('Connection', 'close')
    throw new HTTPException(413, { message: `body larger than ${options.maxBytes} bytes` })
  }
  const streaming = bodyLimit({ maxSize: options.maxBytes, onError: tooLarge })
  // Not async: nothing to do after the rest (a middleware that awaits `next()` costs every request
  // an async frame and its promises; bench/README.md, session 37).
  return function bodySizeMiddleware(c, next) {
    const length = c.req.header('content-length')
    if (length !== undefined && c.req.header('transfer-encoding') === undefined) {
      if (!/^\d+$/.test(length) || Number(length) > options.maxBytes) tooLarge(c)
      return next()
    }
    return streaming(c, next)
  }
}
