/** vitest global setup: writes the console's embedded-assets module (src/console/assets/). */
import { writeEmbeddedAssets } from '../src/console/assets/build-assets.mjs'

export default function setup() {
  writeEmbeddedAssets()
}
