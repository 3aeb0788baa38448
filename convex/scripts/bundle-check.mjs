// Bundles the Convex apps and their components the way Convex's CLI does for
// `npx convex deploy` (convex/dist/cjs/bundler: esbuild 0.27, bundle, esm,
// platform "browser" for the default runtime, conditions convex+module, every
// import resolved, nothing external), without a deployment:
//
// 1. the app's definition (convex.config.ts), discovering the components it
//    mounts through their `convex.config` imports, as the CLI does;
// 2. the app's functions: every module of the functions dir (convex.json) but
//    _generated/, schema, dotfiles and names with several dots (the CLI's rules);
// 3. each component's functions, from where the app resolved it. A Node
//    built-in (`node:crypto`, `fs`, ...) does not resolve for platform
//    "browser": the component must run in Convex's default runtime.
//
// Also checks that the installed component package (a packed copy, see .npmrc)
// is the same as its source, ../generated: a stale copy would deploy old code.
//
//   node scripts/bundle-check.mjs
//
// The job queue example (../examples/job_queue/app) is bundled too; it has no
// node_modules of its own, so its imports resolve from this package's
// node_modules (esbuild's nodePaths), the only difference from the CLI.

import { readFileSync, readdirSync, statSync, existsSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as esbuild from 'esbuild'

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const repoRoot = resolve(packageDir, '..')

const ENTRY_EXTENSIONS = ['.js', '.mjs', '.cjs', '.ts', '.tsx', '.mts', '.cts', '.jsx']

/** The function modules of a functions dir, by the CLI's rules (bundler/index.js entryPoints). */
function entryPoints(dir) {
  const found = []
  const walk = (current) => {
    for (const name of readdirSync(current).sort()) {
      const path = join(current, name)
      if (statSync(path).isDirectory()) {
        if (name === 'node_modules') continue
        // A nested component definition is not part of this module tree.
        if (existsSync(join(path, 'convex.config.ts'))) continue
        walk(path)
        continue
      }
      const rel = relative(dir, path)
      if (!ENTRY_EXTENSIONS.some((ext) => rel.endsWith(ext))) continue
      if (rel.startsWith(`_generated${sep}`)) continue
      if (name.startsWith('.') || name.startsWith('#')) continue
      if (name === 'schema.ts' || name === 'schema.js') continue
      if ((name.match(/\./g) ?? []).length > 1) continue
      if (rel.includes(' ')) continue
      if (/\.tsx?$/.test(name) && !/^\s{0,100}(import|export)/m.test(readFileSync(path, 'utf8')))
        continue
      found.push(path)
    }
  }
  walk(dir)
  return found
}

/** The CLI's esbuild options for the default (isolate) runtime. */
function options(dir, entries, extra = {}) {
  return {
    entryPoints: entries,
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'esnext',
    jsx: 'automatic',
    outdir: 'out',
    outbase: dir,
    conditions: ['convex', 'module'],
    write: false,
    splitting: true,
    chunkNames: join('_deps', '[hash]'),
    treeShaking: true,
    minifySyntax: true,
    minifyIdentifiers: true,
    keepNames: true,
    define: { 'process.env.NODE_ENV': '"production"' },
    metafile: true,
    logLevel: 'silent',
    ...extra,
  }
}

/** Bundles; returns the output's size and modules, or throws with esbuild's messages. */
async function bundle(label, dir, entries, extra) {
  try {
    const result = await esbuild.build(options(dir, entries, extra))
    const bytes = result.outputFiles.reduce((sum, file) => sum + file.contents.length, 0)
    return { bytes, files: result.outputFiles.length, inputs: Object.keys(result.metafile.inputs) }
  } catch (error) {
    const messages = (error.errors ?? [error]).map((e) => {
      const where = e.location ? `${e.location.file}:${e.location.line}: ` : ''
      const notes = (e.notes ?? []).map((n) => `\n    ${n.text}`).join('')
      return `  ${where}${e.text ?? e.message}${notes}`
    })
    throw new Error(`${label}: esbuild failed:\n${messages.join('\n')}`)
  }
}

/**
 * Bundles the app's convex.config.ts and returns the directories of the components it mounts
 * (each `convex.config` import it resolves), as the CLI's definition pass finds them.
 */
async function componentDirs(appDir, extra) {
  const dirs = new Set()
  const discover = {
    name: 'discover-components',
    setup(build) {
      build.onResolve({ filter: /convex\.config/ }, async (args) => {
        if (args.pluginData === 'discovering') return undefined
        const resolved = await build.resolve(args.path, {
          kind: args.kind,
          resolveDir: args.resolveDir,
          pluginData: 'discovering',
        })
        if (resolved.errors.length > 0) return { errors: resolved.errors }
        if (args.kind !== 'entry-point') dirs.add(dirname(resolved.path))
        return { path: resolved.path }
      })
    },
  }
  const config = join(appDir, 'convex.config.ts')
  await bundle(`${relative(repoRoot, config)}`, appDir, [config], { ...extra, plugins: [discover] })
  return [...dirs]
}

/** Files of a directory tree (relative paths), without node_modules. */
function files(dir, base = dir, out = []) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    if (name === 'node_modules') continue
    if (statSync(path).isDirectory()) files(path, base, out)
    else out.push(relative(base, path))
  }
  return out.sort()
}

