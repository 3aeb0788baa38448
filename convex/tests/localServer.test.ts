// @vitest-environment node
// Tests the local server (server/main.ts) over HTTP against the small fixture
// app and component in server/fixture. The component is copied outside this
// package first, like ../generated/component, so the tests also cover
// resolving `convex` from a directory without node_modules.

import { spawn, type ChildProcess } from 'node:child_process'
import { cpSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { getConvexSize, type Value } from 'convex/values'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'

const packageDir = fileURLToPath(new URL('..', import.meta.url))
const fixtureDir = join(packageDir, 'server', 'fixture')

type Server = { url: string; process: ChildProcess; stderr: () => string }

async function startServer(
  componentDir: string,
  extra: string[] = [],
  stdin: 'ignore' | 'pipe' = 'pipe',
): Promise<Server> {
  // With stdin piped, --exit-with-stdin ends the server with this process even when a run is
  // aborted before afterAll.
  const exitWithStdin = stdin === 'pipe' && !extra.includes('--exit-with-stdin')
  const child = spawn(
    join(packageDir, 'node_modules', '.bin', 'tsx'),
    [
      ...['--tsconfig', join(packageDir, 'tsconfig.tsx.json')],
      join(packageDir, 'server', 'main.ts'),
      ...['--port', '0', '--app', join(fixtureDir, 'app')],
      ...['--component', `notesStore=${componentDir}`, '--env', 'FIXTURE_VAR=hello'],
      ...extra,
      ...(exitWithStdin ? ['--exit-with-stdin'] : []),
    ],
    { cwd: packageDir, stdio: [stdin, 'pipe', 'pipe'] },
  )
  let stderr = ''
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const url = await new Promise<string>((resolve, reject) => {
    let stdout = ''
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString()
      const match = /^listening on (http:\/\/127\.0\.0\.1:\d+)$/m.exec(stdout)
      if (match) resolve(match[1]!)
    })
    child.on('exit', (code) => reject(new Error(`server exited (${code}): ${stderr}`)))
  })
  return { url, process: child, stderr: () => stderr }
}

async function stopServer(server: Server): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => server.process.on('exit', resolve))
  server.process.kill('SIGTERM')
  return await exited
}

let componentCopy: string
let server: Server

beforeAll(async () => {
  componentCopy = mkdtempSync(join(tmpdir(), 'local-server-component-'))
  cpSync(join(fixtureDir, 'component'), componentCopy, { recursive: true })
  server = await startServer(componentCopy)
})

afterAll(async () => {
  if (server) expect(await stopServer(server)).toBe(0)
  rmSync(componentCopy, { recursive: true, force: true })
})

async function post(
  route: string,
  body: unknown,
  contentType = 'application/json',
  prefix = '',
): Promise<{ status: number; body: any }> {
  const response = await fetch(`${server.url}${prefix}/api/${route}`, {
    method: 'POST',
    headers: { 'Content-Type': contentType },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  })
  return { status: response.status, body: await response.json() }
}

const REQUEST_ID = '\\[Request ID: [0-9a-f]{16}\\] Server Error'

describe('calls', () => {
  test('GET /version answers when ready', async () => {
    const response = await fetch(`${server.url}/version`)
    expect(response.status).toBe(200)
  })

  test('a mutation, a query and an action reach the component', async () => {
    expect(await post('mutation', { path: 'notes:add', args: { text: 'a' } })).toEqual({
      status: 200,
      body: { status: 'success', value: null, logLines: [] },
    })
    // The ConvexHttpClient form: args wrapped in an array, encoded format.
    const listed = await post('query', {
      path: 'notes:list',
      args: [{}],
      format: 'convex_encoded_json',
    })
    expect(listed.status).toBe(200)
    expect(listed.body.value.map((note: { text: string }) => note.text)).toEqual(['a'])
    expect(listed.body.logLines).toEqual(["[LOG] 'listing' 1"])
    expect(await post('action', { path: 'notes:addTwice', args: { text: 'b' } })).toMatchObject({
      status: 200,
      body: { status: 'success', value: 3 },
    })
  })

  test('concurrent mutations are serialised, none is lost', async () => {
    const before = (await post('query', { path: 'notes:list', args: {} })).body.value.length
    const calls = Array.from({ length: 20 }, (_, i) =>
      post('mutation', { path: 'notes:add', args: { text: `c${i}` } }),
    )
    for (const call of await Promise.all(calls)) expect(call.status).toBe(200)
    const after = (await post('query', { path: 'notes:list', args: {} })).body.value.length
    expect(after).toBe(before + 20)
  })

  test('functions see --env variables', async () => {
    const answer = await post('query', {
      path: 'notes:env',
      args: { name: 'FIXTURE_VAR' },
      format: 'json',
    })
    expect(answer.body.value).toBe('hello')
  })

  test('module paths: .js suffix and default export', async () => {
    expect((await post('query', { path: 'notes.js:env', args: { name: 'X' } })).status).toBe(200)
    expect((await post('query', { path: 'notes', args: {} })).body.value).toBe('default export')
  })
})

