/**
 * The embedded database (PGlite) is single-process: two processes that open one data folder each
 * keep their own copy of it in memory and overwrite each other's writes. A lock file beside the
 * folder makes that impossible: the first opener holds it, any other opener is refused with a
 * message naming the holder, and a lock left by a process that died is taken over.
 */
import { linkSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs'

/** Who holds a data folder. */
export interface LockHolder {
  pid: number
  /** What the holder is: `server` (npm start), `job`, `migrate` … */
  role: string
  /** The holder's HTTP port, when it serves one. */
  port?: number
  /** A random per-run token that lets local tools ask the running server to run a job. */
  controlToken?: string
  startedAt: string
}

/**
 * What to do when the server holds the data folder, by what was refused (the opener's role): only
 * a job can be handed to the server (`npm run job` does that itself once it listens).
 */
const WHILE_THE_SERVER_RUNS: Record<string, string> = {
  job: 'stop the server, or let it run the job (npm run job does that by itself)',
  migrate:
    'the server applied the migrations when it started; to apply new ones, stop it and run npm run migrate (or start it again: it migrates first)',
  'operator-cli':
    'stop the server and run the command again, or let an owner manage operators in the console (系统 → 运营账号)',
  server: 'stop it first (one server per data folder)',
}

/** Thrown when another live process holds the data folder. */
export class DataDirLockedError extends Error {
  constructor(
    readonly dir: string,
    readonly holder: LockHolder,
    /** What was refused: the role of the process that tried to open the folder. */
    readonly opener = 'server',
  ) {
    super(
      holder.role === 'server'
        ? `the server is running on this data folder (${dir}, pid ${holder.pid}); the embedded database is single-process: ${WHILE_THE_SERVER_RUNS[opener] ?? 'stop the server first'}`
        : `another quanzi process (${holder.role}, pid ${holder.pid}) is using the data folder ${dir}; the embedded database is single-process: wait for it or stop it`,
    )
    this.name = 'DataDirLockedError'
  }
}

/** A held lock. */
export interface DataDirLock {
  readonly path: string
  /** Rewrites what the lock says about its holder (e.g. the port once it listens). */
  update(fields: Partial<LockHolder>): void
  /** Gives the folder back; safe to call twice. */
  release(): void
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: it exists but belongs to someone else — still alive.
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Reads the holder of a lock file, or undefined when there is none (or it is unreadable). */
export function readLockHolder(path: string): LockHolder | undefined {
  try {
    const holder = JSON.parse(readFileSync(path, 'utf8')) as LockHolder
    return Number.isInteger(holder.pid) ? holder : undefined
  } catch {
    return undefined
  }
}

/** The live holder of a lock file, if any. */
export function liveLockHolder(path: string): LockHolder | undefined {
  const holder = readLockHolder(path)
  return holder && holder.pid !== process.pid && alive(holder.pid) ? holder : undefined
}

/**
 * Takes `<dir>.lock` for this process (created exclusively, so two openers racing cannot both win);
 * a lock whose process is gone is taken over. Throws {@link DataDirLockedError} when a live process
 * holds it.
 */
export function acquireDataDirLock(dir: string, role: string): DataDirLock {
  const path = `${dir}.lock`
  let holder: LockHolder = { pid: process.pid, role, startedAt: new Date().toISOString() }
  for (let attempt = 0; attempt < 3; attempt++) {
    // Written whole under another name, then linked into place: link fails when the lock exists,
    // so the file is never seen half-written and two racing openers cannot both win.
    const draft = `${path}.${process.pid}`
    writeFileSync(draft, JSON.stringify(holder), { mode: 0o600 })
    try {
      linkSync(draft, path)
      unlinkSync(draft)
      let held = true
      return {
        path,
        update(fields) {
          if (!held) return
          holder = { ...holder, ...fields }
          // Written aside and renamed over: a reader never sees it empty or half-written.
          writeFileSync(draft, JSON.stringify(holder), { mode: 0o600 })
          renameSync(draft, path)
        },
        release() {
          if (!held) return
          held = false
          if (readLockHolder(path)?.pid === process.pid) unlinkSync(path)
        },
      }
    } catch (error) {
      unlinkSync(draft)
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
      const other = readLockHolder(path)
      if (other && other.pid !== process.pid && alive(other.pid))
        throw new DataDirLockedError(dir, other, role)
      // Left by a process that died (or unreadable): take it over, unless it changed meanwhile.
      try {
        if (readLockHolder(path)?.pid === other?.pid) unlinkSync(path)
      } catch {}
    }
  }
  throw new Error(`could not take the lock ${path}`)
}
