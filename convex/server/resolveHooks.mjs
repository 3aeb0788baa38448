// Node module-resolution hooks for the local server (registered with
// `module.register` by main.ts). Plain JavaScript because hooks run in a
// separate loader thread, before any TypeScript support is guaranteed there.
//
// One load hook also exposes convex-test's private in-memory database class
// (as the export `__DatabaseFake`), so that the server can refuse documents
// over Convex's 1 MiB limit as a deployment does (server/documentLimit.ts).
//
// Why they exist: the component lives outside this package
// (../generated/component), where there is no package.json and no
// node_modules. Without help, Node would (1) fail to resolve `convex/server`
// from there and (2) treat its .ts files as CommonJS, loading a second,
// CommonJS copy of `convex`. So: bare specifiers that fail to resolve are
// retried from this package, and project .ts files (outside node_modules)
// are ESM.

/** @type {{ fallbackParentURL: string }} */
let config = { fallbackParentURL: '' }

export function initialize(data) {
  config = data
}

const isBare = (specifier) => !/^(\.{1,2}\/|\/|[a-zA-Z][a-zA-Z0-9+.-]*:)/.test(specifier)

export async function resolve(specifier, context, nextResolve) {
  let result
  try {
    result = await nextResolve(specifier, context)
  } catch (error) {
    if (!isBare(specifier) || config.fallbackParentURL === '') throw error
    result = await nextResolve(specifier, {
      ...context,
      parentURL: config.fallbackParentURL,
    })
  }
  // tsx marks files it takes for CommonJS with query parameters; drop them.
  const url = result.url.replace(/(%3F|\?).*$/, '')
  if (!url.includes('/node_modules/') && /\.m?ts$/.test(url)) {
    return { ...result, url, format: 'module' }
  }
  return result
}

const CONVEX_TEST_ENTRY = /\/node_modules\/convex-test\/dist\/index\.js$/

export async function load(url, context, nextLoad) {
  const result = await nextLoad(url, context)
  if (!CONVEX_TEST_ENTRY.test(url) || result.source === undefined) return result
  const source =
    typeof result.source === 'string' ? result.source : new TextDecoder().decode(result.source)
  return { ...result, source: `${source}\nexport { DatabaseFake as __DatabaseFake }\n` }
}
