// Local development/test server speaking Convex's HTTP API, backed by
// convex-test (an in-memory mock of the Convex backend). NOT for production.
//
//   tsx server/main.ts [--port N] [--app DIR] [--component NAME=DIR]...
//                      [--env KEY=VALUE]... [--no-transaction-limits]
//                      [--redact-errors] [--exit-with-stdin] [--verbose]
//
// --app and --component default to the env vars LOCAL_CONVEX_APP (a directory)
// and LOCAL_CONVEX_COMPONENTS (`NAME=DIR[,NAME=DIR]...`), then to this package's
// app/ and ../generated/component: so that a launcher that only sets the
// environment (the Rust crate's LocalConvexServer) can serve another app, such
// as examples/job_queue/app.
// Prints `listening on http://127.0.0.1:PORT` to stdout once ready. Besides
// Convex's routes, /instance/<id>/api/... runs against a separate database per
// <id>, so that concurrent tests can share one server (see http.ts).
// --exit-with-stdin: shut down when stdin closes. A test process that spawns
// the server keeps the other end of the pipe; when it exits, however it dies
// (even SIGKILL), the pipe closes and the server goes with it.

import { register } from 'node:module'
import { dirname, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..')

type Options = {
  port: number
  appDir: string
  components: Array<{ name: string; dir: string }>
  env: Record<string, string>
  transactionLimits: boolean
  redactErrors: boolean
  exitWithStdin: boolean
  verbose: boolean
}

function usage(problem: string): never {
  process.stderr.write(
    `${problem}\nusage: main.ts [--port N] [--app DIR] [--component NAME=DIR]... ` +
      '[--env KEY=VALUE]... [--no-transaction-limits] [--redact-errors] ' +
      '[--exit-with-stdin] [--verbose]\n',
  )
  process.exit(2)
}

function splitPair(flag: string, pair: string | undefined): [string, string] {
  const at = pair?.indexOf('=') ?? -1
  if (pair === undefined || at <= 0) usage(`${flag} expects NAME=VALUE`)
  return [pair.slice(0, at), pair.slice(at + 1)]
}

/** `--component` pairs from LOCAL_CONVEX_COMPONENTS, or undefined when unset or empty. */
function componentsFromEnv(): Options['components'] | undefined {
  const list = process.env.LOCAL_CONVEX_COMPONENTS?.trim()
  if (list === undefined || list === '') return undefined
  return list.split(',').map((pair) => {
    const [name, dir] = splitPair('LOCAL_CONVEX_COMPONENTS', pair.trim())
    return { name, dir: resolve(dir) }
  })
}

function parseArgs(argv: string[]): Options {
  const appFromEnv = process.env.LOCAL_CONVEX_APP?.trim()
  const options: Options = {
    port: 0,
    appDir: appFromEnv ? resolve(appFromEnv) : resolve(packageDir, 'app'),
    components: [],
    env: {},
    transactionLimits: true,
    redactErrors: false,
    exitWithStdin: false,
    verbose: false,
  }
  let components: Options['components'] | undefined
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!
    const value = (): string => argv[++i] ?? usage(`${flag} expects a value`)
    switch (flag) {
      case '--port': {
        const port = Number(value())
        if (!Number.isInteger(port) || port < 0 || port > 65535) usage('invalid --port')
        options.port = port
        break
      }
      case '--app':
        options.appDir = resolve(value())
        break
      case '--component': {
        const [name, dir] = splitPair(flag, value())
        ;(components ??= []).push({ name, dir: resolve(dir) })
        break
      }
      case '--env': {
        const [key, envValue] = splitPair(flag, value())
        options.env[key] = envValue
        break
      }
      case '--no-transaction-limits':
        options.transactionLimits = false
        break
      case '--redact-errors':
        options.redactErrors = true
        break
      case '--exit-with-stdin':
        options.exitWithStdin = true
        break
      case '--verbose':
        options.verbose = true
        break
      default:
        usage(`unknown argument: ${flag}`)
    }
  }
  options.components = components ??
    componentsFromEnv() ?? [
      {
        name: 'taskExecutionsStorage',
        dir: resolve(packageDir, '../generated/component'),
      },
    ]
  return options
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2))
  // convex-test runs functions in this process, so they read this process.env;
  // set it before any function module is loaded.
  Object.assign(process.env, options.env)
  register('./resolveHooks.mjs', {
    parentURL: import.meta.url,
    data: {
      fallbackParentURL: pathToFileURL(resolve(packageDir, 'package.json')).href,
    },
  })
  // Loaded after the hooks are registered, so that they apply to convex-test.
  const { createBackend } = await import('./backend.ts')
  const { createHttpServer } = await import('./http.ts')

  const backend = await createBackend(options, options.verbose)
  const server = createHttpServer(backend, options.verbose)
  server.listen(options.port, '127.0.0.1', () => {
    const address = server.address()
    const port = typeof address === 'object' && address !== null ? address.port : options.port
    process.stdout.write(`listening on http://127.0.0.1:${port}\n`)
  })

  let stopping = false
  const shutdown = (): void => {
    if (stopping) return
    stopping = true
    server.close(() => process.exit(0))
    server.closeAllConnections()
  }
  process.on('SIGTERM', shutdown)
  process.on('SIGINT', shutdown)
  if (options.exitWithStdin) {
    // 'end' on EOF, 'close' if the pipe breaks; reading (and discarding) is
    // what makes Node notice either.
    process.stdin.on('end', shutdown)
    process.stdin.on('close', shutdown)
    process.stdin.resume()
  }
  // A function's stray promise must not take the server down.
  process.on('unhandledRejection', (reason) => {
    process.stderr.write(`unhandled rejection: ${String(reason)}\n`)
  })
}

main().catch((error: unknown) => {
  process.stderr.write(`failed to start: ${String((error as Error)?.stack ?? error)}\n`)
  process.exit(1)
})
