// The console's ECharts script, bundled by build-assets.mjs: the parts its pages draw with
// (echarts-parts.ts) and the canvas renderer, behind `window.echarts.init` for console.js.
import { init, use } from 'echarts/core'
import { CanvasRenderer } from 'echarts/renderers'
import { CONSOLE_ECHARTS } from './echarts-parts.ts'

use([...CONSOLE_ECHARTS, CanvasRenderer])
window.echarts = { init }
