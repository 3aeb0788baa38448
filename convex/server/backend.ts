// Runs Convex functions for the local server with `convex-test`: loads the
// app and its components, resolves a public function path the way the real
// backend does, runs it and turns the outcome into a wire-ready result.
// Each named instance is its own convex-test backend (an empty database on
// first use), so tests sharing one server stay isolated.

import { randomBytes } from 'node:crypto'
import { readdirSync, statSync } from 'node:fs'
import { join, relative, sep } from 'node:path'
import { pathToFileURL } from 'node:url'
import { AsyncLocalStorage } from 'node:async_hooks'
import { inspect } from 'node:util'
import * as convexTestModule from 'convex-test'
import { defineSchema, makeFunctionReference } from 'convex/server'
import type { SchemaDefinition, GenericSchema } from 'convex/server'
import type { Value } from 'convex/values'
import { enforceDocumentLimit } from './documentLimit.ts'

const { convexTest } = convexTestModule

export type FunctionKind = 'query' | 'mutation' | 'action'

export type BackendOptions = {
  /** The app's functions directory (convex.json `functions`). */
  appDir: string
  /** Components mounted by the app, by the name used in `app.use`. */
  components: Array<{ name: string; dir: string }>
  /** Enforce Convex's per-transaction limits (convex-test option). */
  transactionLimits: boolean
  /** Hide error messages like a production deployment does. */
  redactErrors: boolean
  /** Refuse documents over 1 MiB like a deployment (default true). */
  documentLimit?: boolean
}

export type Outcome =
  | { ok: true; value: Value; logLines: string[] }
  | { ok: false; errorMessage: string; errorData?: Value; logLines: string[] }

type ModuleMap = Record<string, () => Promise<Record<string, unknown>>>

/** What the convex registration helpers attach to an exported function. */
type RegisteredFunction = {
  isQuery?: boolean
  isMutation?: boolean
  isAction?: boolean
  isPublic?: boolean
  isInternal?: boolean
}

// Not function modules in a real deployment; loaded separately or not at all.
const NON_FUNCTION_FILES = new Set(['convex.config', 'schema'])

/**
 * The modules map convex-test expects in place of `import.meta.glob`: keys
 * relative to the functions dir ("./lib.ts", "./_generated/api.ts"); it finds
 * the root from the key containing "_generated", so those files must be in.
 */
export function moduleMap(dir: string): ModuleMap {
  const map: ModuleMap = {}
  const walk = (current: string): void => {
    for (const entry of readdirSync(current)) {
      const path = join(current, entry)
      if (statSync(path).isDirectory()) {
        if (entry !== 'node_modules' && !entry.startsWith('.')) walk(path)
        continue
      }
      if (!/\.(ts|js|mjs)$/.test(entry) || entry.endsWith('.d.ts')) continue
      // Tests are not deployed; convex.config throws outside the Convex runtime.
      if (/\.(test|spec)\./.test(entry) || /^convex\.config\./.test(entry)) continue
      const key = './' + relative(dir, path).split(sep).join('/')
      const url = pathToFileURL(path).href
      map[key] = () => import(url) as Promise<Record<string, unknown>>
    }
  }
  walk(dir)
  return map
}

async function loadSchema(
  dir: string,
  map: ModuleMap,
): Promise<SchemaDefinition<GenericSchema, boolean> | undefined> {
  const load = map['./schema.ts'] ?? map['./schema.js']
  if (load === undefined) return undefined
  const schema = (await load()).default
  if (schema === undefined) throw new Error(`${dir}/schema has no default export`)
  return schema as SchemaDefinition<GenericSchema, boolean>
}

/** "[Request ID: 0123456789abcdef]", as the real backend prefixes errors. */
const newRequestId = (): string => randomBytes(8).toString('hex')

export type FunctionPath = { module: string; name: string }

/**
 * Parses `module/path:function` ("module/path.js:function" and "module/path",
 * meaning its default export, too, as the real backend accepts), or returns
 * why the path is invalid (answered with a 400).
 */
export function parseFunctionPath(path: string): FunctionPath | { error: string } {
  const parts = path.split(':')
  if (parts.length > 2) return { error: "Too many ':' in the path" }
  const module = parts[0]!.replace(/\.js$/, '')
  const name = parts[1] ?? 'default'
  if (!/^[A-Za-z0-9_-]+(\/[A-Za-z0-9_.-]+)*$/.test(module))
    return { error: `Invalid module path "${parts[0]}"` }
  if (!/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name)) return { error: `Invalid function name "${name}"` }
  return { module, name }
}

const KIND_TITLE: Record<FunctionKind, string> = {
  query: 'Query',
  mutation: 'Mutation',
  action: 'Action',
}