describe('function errors answer 560', () => {
  test('a plain Error: message only', async () => {
    const { status, body } = await post('query', {
      path: 'notes:fail',
      args: {},
    })
    expect(status).toBe(560)
    expect(body.status).toBe('error')
    expect(body.errorMessage).toMatch(new RegExp(`^${REQUEST_ID}\nUncaught Error: boom$`))
    expect(body).not.toHaveProperty('errorData')
  })

  test('fields named like Object.prototype properties are extra fields, as on a deployment', async () => {
    for (const key of ['constructor', 'toString', '__proto__']) {
      const args = JSON.parse(`{"text": "proto-${key}", "${key}": 1}`)
      const { status, body } = await post('mutation', { path: 'notes:add', args })
      expect(status).toBe(560)
      expect(body.errorMessage).toContain(
        `ArgumentValidationError: Object contains extra field \`${key}\` that is not in the validator.`,
      )
    }
    const listed = await post('query', { path: 'notes:list', args: {} })
    const texts = listed.body.value.map((note: { text: string }) => note.text)
    expect(texts.filter((text: string) => text.startsWith('proto-'))).toEqual([])
  })

  test('a ConvexError from the component: its data as errorData', async () => {
    const { status, body } = await post('mutation', {
      path: 'notes:add',
      args: { text: '' },
    })
    expect(status).toBe(560)
    expect(body.errorData).toEqual({ code: 'empty', message: 'no text' })
  })

  test.each([
    [
      'an unknown function',
      'query',
      'notes:nope',
      "Could not find public function for 'notes:nope'",
    ],
    ['an unknown module', 'query', 'nowhere:x', "Could not find public function for 'nowhere:x'"],
    ['an internal function', 'query', 'notes:secret', 'Could not find public function'],
    ['a path into the component', 'query', 'notesStore/lib:list', 'Could not find public function'],
    ['a generated module', 'query', '_generated/api:api', 'Could not find public function'],
    [
      'the wrong kind',
      'query',
      'notes:add',
      'Trying to execute notes.js:add as Query, but it is defined as Mutation.',
    ],
    ['invalid arguments', 'query', 'notes:env', 'ArgumentValidationError'],
  ])('%s', async (_, route, path, message) => {
    const args = path === 'notes:env' ? { name: 1 } : {}
    const { status, body } = await post(route, { path, args })
    expect(status).toBe(560)
    expect(body.errorMessage).toContain(message)
  })
})

describe('bad requests answer 4xx with {code, message}', () => {
  test.each([
    ['malformed JSON', 'not json', 'application/json', 'BadJsonBody'],
    ['the wrong content type', { path: 'notes:list', args: {} }, 'text/plain', 'BadJsonBody'],
    ['a missing path', { args: {} }, 'application/json', 'BadJsonBody'],
    ['missing args', { path: 'notes:list' }, 'application/json', 'BadJsonBody'],
    ['args not an object', { path: 'notes:list', args: 3 }, 'application/json', 'BadJsonBody'],
    [
      'an invalid path',
      { path: 'a:b:c', args: {} },
      'application/json',
      'BadConvexFunctionIdentifier',
    ],
    [
      'an unknown format',
      { path: 'notes:list', args: {}, format: 'xml' },
      'application/json',
      'InvalidFormat',
    ],
  ])('%s', async (_, body, contentType, code) => {
    const answer = await post('query', body, contentType)
    expect(answer.status).toBe(400)
    expect(answer.body).toEqual({ code, message: expect.any(String) })
  })

  test('a body over 16 MiB', async () => {
    const big = JSON.stringify({
      path: 'notes:add',
      args: { text: 'x'.repeat(16 * 1024 * 1024) },
    })
    const answer = await post('mutation', big)
    expect(answer.status).toBe(400)
    expect(answer.body.code).toBe('BadJsonBody')
  })

  test('unknown routes and methods', async () => {
    expect((await fetch(`${server.url}/api/nope`, { method: 'POST' })).status).toBe(404)
    expect((await fetch(`${server.url}/api/query`)).status).toBe(405)
  })

  test('the server survived all of the above', async () => {
    expect((await fetch(`${server.url}/version`)).status).toBe(200)
  })
})

