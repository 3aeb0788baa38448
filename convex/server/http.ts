// The HTTP face of the local server: the subset of Convex's HTTP API that
// ConvexHttpClient and the Rust client use (POST /api/query, /api/mutation,
// /api/action) plus GET /version. Shapes follow the real backend:
// - success: 200 {status: "success", value, logLines}
// - the function failed: 560 {status: "error", errorMessage, errorData?, logLines}
// - a bad request: 4xx {code, message}
//
// Not in Convex, for tests: every route also exists under /instance/<id>
// (e.g. POST /instance/t1/api/query), running against a separate database
// created on first use, so that many tests can share one server without
// seeing each other's documents; the plain routes use the instance
// "default". GET [/instance/<id>]/stats answers how often each function ran
// there (tests check how a batch was split; the bench counts billed
// executions): {calls: {path: count}} for the public functions called over
// HTTP, {componentCalls: {"component/path": count}} for the component
// functions they ran (nested), and {executions: {topLevel, nested, total}}.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { convexToJson, jsonToConvex, type JSONValue, type Value } from 'convex/values'
import {
  DEFAULT_INSTANCE,
  isInstanceId,
  parseFunctionPath,
  type Backend,
  type FunctionKind,
  type Outcome,
} from './backend.ts'

/** Convex's status for "the function ran and failed" (STATUS_CODE_UDF_FAILED). */
export const STATUS_UDF_FAILED = 560
/** The real backend's request body limit. */
export const MAX_BODY_BYTES = 16 * 1024 * 1024

type ValueFormat = 'convex_encoded_json' | 'json'

class RequestError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

const badBody = (message: string): RequestError => new RequestError(400, 'BadJsonBody', message)

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body)
  res.writeHead(status, {
    'Content-Type': typeof body === 'string' ? 'text/plain' : 'application/json',
    'Content-Length': Buffer.byteLength(text),
  })
  res.end(text)
}

/** Reads the whole body; past the limit it keeps draining (so the client can
 * read the answer) but stops buffering. */
async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size <= MAX_BODY_BYTES) chunks.push(chunk)
  }
  if (size > MAX_BODY_BYTES)
    throw badBody('Failed to buffer the request body: length limit exceeded')
  return Buffer.concat(chunks)
}

function isJsonContentType(header: string | undefined): boolean {
  const mime = header?.split(';')[0]?.trim().toLowerCase() ?? ''
  return mime === 'application/json' || /^application\/[^/]+\+json$/.test(mime)
}

/** The `json` export format: plain JSON with lossy encodings of the types
 * JSON lacks (int64 as a base-10 string, bytes as base64). */
function toCleanJson(value: Value): JSONValue {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return value
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value)
  if (typeof value === 'bigint') return value.toString()
  if (value instanceof ArrayBuffer) return Buffer.from(value).toString('base64')
  if (Array.isArray(value)) return value.map(toCleanJson)
  const out: Record<string, JSONValue> = {}
  for (const [key, field] of Object.entries(value)) {
    if (field !== undefined) out[key] = toCleanJson(field)
  }
  return out
}

type Call = {
  kind: FunctionKind
  path: string
  args: Record<string, Value>
  format: ValueFormat
  prototypeNamedField?: string
}

/**
 * The first object key in `value` named like a property of `Object.prototype` (`constructor`,
 * `toString`, `__proto__`, ...). convex-test's validator looks fields up through the prototype
 * and `jsonToConvex` assigns `__proto__`, so such a field would pass validation (or vanish)
 * where a deployment refuses it as an extra field. The served app's validators have no
 * `v.any()` or `v.record()`, so such a key is never a declared field.
 */
function prototypeNamedField(value: unknown): string | undefined {
  if (Array.isArray(value)) {
    for (const item of value) {
      const found = prototypeNamedField(item)
      if (found !== undefined) return found
    }
    return undefined
  }
  if (typeof value !== 'object' || value === null) return undefined
  for (const [key, field] of Object.entries(value)) {
    if (key === '__proto__' || key in Object.prototype) return key
    const found = prototypeNamedField(field)
    if (found !== undefined) return found
  }
  return undefined
}

