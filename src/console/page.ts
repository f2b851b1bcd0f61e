/**
 * A console page: one file under src/console/pages/ that mounts its routes (GET renders, POST
 * acts) on the console app, and names the navigation section it belongs to. Pages are thin:
 * read with the same service functions the admin API calls, render with the shared components,
 * and change things only through `auditedAction`. List a new page in pages/index.ts.
 */
import type { Hono } from 'hono'
import type { ConsoleDeps, ConsoleEnv } from './context.js'
import type { MessageKey } from './i18n.js'

/** The ten navigation sections, in order (issue #17). */
export const SECTIONS = [
  'overview',
  'members',
  'retention',
  'invites',
  'campaigns',
  'activities',
  'rewards',
  'shop',
  'community',
  'system',
] as const

export type SectionKey = (typeof SECTIONS)[number]

/** The navigation label of a section. */
export const sectionLabel = (s: SectionKey) => `nav.${s}` as MessageKey

/** One page of the console. */
export interface ConsolePage {
  /** The section it belongs to; the first listed page of a section is the section's link. */
  section: SectionKey
  /** Its path under /console (`/` for the overview, e.g. `/system/operators`). */
  path: string
  /** Registers its routes; every route is already behind sign-in, CSRF and the viewer guard. */
  mount(app: Hono<ConsoleEnv>, deps: ConsoleDeps): void
}