/** Fails when the installed copy of a `file:` dependency differs from its source. */
function checkInstalledCopies() {
  const manifest = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8'))
  for (const [name, spec] of Object.entries(manifest.dependencies ?? {})) {
    if (!spec.startsWith('file:')) continue
    const source = resolve(packageDir, spec.slice('file:'.length))
    const installed = join(packageDir, 'node_modules', name)
    const stale = () =>
      new Error(
        `the installed ${name} (node_modules) differs from its source ${relative(repoRoot, source)}: ` +
          `run \`npm run refresh:component\` in convex/ (or \`npm ci\`)`,
      )
    if (!existsSync(installed) || statSync(installed).isSymbolicLink?.()) throw stale()
    const [a, b] = [files(source), files(installed)]
    if (a.join('\n') !== b.join('\n')) throw stale()
    for (const file of a) {
      if (!readFileSync(join(source, file)).equals(readFileSync(join(installed, file))))
        throw stale()
    }
    console.log(`installed ${name} matches ${relative(repoRoot, source)} (${a.length} files)`)
  }
}

async function checkApp(label, appDir, extra = {}) {
  const started = Date.now()
  const components = await componentDirs(appDir, extra)
  if (components.length === 0) throw new Error(`${label}: convex.config.ts mounts no component`)
  const app = await bundle(`${label} functions`, appDir, entryPoints(appDir), extra)
  const lines = [
    `${label}: app functions ${app.files} output files, ${(app.bytes / 1024).toFixed(0)} KiB`,
  ]
  for (const dir of components) {
    const entries = entryPoints(dir)
    const component = await bundle(`component ${relative(repoRoot, dir)}`, dir, entries, extra)
    const outside = component.inputs.filter(
      (input) => !input.includes('node_modules/convex/') && !resolve(input).startsWith(dir),
    )
    lines.push(
      `  component ${relative(repoRoot, dir)}: ${entries.length} function modules, ` +
        `${(component.bytes / 1024).toFixed(0)} KiB` +
        (outside.length > 0 ? `, also bundles ${outside.join(', ')}` : ''),
    )
  }
  console.log(`${lines.join('\n')}\n  (${Date.now() - started} ms)`)
  return components
}

async function main() {
  checkInstalledCopies()
  const functionsDir = JSON.parse(readFileSync(join(packageDir, 'convex.json'), 'utf8')).functions
  const components = await checkApp('convex/app', resolve(packageDir, functionsDir))
  // The deployed app must mount the installed package, as from npm: not ../generated.
  for (const dir of components) {
    if (!dir.startsWith(join(packageDir, 'node_modules') + sep))
      throw new Error(`convex/app mounts ${dir}, not an installed package`)
  }
  await checkApp('examples/job_queue/app', join(repoRoot, 'examples/job_queue/app'), {
    nodePaths: [join(packageDir, 'node_modules')],
  })
}

main().catch((error) => {
  console.error(error.message)
  process.exit(1)
})