test('--redact-errors hides messages like production, keeps errorData', async () => {
  const redacted = await startServer(componentCopy, ['--redact-errors'])
  try {
    const call = async (path: string, args: unknown) =>
      (await fetch(`${redacted.url}/api/mutation`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ path, args }),
      }).then((r) => r.json())) as {
        errorMessage: string
        errorData?: unknown
      }
    const failed = await call('notes:add', { text: '' })
    expect(failed.errorMessage).toMatch(new RegExp(`^${REQUEST_ID}$`))
    expect(failed.errorData).toEqual({ code: 'empty', message: 'no text' })
  } finally {
    expect(await stopServer(redacted)).toBe(0)
  }
})

describe('instances: /instance/<id>/... has its own database', () => {
  const texts = async (prefix: string): Promise<string[]> =>
    (
      await post('query', { path: 'notes:list', args: {} }, 'application/json', prefix)
    ).body.value.map((note: { text: string }) => note.text)

  test('writes in one instance are invisible to the others', async () => {
    const a = await post(
      'mutation',
      { path: 'notes:add', args: { text: 'in-a' } },
      undefined,
      '/instance/a',
    )
    expect(a).toMatchObject({ status: 200, body: { status: 'success' } })
    expect(await texts('/instance/a')).toEqual(['in-a'])
    // A new instance starts empty, and the default one (plain /api) is separate.
    expect(await texts('/instance/b')).toEqual([])
    expect(await texts('')).not.toContain('in-a')
    expect(await texts('/instance/default')).toEqual(await texts(''))
  })

  test('actions and their nested component calls stay in their instance', async () => {
    const added = await post(
      'action',
      { path: 'notes:addTwice', args: { text: 'c' } },
      undefined,
      '/instance/c',
    )
    expect(added.body.value).toBe(2)
    expect(await texts('/instance/c')).toEqual(['c', 'c'])
  })

  test('stats count the calls of each function per instance', async () => {
    await post('query', { path: 'notes:list', args: {} }, undefined, '/instance/s')
    await post('query', { path: 'notes:list', args: {} }, undefined, '/instance/s')
    await post('query', { path: 'notes:fail', args: {} }, undefined, '/instance/s')
    const stats = await fetch(`${server.url}/instance/s/stats`).then((r) => r.json())
    expect(stats).toEqual({
      calls: { 'notes:list': 2, 'notes:fail': 1 },
      componentCalls: { 'notesStore/lib:list': 2 },
      executions: { topLevel: 3, nested: 2, total: 5 },
    })
    expect(await fetch(`${server.url}/instance/never-used/stats`).then((r) => r.json())).toEqual({
      calls: {},
      componentCalls: {},
      executions: { topLevel: 0, nested: 0, total: 0 },
    })
  })

  test('stats count the component functions a public function runs (billed executions)', async () => {
    const prefix = '/instance/nested-stats'
    const stats = () => fetch(`${server.url}${prefix}/stats`).then((r) => r.json())
    // A public action that runs one component mutation: 2 executions.
    const added = await post(
      'action',
      { path: 'notes:addFromAction', args: { text: 'n' } },
      undefined,
      prefix,
    )
    expect(added.body).toMatchObject({ status: 'success', value: null })
    expect(await stats()).toEqual({
      calls: { 'notes:addFromAction': 1 },
      componentCalls: { 'notesStore/lib:add': 1 },
      executions: { topLevel: 1, nested: 1, total: 2 },
    })
    // Every nested run counts: two mutations and a query from one action, one from a mutation.
    await post('action', { path: 'notes:addTwice', args: { text: 'n' } }, undefined, prefix)
    await post('mutation', { path: 'notes:add', args: { text: 'n' } }, undefined, prefix)
    expect(await stats()).toEqual({
      calls: { 'notes:addFromAction': 1, 'notes:addTwice': 1, 'notes:add': 1 },
      componentCalls: { 'notesStore/lib:add': 4, 'notesStore/lib:list': 1 },
      executions: { topLevel: 3, nested: 5, total: 8 },
    })
    // A function that fails before running the component adds only its own call.
    await post('query', { path: 'notes:fail', args: {} }, undefined, prefix)
    expect((await stats()).executions).toEqual({ topLevel: 4, nested: 5, total: 9 })
  })

  test.each([['bad.id'], ['%41'], ['x'.repeat(65)], ['']])('invalid id %j: 400', async (id) => {
    const response = await fetch(`${server.url}/instance/${id}/api/query`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ path: 'notes:list', args: {} }),
    })
    expect(response.status).toBe(400)
    expect(await response.json()).toMatchObject({ code: 'InvalidInstance' })
  })

  test('GET /instance/<id>/version answers too', async () => {
    expect((await fetch(`${server.url}/instance/a/version`)).status).toBe(200)
  })
})

