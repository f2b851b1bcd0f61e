/**
 * The console's pages, in navigation order. A section's first page here is its link; sections
 * with no page show as 未完成. To add a page: write `pages/<name>.tsx` exporting a `ConsolePage`
 * and list it below.
 */
import type { ConsolePage } from '../page.js'
import { activitiesPage } from './activities.js'
import { activityPage } from './activity.js'
import { operatorsPage } from './operators.js'
import { overviewPage } from './overview.js'
import { systemPage } from './system.js'

export const consolePages: ConsolePage[] = [
  overviewPage,
  activitiesPage,
  activityPage,
  systemPage,
  operatorsPage,
]
