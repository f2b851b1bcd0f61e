/** The end-to-end tests' server (test/server.ts). */
import { connect } from 'node:net'
import { expect, it } from 'vitest'
import { freshPglite } from './databases.js'
import { startServer } from './server.js'

it('closes within its 5 s grace while a client holds a request half sent', async () => {
  const db = await freshPglite()
  try {
    const server = await startServer(db)
    const { port } = new URL(server.url)
    const socket = connect(Number(port), '127.0.0.1')
    socket.on('error', () => {}) // cut by the close
    const cut = new Promise((resolve) => socket.once('close', resolve))
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
    // A request whose headers never end: the server waits for the rest (its headersTimeout is 60 s).
    socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n')
    await new Promise((resolve) => setTimeout(resolve, 100))
    const started = performance.now()
    await server.close()
    const ms = performance.now() - started
    expect(ms).toBeGreaterThanOrEqual(4_900)
    expect(ms).toBeLessThan(15_000)
    await cut // the server ended the client's connection
  } finally {
    await db.destroy()
  }
}, 20_000)
