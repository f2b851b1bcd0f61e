/**
 * How the Node server is bundled (esbuild), shared by the build (src/start.mjs) and the benches
 * that must run the code as `npm start` runs it (bench/webhook.ts bundles its target server so).
 */
export const bundleOptions = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // One file loads in about half the time of hundreds of node_modules files. PGlite stays
  // outside: it finds its WebAssembly and data files next to its own modules.
  external: ['@electric-sql/pglite', 'pg-native'],
  banner: {
    js: "import { createRequire as __quanziRequire } from 'node:module'; const require = __quanziRequire(import.meta.url);",
  },
  // Whitespace and syntax only: identifiers keep their names in stack traces; a third less to parse.
  minifyWhitespace: true,
  minifySyntax: true,
  sourcemap: true,
  logLevel: 'warning',
}
