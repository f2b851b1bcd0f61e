/**
 * `bodySize({ maxBytes })`: 413 for bodies over the limit. With a Content-Length (what WeChat
 * sends) the header decides and the body is left untouched — the HTTP parser never delivers more
 * than the declared length, and on Node the body can then be read without building a web stream.
 * Chunked bodies fall back to Hono's streaming `bodyLimit`, which stops reading at the limit.
 */
import type { MiddlewareHandler } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { HTTPException } from 'hono/http-exception'

export interface BodySizeOptions {
  maxBytes: number
}

export function bodySize(options: BodySizeOptions): MiddlewareHandler {
  const tooLarge = () => {
    throw new HTTPException(413, { message: `body larger than ${options.maxBytes} bytes` })
  }
  const streaming = bodyLimit({ maxSize: options.maxBytes, onError: tooLarge })
  return async function bodySizeMiddleware(c, next) {
    const length = c.req.header('content-length')
    if (length !== undefined && c.req.header('transfer-encoding') === undefined) {
      if (!/^\d+$/.test(length) || Number(length) > options.maxBytes) tooLarge()
      return next()
    }
    return streaming(c, next)
  }
}
