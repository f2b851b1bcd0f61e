/**
 * The console's pages, in navigation order. A section's first page here is its link; sections
 * with no page show as 未完成. To add a page: write `pages/<name>.tsx` exporting a `ConsolePage`
 * and list it below.
 */
import type { ConsolePage } from '../page.js'
import { invitesPage } from './invites.js'
import { operatorsPage } from './operators.js'
import { overviewPage } from './overview.js'
import { retentionPage } from './retention.js'

export const consolePages: ConsolePage[] = [overviewPage, retentionPage, invitesPage, operatorsPage]
