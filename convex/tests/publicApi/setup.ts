// Helpers for the tests of the generated public API (app/taskExecutionsStorage.ts, which
// mounts generated/publicApi.ts over generated/component): a fresh convex-test backend per
// test, the deployment's env vars, a factory of valid new executions (reference §4) and
// direct reads of the component's table.

/// <reference types="vite/client" />

import { convexTest } from 'convex-test'
import { afterEach, beforeEach, expect, vi } from 'vitest'
import componentSchema from '../../../generated/component/schema'
import type {
  PublicTaskExecution,
  PublicTaskExecutionDoc,
  TaskExecutionUpdate,
} from '../../../generated/component/validators'
import { api } from '../../app/_generated/api'

export type { PublicTaskExecution, PublicTaskExecutionDoc, TaskExecutionUpdate }

export const COMPONENT = 'taskExecutionsStorage'
export const SECRET_ENV = 'TASK_EXECUTIONS_STORAGE_AUTH_SECRET'
export const PREVIOUS_SECRET_ENV = 'TASK_EXECUTIONS_STORAGE_AUTH_SECRET_PREVIOUS'
export const TEST_MODE_ENV = 'TASK_EXECUTIONS_STORAGE_TEST_MODE'
export const SECRET = 'current-secret'
export const PREVIOUS_SECRET = 'previous-secret'

export const fns = api.taskExecutionsStorage

const appModules = import.meta.glob(['../../app/**/*.ts', '!../../app/**/convex.config.ts'])
const componentModules = import.meta.glob([
  '../../../generated/component/**/*.ts',
  // Loading a convex.config outside Convex throws; it is not a function module anyway.
  '!../../../generated/component/convex.config.ts',
])

/**
 * The server's clock when a test starts: `Date.now()` is frozen there (only `Date` is faked,
 * timers keep running), so that the times the server stamps are known. Tests move it with
 * `setServerTime` / `advanceServerTime`.
 */
export const NOW = Date.UTC(2030, 0, 1, 12)

/** Sets the server's clock (the faked `Date.now()`). */
export function setServerTime(ms: number) {
  vi.setSystemTime(ms)
}

/** Moves the server's clock forward by `ms`; returns the new time. */
export function advanceServerTime(ms: number): number {
  const now = Date.now() + ms
  vi.setSystemTime(now)
  return now
}

/**
 * Registers the env hooks of a test file: before each test the deployment has the current
 * secret, no previous secret and no test mode, and the server's clock reads NOW; after it
 * every stubbed variable and the clock are restored.
 */
export function useDeploymentEnv() {
  beforeEach(() => {
    vi.stubEnv(SECRET_ENV, SECRET)
    vi.stubEnv(PREVIOUS_SECRET_ENV, undefined)
    vi.stubEnv(TEST_MODE_ENV, undefined)
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(NOW)
  })
  afterEach(() => {
    vi.unstubAllEnvs()
    vi.useRealTimers()
  })
}

/** A fresh backend (empty database) with the app and the component, enforcing tx limits. */
export function makeT() {
  const t = convexTest({ modules: appModules, transactionLimits: true })
  t.registerComponent(COMPONENT, componentSchema, componentModules)
  return t
}

export type T = ReturnType<typeof makeT>

/** convex-test's untyped `runInComponent`: a mutation-like handler in the component's db. */
type ComponentDb = {
  db: {
    query: (table: 'taskExecutions') => { collect: () => Promise<PublicTaskExecutionDoc[]> }
    insert: (table: 'taskExecutions', doc: PublicTaskExecution) => Promise<string>
  }
}
function runInComponent<R>(t: T, handler: (ctx: ComponentDb) => Promise<R>): Promise<R> {
  const run = (t as unknown as Record<string, unknown>).runInComponent as (
    path: string,
    handler: (ctx: ComponentDb) => Promise<R>,
  ) => Promise<R>
  return run(COMPONENT, handler)
}

/** Every document of the component's `taskExecutions` table, sorted by executionId. */
export async function allDocs(t: T): Promise<PublicTaskExecutionDoc[]> {
  const docs = await runInComponent(t, (ctx) => ctx.db.query('taskExecutions').collect())
  return docs.sort((a, b) =>
    a.executionId < b.executionId ? -1 : a.executionId > b.executionId ? 1 : 0,
  )
}

/** One document by executionId, read directly from the component's table (or undefined). */
export async function docOf(t: T, executionId: string) {
  return (await allDocs(t)).find((doc) => doc.executionId === executionId)
}

/** Inserts documents straight into the component's table, bypassing the API (bulk seeding). */
export async function seedDirectly(t: T, executions: PublicTaskExecution[]) {
  await runInComponent(t, async (ctx) => {
    for (const execution of executions) await ctx.db.insert('taskExecutions', execution)
    return null
  })
}

/**
 * An hour before NOW: documents seeded with it look old to the server (`updatedAt < now`); a
 * client sending it has a clock an hour behind.
 */
export const PAST = NOW - 3_600_000

let counter = 0
/** A unique execution id for this test run. */
export function nextId(prefix = 'te'): string {
  counter += 1
  return `${prefix}_${String(counter).padStart(6, '0')}`
}

/**
 * A valid new execution, as the engine creates it (reference §4): status 'ready',
 * isFinished false, retryAttempts 0, startAt = now + sleepMsBeforeRun, acc 0, ocfpStatus
 * 'idle', closeStatus 'idle', npc false, createdAt = updatedAt = now. `now` defaults to
 * PAST. Overrides are applied last.
 */