function parseCall(kind: FunctionKind, req: IncomingMessage, body: Buffer): Call {
  if (!isJsonContentType(req.headers['content-type']))
    throw badBody('Expected request with `Content-Type: application/json`')
  let json: unknown
  try {
    json = JSON.parse(body.toString('utf8'))
  } catch (error) {
    throw badBody(`Failed to parse the request body as JSON: ${(error as Error).message}`)
  }
  const shape = 'Failed to deserialize the JSON body into the target type: '
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw badBody(`${shape}expected a JSON object`)
  const { path, args, format } = json as Record<string, unknown>
  if (typeof path !== 'string') throw badBody(`${shape}missing or invalid field \`path\``)
  if (args === undefined) throw badBody(`${shape}missing field \`args\``)
  if (format !== undefined && format !== 'json' && format !== 'convex_encoded_json')
    throw new RequestError(400, 'InvalidFormat', `Unsupported value format: ${String(format)}`)
  // ConvexHttpClient sends `[args]`; the documented HTTP API sends `args`.
  const argsObject = Array.isArray(args) && args.length === 1 ? args[0] : args
  if (typeof argsObject !== 'object' || argsObject === null || Array.isArray(argsObject))
    throw badBody(`${shape}\`args\` must be an object or a one-element array of an object`)
  let decoded: Value
  try {
    decoded = jsonToConvex(argsObject as JSONValue)
  } catch (error) {
    throw badBody(`${shape}invalid Convex value in \`args\`: ${(error as Error).message}`)
  }
  // Without `format`, the real backend answers in the encoded format (the
  // ConvexHttpClient always asks for it explicitly).
  return {
    kind,
    path,
    args: decoded as Record<string, Value>,
    format: format ?? 'convex_encoded_json',
    prototypeNamedField: prototypeNamedField(argsObject),
  }
}

function udfResponse(outcome: Outcome, format: ValueFormat): { status: number; body: unknown } {
  const encode = format === 'json' ? toCleanJson : convexToJson
  if (outcome.ok)
    return {
      status: 200,
      body: {
        status: 'success',
        value: encode(outcome.value),
        logLines: outcome.logLines,
      },
    }
  return {
    status: STATUS_UDF_FAILED,
    body: {
      status: 'error',
      errorMessage: outcome.errorMessage,
      ...(outcome.errorData !== undefined ? { errorData: encode(outcome.errorData) } : {}),
      logLines: outcome.logLines,
    },
  }
}

const ROUTES: Record<string, FunctionKind> = {
  '/api/query': 'query',
  '/api/mutation': 'mutation',
  '/api/action': 'action',
}

/** Splits `/instance/<id>/rest` into the instance and `/rest`; other paths are the default instance's. */
function routeInstance(pathname: string): { instance: string; route: string } {
  const match = /^\/instance\/([^/]*)(\/.*)?$/.exec(pathname)
  if (match === null) return { instance: DEFAULT_INSTANCE, route: pathname }
  // Not URL-decoded: a valid id never needs escaping, so `%` is simply invalid.
  const instance = match[1]!
  if (!isInstanceId(instance))
    throw new RequestError(
      400,
      'InvalidInstance',
      `Invalid instance id "${instance}": use 1 to 64 letters, digits, "_" or "-"`,
    )
  return { instance, route: match[2] ?? '/' }
}

export function createHttpServer(backend: Backend, verbose: boolean): Server {
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://localhost')
    const { instance, route } = routeInstance(url.pathname)
    if (route === '/version' || route === '/stats') {
      if (req.method !== 'GET' && req.method !== 'HEAD')
        throw new RequestError(405, 'MethodNotAllowed', `Use GET ${url.pathname}`)
      return route === '/version'
        ? send(res, 200, 'local-convex-test')
        : send(res, 200, backend.stats(instance))
    }
    const kind = ROUTES[route]
    if (kind === undefined) throw new RequestError(404, 'NotFound', `No route for ${url.pathname}`)
    if (req.method !== 'POST')
      throw new RequestError(405, 'MethodNotAllowed', `Use POST ${url.pathname}`)
    const call = parseCall(kind, req, await readBody(req))
    const target = parseFunctionPath(call.path)
    if ('error' in target)
      throw new RequestError(
        400,
        'BadConvexFunctionIdentifier',
        `${call.path} is not a valid path to a Convex function. ${target.error}`,
      )
    const started = Date.now()
    const outcome = await backend.call(instance, kind, target, call.args, call.prototypeNamedField)
    if (verbose) {
      const result = outcome.ok ? 'ok' : `error: ${outcome.errorMessage.split('\n').pop()}`
      const where = instance === DEFAULT_INSTANCE ? '' : ` [${instance}]`
      process.stderr.write(`${kind} ${call.path}${where} ${Date.now() - started}ms ${result}\n`)
    }
    const { status, body } = udfResponse(outcome, call.format)
    send(res, status, body)
  }

  const server = createServer((req, res) => {
    // Nothing a request does may take the server down: every failure is an answer.
    handle(req, res).catch((error: unknown) => {
      const known = error instanceof RequestError
      if (!known)
        process.stderr.write(`internal error: ${String((error as Error)?.stack ?? error)}\n`)
      if (res.headersSent) return void res.destroy()
      send(
        res,
        known ? error.status : 500,
        known
          ? { code: error.code, message: error.message }
          : {
              code: 'InternalServerError',
              message: String((error as Error)?.message ?? error),
            },
      )
    })
  })
  // Keep idle connections longer than clients keep them in their pools (the Rust client: 4 s;
  // most HTTP clients: 60-90 s), so that a client never sends a request on a connection the
  // server is closing at that moment: that request would be reset after it was written, and a
  // call that is not idempotent could not be retried. (Node's default is 5 s.)
  server.keepAliveTimeout = 120_000
  server.headersTimeout = 125_000
  return server
}