describe('documents over 1 MiB are refused, as a deployment refuses them', () => {
  // convex-test alone stores any size (a 2 MB document was measured stored); a deployment
  // refuses a document whose size (getConvexSize, system fields included) is over 1 MiB.
  const MIB = 1024 * 1024
  const prefix = '/instance/document-size'
  const call = (kind: string, path: string, args: Record<string, unknown>) =>
    post(kind, { path, args }, 'application/json', prefix)
  const notes = async (): Promise<Array<{ _id: string; text: string }>> =>
    (await call('query', 'notes:list', {})).body.value
  const expectTooLarge = (answer: { status: number; body: any }) => {
    expect(answer.status).toBe(560)
    expect(answer.body.errorMessage).toMatch(/Value is too large \(.* > maximum size 1 MiB\)/)
  }

  test('insert: a document of exactly 1 MiB is stored, one byte more is refused', async () => {
    expect((await call('mutation', 'notes:add', { text: 'probe' })).status).toBe(200)
    const probe = (await notes()).find((note) => note.text === 'probe')!
    // What a note costs besides its text, as Convex sizes it.
    const overhead = getConvexSize(probe as unknown as Value) - 'probe'.length
    const exact = 'x'.repeat(MIB - overhead)
    expect(await call('mutation', 'notes:add', { text: exact })).toMatchObject({ status: 200 })
    const stored = (await notes()).find((note) => note.text.length === exact.length)!
    expect(getConvexSize(stored as unknown as Value)).toBe(MIB)
    expectTooLarge(await call('mutation', 'notes:add', { text: `${exact}y` }))
    expectTooLarge(await call('mutation', 'notes:add', { text: 'z'.repeat(2_000_000) }))
    expect((await notes()).map((note) => note.text.length).sort((a, b) => a - b)).toEqual([
      'probe'.length,
      exact.length,
    ])
  })

  test('patch and replace: refused when the document would pass 1 MiB, and nothing changes', async () => {
    const text = 'p'.repeat(900 * 1024)
    expect((await call('mutation', 'notes:add', { text })).status).toBe(200)
    const note = (await notes()).find((candidate) => candidate.text === text)!
    expectTooLarge(
      await call('mutation', 'notes:append', { id: note._id, more: 'q'.repeat(200 * 1024) }),
    )
    expectTooLarge(
      await call('mutation', 'notes:replace', { id: note._id, text: 'r'.repeat(MIB + 1) }),
    )
    expect((await notes()).find((candidate) => candidate._id === note._id)!.text).toBe(text)
    // Within the limit, both still work.
    expect((await call('mutation', 'notes:append', { id: note._id, more: 'q' })).status).toBe(200)
    expect((await call('mutation', 'notes:replace', { id: note._id, text: 'short' })).status).toBe(
      200,
    )
    expect((await notes()).find((candidate) => candidate._id === note._id)!.text).toBe('short')
  })
})

test('--exit-with-stdin: serves while stdin is open, exits when it closes', async () => {
  const piped = await startServer(componentCopy, ['--exit-with-stdin'], 'pipe')
  const exited = new Promise<number | null>((resolve) => piped.process.on('exit', resolve))
  expect((await fetch(`${piped.url}/version`)).status).toBe(200)
  piped.process.stdin!.end()
  expect(await exited).toBe(0)
})
