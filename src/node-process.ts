/**
 * The Node process around the server: listening with errors that name their cause, stopping on
 * signals within a drain deadline, and failures logged as JSON lines with a stable `code` — never
 * a stack trace for an operator's mistake.
 */
import type { Server } from 'node:http'
import type { ServerType } from '@hono/node-server'
import { ConfigError } from './config.js'
import { type DataDirLock, DataDirLockedError } from './db/data-dir-lock.js'
import { DatabaseUnreachableError } from './db/open-database.js'
import type { Logger } from './logger.js'

/** A failure an operator can fix: a stable code and one line that names the cause. */
export class StartupError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message)
    this.name = 'StartupError'
  }
}

/** Listens on `port`; a port in use or forbidden becomes a {@link StartupError} naming PORT. */
export function listen(server: ServerType, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const failed = (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE')
        reject(
          new StartupError(
            'PORT_IN_USE',
            `PORT: ${port} is already in use by another program (another quanzi?); stop it or set PORT to a free port`,
          ),
        )
      else if (error.code === 'EACCES')
        reject(
          new StartupError(
            'PORT_FORBIDDEN',
            `PORT: ${port} needs privileges this user does not have; use a port above 1023 behind a proxy`,
          ),
        )
      else reject(error)
    }
    server.once('error', failed)
    server.listen(port, () => {
      server.off('error', failed)
      resolve()
    })
  })
}

/**
 * Stops accepting, lets in-flight requests finish and closes idle keep-alive connections; at the
 * deadline closes whatever is left. Resolves true when everything finished in time.
 */
export async function drainServer(server: ServerType, deadlineMs: number): Promise<boolean> {
  const http = server as Server
  const closed = new Promise<void>((resolve) => http.close(() => resolve()))
  http.closeIdleConnections?.()
  let timer: ReturnType<typeof setTimeout> | undefined
  const inTime = await Promise.race([
    closed.then(() => true),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), deadlineMs)
    }),
  ])
  clearTimeout(timer)
  if (!inTime) {
    http.closeAllConnections?.()
    await closed
  }
  return inTime
}

/** Two SIGINTs this close together are one key press (the terminal and npm both deliver it). */
const SAME_PRESS_MS = 500

/**
 * Runs `stop` once on the first SIGTERM or SIGINT, then exits 0 (1 if it failed). A second SIGINT
 * while stopping exits at once (130); if stopping hangs anyway, the process exits 15 s after the
 * drain deadline. Crashes are logged as one JSON line and exit 1.
 */
export function onStopSignals(
  logger: Logger,
  lock: DataDirLock | undefined,
  drainMs: number,
  stop: (signal: string) => Promise<void>,
): void {
  // Past the drain deadline, closing workers and the database gets this long before a hard exit.
  const graceMs = drainMs + 15_000
  let stoppingSince = 0
  const onSignal = (signal: NodeJS.Signals) => {
    if (stoppingSince) {
      if (signal === 'SIGINT' && Date.now() - stoppingSince > SAME_PRESS_MS) {
        logger.warn('second SIGINT: exiting now', { code: 'FORCED_EXIT' })
        lock?.release()
        process.exit(130)
      }
      return
    }
    stoppingSince = Date.now()
    setTimeout(() => {
      logger.error('shutdown hung: exiting', { code: 'SHUTDOWN_HUNG' })
      lock?.release()
      process.exit(1)
    }, graceMs).unref()
    stop(signal).then(
      () => process.exit(0),
      (error) => {
        logger.error('shutdown failed', { code: 'SHUTDOWN_FAILED', error })
        lock?.release()
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
  const crash = (error: unknown) => {
    logger.error('crashed', { code: 'UNCAUGHT', error })
    lock?.release()
    process.exit(1)
  }
  process.on('uncaughtException', crash)
  process.on('unhandledRejection', crash)
}

/** Codes and lines for what stops a start-up; anything else is a bug and keeps its stack. */
export function describeStartupFailure(error: unknown): { code: string; message: string } {
  if (error instanceof StartupError) return { code: error.code, message: error.message }
  if (error instanceof ConfigError) return { code: 'CONFIG_INVALID', message: error.message }
  if (error instanceof DatabaseUnreachableError)
    return { code: 'DATABASE_UNREACHABLE', message: error.message }
  if (error instanceof DataDirLockedError)
    return { code: 'DATA_DIR_LOCKED', message: error.message }
  return { code: 'START_FAILED', message: error instanceof Error ? error.message : String(error) }
}

/**
 * Reports a failed start-up and exits 1: a JSON line with the code on stdout for the log (unless a
 * person is watching the terminal) and the plain line on stderr.
 */
export function startupFailure(logger: Logger, error: unknown): never {
  const { code, message } = describeStartupFailure(error)
  const bug = code === 'START_FAILED'
  if (!process.stdout.isTTY)
    logger.error('start-up failed', bug ? { code, error } : { code, message })
  console.error(`quanzi: ${message}`)
  process.exit(1)
}