// console output of functions becomes the call's logLines, as on Convex.
const logStore = new AsyncLocalStorage<string[]>()
let consolePatched = false
function captureConsole(echo: boolean): void {
  if (consolePatched) return
  consolePatched = true
  const levels = {
    log: 'LOG',
    info: 'INFO',
    warn: 'WARN',
    error: 'ERROR',
    debug: 'DEBUG',
  }
  for (const [method, level] of Object.entries(levels)) {
    const key = method as keyof typeof levels
    const original = console[key].bind(console)
    console[key] = (...args: unknown[]) => {
      const lines = logStore.getStore()
      if (lines === undefined) return original(...args)
      const line = `[${level}] ${args.map((a) => inspect(a)).join(' ')}`
      lines.push(line)
      if (echo) process.stderr.write(line + '\n')
    }
  }
}

/**
 * How often each function ran in one instance (tests assert how a batch was split).
 * - `calls`: the public functions called over HTTP (top-level), by path (`module:name`);
 * - `componentCalls`: the component functions those ran (nested `ctx.runQuery`/`runMutation`/
 *   `runAction` of a component), by `component/module:name`, counted when their handler starts
 *   (a call refused by its argument validator never runs, so it does not count);
 * - `executions`: the totals, `total = topLevel + nested`, i.e. the function executions a
 *   deployment would bill.
 */
export type InstanceStats = {
  calls: Record<string, number>
  componentCalls: Record<string, number>
  executions: { topLevel: number; nested: number; total: number }
}

const sum = (counts: Record<string, number>): number =>
  Object.values(counts).reduce((total, count) => total + count, 0)

/**
 * `modules` with every registered function of each module wrapped so that running its handler
 * first calls `count(component/module:name)`. convex-test runs a nested component function by
 * loading its module from this map and calling its `_handler`, so the wrapped handler counts
 * every nested run. Each wrapped module is built once (on first load).
 */
