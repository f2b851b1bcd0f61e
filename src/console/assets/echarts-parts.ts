/**
 * The parts of ECharts the console's pages draw with — line, bar, heat map, funnel and Sankey
 * charts; grid, tooltip, legend and visual map components; the grid's `containLabel` — and nothing
 * else: echarts.entry.mjs bundles these into the console's script (half the complete build's
 * size). A page whose option names a chart or component missing here would draw nothing:
 * src/console/charts.test.ts renders every chart of the pages it lists with these parts alone and
 * fails on anything ECharts says ("is used but not imported", a feature missing).
 */
import { BarChart, FunnelChart, HeatmapChart, LineChart, SankeyChart } from 'echarts/charts'
import {
  GridComponent,
  LegendComponent,
  TooltipComponent,
  VisualMapComponent,
} from 'echarts/components'
import { LegacyGridContainLabel } from 'echarts/features'

export const CONSOLE_ECHARTS = [
  LineChart,
  BarChart,
  HeatmapChart,
  FunnelChart,
  SankeyChart,
  GridComponent,
  LegendComponent,
  TooltipComponent,
  VisualMapComponent,
  // The console's grids keep their axis labels inside (`containLabel`), laid out as the complete
  // build lays them out.
  LegacyGridContainLabel,
]