export function newExecution(
  overrides: Partial<PublicTaskExecution> = {},
  now: number = PAST,
): PublicTaskExecution {
  const sleepMsBeforeRun = overrides.sleepMsBeforeRun ?? 0
  return {
    shard: 0,
    taskId: 'task',
    executionId: nextId(),
    isSleepingTask: false,
    retryOptions: { maxAttempts: 1 },
    sleepMsBeforeRun,
    timeoutMs: 1_000,
    areChildrenSequential: false,
    input: '{"n":1}',
    status: 'ready',
    isFinished: false,
    retryAttempts: 0,
    startAt: now + sleepMsBeforeRun,
    acc: 0,
    ocfpStatus: 'idle',
    closeStatus: 'idle',
    npc: false,
    createdAt: now,
    updatedAt: now,
    ...overrides,
  }
}

/**
 * A valid new sleeping execution (reference §4): status 'running', startedAt = now,
 * expiresAt = now + sleepMsBeforeRun + timeoutMs, with a sleepingTaskUniqueId.
 */
export function newSleepingExecution(
  overrides: Partial<PublicTaskExecution> = {},
  now: number = PAST,
): PublicTaskExecution {
  const base = newExecution({ isSleepingTask: true, ...overrides }, now)
  return {
    ...base,
    sleepingTaskUniqueId: nextId('sleep'),
    status: 'running',
    startedAt: now,
    expiresAt: now + base.sleepMsBeforeRun + base.timeoutMs,
    ...overrides,
  }
}

/**
 * An update request stamped at PAST + 1 (a client an hour behind): the server stores its own
 * time in `updatedAt`.
 */
export function update(fields: Omit<TaskExecutionUpdate, 'updatedAt'> = {}): TaskExecutionUpdate {
  return { updatedAt: PAST + 1, ...fields }
}

export async function insert(t: T, executions: PublicTaskExecution[]) {
  return await t.mutation(fns.insertMany, { authSecret: SECRET, args: { executions } })
}

export async function getById(t: T, executionIds: string[]) {
  return await t.query(fns.getManyById, {
    authSecret: SECRET,
    args: { requests: executionIds.map((executionId) => ({ executionId })) },
  })
}

/** The input document as stored: its fields plus the system fields. */
export function stored(execution: PublicTaskExecution) {
  return { ...execution, _id: expect.any(String), _creationTime: expect.any(Number) }
}

/**
 * Asserts that `promise` fails with a ConvexError whose data has this `code` (and the given
 * `data` fields); returns the data.
 */
export async function expectConvexError(
  promise: Promise<unknown>,
  code: string,
  data: Record<string, unknown> = {},
): Promise<Record<string, unknown>> {
  const error = await promise.then(
    () => {
      throw new Error(`expected a ConvexError ${code}, but the call succeeded`)
    },
    (error: unknown) => error,
  )
  expect(error).toMatchObject({ data: { code, ...data } })
  return (error as { data: Record<string, unknown> }).data
}

/** Asserts that `promise` fails in argument validation (`Validator error: ...`). */
export async function expectValidatorError(promise: Promise<unknown>, fragment?: string) {
  const error = await promise.then(
    () => {
      throw new Error('expected a validator error, but the call succeeded')
    },
    (error: unknown) => error,
  )
  expect(error).toBeInstanceOf(Error)
  expect((error as Error).message).toMatch(/Validator error/)
  if (fragment !== undefined) expect((error as Error).message).toContain(fragment)
}

export type Kind = 'query' | 'mutation' | 'action'

/** The 17 public functions and their kinds (reference §2; kinds are part of the wire contract). */
export const KINDS = {
  insertMany: 'mutation',
  getManyById: 'query',
  getManyBySleepingTaskUniqueId: 'query',
  updateManyById: 'action',
  updateManyByIdAndInsertChildrenIfUpdated: 'action',
  updateByStatusAndStartAtLessThanAndReturn: 'action',
  updateByStatusAndOCFPStatusAndACCZeroAndReturn: 'action',
  updateByCloseStatusAndReturn: 'action',
  updateByStatusAndIsSleepingTaskAndExpiresAtLessThan: 'action',
  updateByOCFPExpiresAt: 'action',
  updateByCloseExpiresAt: 'action',
  updateByExecutorIdAndNPCAndReturn: 'action',
  getManyByParentExecutionId: 'query',
  updateManyByParentExecutionIdAndIsFinished: 'action',
  updateAndDecrementParentACCByIsFinishedAndCloseStatus: 'action',
  deleteById: 'mutation',
  deleteAll: 'action',
} as const satisfies Record<string, Kind>

export type FunctionName = keyof typeof KINDS
export const FUNCTION_NAMES = Object.keys(KINDS) as FunctionName[]

/**
 * Calls a public function by name with an arbitrary (possibly malformed) payload, through the
 * entry point of its kind. For table-driven tests; the semantic tests call `fns.*` typed.
 */
export async function callRaw(t: T, name: FunctionName, payload: unknown): Promise<unknown> {
  const ref = (fns as unknown as Record<string, never>)[name]
  const run = t[KINDS[name]] as (ref: never, args: unknown) => Promise<unknown>
  return await run(ref, payload)
}