function countingModules(
  component: string,
  modules: ModuleMap,
  count: (path: string) => void,
): ModuleMap {
  const wrapped: ModuleMap = {}
  for (const [key, load] of Object.entries(modules)) {
    const modulePath = key.replace(/^\.\//, '').replace(/\.[^./]+$/, '')
    let cached: Promise<Record<string, unknown>> | undefined
    wrapped[key] = () =>
      (cached ??= load().then((module) => {
        const out: Record<string, unknown> = { ...module }
        for (const [name, value] of Object.entries(module)) {
          const fn = value as (RegisteredFunction & { _handler?: unknown }) | undefined
          const handler = fn?._handler
          if (typeof value !== 'function' || typeof handler !== 'function') continue
          if (!(fn!.isQuery || fn!.isMutation || fn!.isAction)) continue
          const path = `${component}/${modulePath}:${name}`
          const invoke = value as (...args: unknown[]) => unknown
          out[name] = Object.assign((...args: unknown[]) => invoke(...args), value, {
            _handler: (...args: unknown[]) => {
              count(path)
              return (handler as (...args: unknown[]) => unknown)(...args)
            },
          })
        }
        return out
      }))
  }
  return wrapped
}

export type Backend = {
  /**
   * Run the public function `target` (see parseFunctionPath) as `kind` in the
   * database of `instance` (created empty on first use, see isInstanceId).
   */
  call(
    instance: string,
    kind: FunctionKind,
    target: FunctionPath,
    args: Record<string, Value>,
    /**
     * A field of the arguments named like a property of `Object.prototype` (see
     * `prototypeNamedField` in http.ts), refused as an extra field the way a deployment's
     * validator refuses it.
     */
    prototypeNamedField?: string,
  ): Promise<Outcome>
  /** The calls made so far in `instance` (none for an instance never used). */
  stats(instance: string): InstanceStats
}

/** The instance `/api/...` (without `/instance/<id>`) runs in. */
export const DEFAULT_INSTANCE = 'default'

/** Instance ids: short and URL-safe, so they need no escaping in a path. */
export function isInstanceId(id: string): boolean {
  return /^[A-Za-z0-9_-]{1,64}$/.test(id)
}

export async function createBackend(options: BackendOptions, echoLogs = false): Promise<Backend> {
  captureConsole(echoLogs)
  if (options.documentLimit !== false) {
    enforceDocumentLimit((convexTestModule as Record<string, unknown>).__DatabaseFake)
  }
  // Load every module and schema once, at start: a broken module fails the
  // start, not a call, and each instance reuses them (convex-test keeps its
  // state per `convexTest()` call, so instances share nothing else).
  const appModules = moduleMap(options.appDir)
  const appSchema = await loadSchema(options.appDir, appModules)
  const components: Array<{
    name: string
    schema: SchemaDefinition<GenericSchema, boolean>
    modules: ModuleMap
  }> = []
  for (const { name, dir } of options.components) {
    const modules = moduleMap(dir)
    const schema = (await loadSchema(dir, modules)) ?? defineSchema({})
    components.push({ name, schema, modules })
  }
  for (const load of Object.values(appModules)) await load()

  type Instance = {
    t: ReturnType<typeof convexTest>
    stats: Omit<InstanceStats, 'executions'>
  }
  // Each instance is a separate convex-test backend: its own empty database
  // and its own transaction queue, so tests in different instances neither
  // see each other's documents nor wait for each other's transactions. They
  // do share process.env (set once by --env).
  const instances = new Map<string, Instance>()
  const instance = (id: string): Instance => {
    let existing = instances.get(id)
    if (existing === undefined) {
      const t = convexTest({
        schema: appSchema,
        modules: appModules,
        transactionLimits: options.transactionLimits,
      })
      const stats: Instance['stats'] = { calls: {}, componentCalls: {} }
      const countNested = (path: string): void => {
        stats.componentCalls[path] = (stats.componentCalls[path] ?? 0) + 1
      }
      for (const { name, schema, modules } of components)
        t.registerComponent(name, schema, countingModules(name, modules, countNested))
      existing = { t, stats }
      instances.set(id, existing)
    }
    return existing
  }

  const errorMessage = (requestId: string, detail: string): string =>
    options.redactErrors
      ? `[Request ID: ${requestId}] Server Error`
      : `[Request ID: ${requestId}] Server Error\n${detail}`

  const notFound = (requestId: string, module: string, name: string): Outcome => ({
    ok: false,
    errorMessage: errorMessage(
      requestId,
      `Could not find public function for '${module}:${name}'. ` +
        'Did you forget to run `npx convex dev` or `npx convex deploy`?',
    ),
    logLines: [],
  })

  return {
    stats(id) {
      const stats = instances.get(id)?.stats
      const calls = { ...stats?.calls }
      const componentCalls = { ...stats?.componentCalls }
      const topLevel = sum(calls)
      const nested = sum(componentCalls)
      return { calls, componentCalls, executions: { topLevel, nested, total: topLevel + nested } }
    },

    async call(instanceId, kind, { module, name }, args, prototypeNamedField) {
      const requestId = newRequestId()
      // Like the real backend, a missing module or function and an internal
      // one get the same answer, so callers learn nothing about internals.
      // Paths starting with "_" (e.g. _generated) are never function modules.
      const load = appModules[`./${module}.ts`] ?? appModules[`./${module}.js`]
      if (module.startsWith('_') || NON_FUNCTION_FILES.has(module) || load === undefined)
        return notFound(requestId, module, name)
      const fn = (await load())[name] as RegisteredFunction | undefined
      const actual: FunctionKind | undefined = fn?.isQuery
        ? 'query'
        : fn?.isMutation
          ? 'mutation'
          : fn?.isAction
            ? 'action'
            : undefined
      if (fn === undefined || actual === undefined || fn.isPublic !== true)
        return notFound(requestId, module, name)
      if (actual !== kind) {
        const message =
          `Trying to execute ${module}.js:${name} as ${KIND_TITLE[kind]}, ` +
          `but it is defined as ${KIND_TITLE[actual]}.`
        return {
          ok: false,
          errorMessage: errorMessage(requestId, message),
          logLines: [],
        }
      }

      const { t, stats } = instance(instanceId)
      const udfPath = `${module}:${name}`
      // Counted before running, so a call that fails counts too.
      stats.calls[udfPath] = (stats.calls[udfPath] ?? 0) + 1
      if (prototypeNamedField !== undefined)
        return {
          ok: false,
          errorMessage: errorMessage(
            requestId,
            `ArgumentValidationError: Object contains extra field \`${prototypeNamedField}\` that is not in the validator.`,
          ),
          logLines: [],
        }
      const logLines: string[] = []
      try {
        const value = await logStore.run(logLines, () => {
          switch (kind) {
            case 'query':
              return t.query(makeFunctionReference<'query'>(udfPath), args)
            case 'mutation':
              return t.mutation(makeFunctionReference<'mutation'>(udfPath), args)
            case 'action':
              return t.action(makeFunctionReference<'action'>(udfPath), args)
          }
        })
        // A function returning nothing answers null on the wire.
        return {
          ok: true,
          value: (value as Value | undefined) ?? null,
          logLines,
        }
      } catch (error) {
        return {
          ok: false,
          ...describeError(error, requestId, errorMessage),
          logLines,
        }
      }
    },
  }
}

function describeError(
  error: unknown,
  requestId: string,
  errorMessage: (requestId: string, detail: string) => string,
): { errorMessage: string; errorData?: Value } {
  const name = error instanceof Error ? error.name : 'Error'
  const message = error instanceof Error ? error.message : String(error)
  // convex-test reports argument validation failures as "Validator error: ...";
  // the real backend calls them ArgumentValidationError (not "Uncaught").
  const detail = message.startsWith('Validator error:')
    ? `ArgumentValidationError: ${message}`
    : `Uncaught ${name}: ${message}`
  const isConvexError =
    typeof error === 'object' && error !== null && Symbol.for('ConvexError') in error
  // ConvexError data reaches the client even when messages are redacted.
  return isConvexError
    ? {
        errorMessage: errorMessage(requestId, detail),
        errorData: (error as { data: Value }).data,
      }
    : { errorMessage: errorMessage(requestId, detail) }
}
