/**
 * A lean HTTP client for the WeChat API on Node, injected by the Node entry like `node:crypto`.
 * Node's global fetch builds web streams, abort signals and transferables for every request and
 * spent more than half of the outbox dispatcher's CPU; this keeps connections alive with
 * `node:http(s)` agents and returns just status and text, which is all the API client reads.
 */
import http from 'node:http'
import https from 'node:https'
import type { FetchLike } from './wechat/api/client.js'

const agents = {
  'http:': new http.Agent({ keepAlive: true, maxSockets: 128 }),
  'https:': new https.Agent({ keepAlive: true, maxSockets: 128 }),
}

/** `fetch`-shaped: method, headers, string body and an abort signal in; status and text out. */
export const nodeFetch: FetchLike = (url, init) =>
  new Promise((resolve, reject) => {
    const protocol = url.protocol as 'http:' | 'https:'
    const request = (protocol === 'https:' ? https : http).request(
      url,
      { method: init.method, headers: init.headers, agent: agents[protocol] },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8')
          resolve({ status: res.statusCode ?? 0, text: async () => body })
        })
        res.on('error', reject)
      },
    )
    const onAbort = () => request.destroy(new Error('aborted'))
    init.signal?.addEventListener('abort', onAbort, { once: true })
    request.on('close', () => init.signal?.removeEventListener('abort', onAbort))
    request.on('error', reject)
    request.end(init.body)
  })
