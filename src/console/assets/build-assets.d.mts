/** Writes src/console/assets/embedded.generated.ts when its content differs; returns its path. */
export function writeEmbeddedAssets(): string
