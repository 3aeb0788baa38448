// Helpers for the tests of the job queue example (examples/job_queue): its generated public
// API (examples/job_queue/app/jobQueue.ts over examples/job_queue/generated) on a fresh
// convex-test backend per test, the deployment's env vars and a frozen server clock.

/// <reference types="vite/client" />

import { convexTest } from 'convex-test'
import { afterEach, beforeEach, expect, vi } from 'vitest'
import componentSchema from '../../../examples/job_queue/generated/component/schema'
import type {
  JobUpdate,
  PublicJob,
  PublicJobDoc,
  Worker,
  WorkerDoc,
} from '../../../examples/job_queue/generated/component/validators'
import { api } from '../../../examples/job_queue/app/_generated/api'

export type { JobUpdate, PublicJob, PublicJobDoc, Worker, WorkerDoc }

export const COMPONENT = 'jobQueue'
export const SECRET_ENV = 'JOB_QUEUE_AUTH_SECRET'
export const TEST_MODE_ENV = 'JOB_QUEUE_TEST_MODE'
export const SECRET = 'job-queue-secret'

export const fns = api.jobQueue

const appModules = import.meta.glob([
  '../../../examples/job_queue/app/**/*.ts',
  '!../../../examples/job_queue/app/**/convex.config.ts',
])
const componentModules = import.meta.glob([
  '../../../examples/job_queue/generated/component/**/*.ts',
  '!../../../examples/job_queue/generated/component/convex.config.ts',
])

/** The server's clock when a test starts (only `Date` is faked). */
export const NOW = Date.UTC(2030, 0, 1, 12)
/** An hour before NOW: what a client with a slow clock sends. */
export const PAST = NOW - 3_600_000

/** Before each test: the secret is set, test mode off, the clock at NOW. */
export function useDeploymentEnv() {
  beforeEach(() => {
    vi.stubEnv(SECRET_ENV, SECRET)
    vi.stubEnv(TEST_MODE_ENV, undefined)
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(NOW)
  })
  afterEach(() => {
    vi.unstubAllEnvs()
    vi.useRealTimers()
  })
}

/** Moves the server's clock forward by `ms`; returns the new time. */
export function advanceServerTime(ms: number): number {
  const now = Date.now() + ms
  vi.setSystemTime(now)
  return now
}

/** A fresh backend (empty database) with the example app and its component. */
export function makeT() {
  const t = convexTest({ modules: appModules, transactionLimits: true })
  t.registerComponent(COMPONENT, componentSchema, componentModules)
  return t
}

export type T = ReturnType<typeof makeT>

type Table = 'jobs' | 'workers'
type ComponentDb = {
  db: { query: (table: Table) => { collect: () => Promise<Array<Record<string, unknown>>> } }
}

/** Every document of a component table, read directly (convex-test's `runInComponent`). */
export async function tableDocs(t: T, table: Table): Promise<Array<Record<string, unknown>>> {
  const run = (t as unknown as Record<string, unknown>).runInComponent as (
    path: string,
    handler: (ctx: ComponentDb) => Promise<Array<Record<string, unknown>>>,
  ) => Promise<Array<Record<string, unknown>>>
  return await run(COMPONENT, (ctx) => ctx.db.query(table).collect())
}

/** Both tables, for "nothing was written" assertions. */
export async function everything(t: T) {
  return { jobs: await tableDocs(t, 'jobs'), workers: await tableDocs(t, 'workers') }
}

let counter = 0
export function nextId(prefix: string): string {
  counter += 1
  return `${prefix}_${String(counter).padStart(5, '0')}`
}

/** A new queued job of queue `emails`, as a client with a slow clock sends it. */
export function newJob(overrides: Partial<PublicJob> = {}): PublicJob {
  return {
    jobId: nextId('job'),
    queue: 'emails',
    payload: { handler: 'sendEmail', input: '{"to":"a@b.c"}' },
    tags: ['welcome'],
    status: 'queued',
    attempts: 0,
    timeoutMs: 30_000,
    runAt: PAST,
    createdAt: PAST,
    updatedAt: PAST,
    ...overrides,
  }
}

/** A new idle worker of queue `emails`. */
export function newWorker(overrides: Partial<Worker> = {}): Worker {
  return {
    workerId: nextId('worker'),
    queues: ['emails'],
    state: 'idle',
    lastSeenAt: PAST,
    ...overrides,
  }
}

/** An update stamped by a slow client: the server stores its own `updatedAt`. */
export function jobUpdate(fields: Omit<JobUpdate, 'updatedAt'> = {}): JobUpdate {
  return { updatedAt: PAST, ...fields }
}

export async function enqueue(t: T, jobs: PublicJob[]) {
  return await t.mutation(fns.enqueueJobs, { authSecret: SECRET, args: { jobs } })
}

export async function register(t: T, workers: Worker[]) {
  return await t.mutation(fns.registerWorkers, { authSecret: SECRET, args: { workers } })
}

export async function getJob(t: T, jobId: string): Promise<PublicJobDoc | null> {
  const [doc] = await t.query(fns.getJobs, { authSecret: SECRET, args: { requests: [{ jobId }] } })
  return doc ?? null
}

/** The stored form of a job: its fields, the system fields and the server's times. */
export function stored(job: PublicJob, now = NOW) {
  return {
    ...job,
    runAt: Math.max(job.runAt, now),
    createdAt: now,
    updatedAt: now,
    _id: expect.any(String),
    _creationTime: expect.any(Number),
  }
}

/** Asserts that `promise` fails with a ConvexError of this `code`; returns its data. */
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

export type Kind = 'query' | 'mutation' | 'action'

/** The 14 public functions of the example and the kinds its declaration gives them. */
export const KINDS = {
  enqueueJobs: 'mutation',
  registerWorkers: 'mutation',
  getJobs: 'query',
  listJobs: 'query',
  getWorkers: 'query',
  updateJobs: 'mutation',
  completeJobsAndSpawn: 'action',
  updateQueues: 'mutation',
  updateWorkers: 'mutation',
  claimJobs: 'action',
  expireLeases: 'mutation',
  deleteJob: 'mutation',
  deleteAllJobs: 'action',
  deleteAllWorkers: 'mutation',
} as const satisfies Record<string, Kind>

export type FunctionName = keyof typeof KINDS
export const FUNCTION_NAMES = Object.keys(KINDS) as FunctionName[]
export const TEST_ONLY = new Set<FunctionName>(['deleteJob', 'deleteAllJobs', 'deleteAllWorkers'])

/** Calls a public function by name with an arbitrary payload, through its kind's entry point. */
export async function callRaw(t: T, name: FunctionName, payload: unknown): Promise<unknown> {
  const ref = (fns as unknown as Record<string, never>)[name]
  const run = t[KINDS[name]] as (ref: never, args: unknown) => Promise<unknown>
  return await run(ref, payload)
}

/** Valid arguments of every function, for the table-driven tests. */
export function validArgs(name: FunctionName): Record<string, unknown> {
  const update = jobUpdate({ status: 'failed' })
  switch (name) {
    case 'enqueueJobs':
      return { jobs: [newJob()] }
    case 'registerWorkers':
      return { workers: [newWorker()] }
    case 'getJobs':
      return { requests: [{ jobId: 'job_a' }] }
    case 'listJobs':
      return { requests: [{ queue: 'emails', status: 'queued' }] }
    case 'getWorkers':
      return { requests: [{ workerId: 'worker_a' }] }
    case 'updateJobs':
      return { requests: [{ jobId: 'job_a', update }] }
    case 'completeJobsAndSpawn':
      return { requests: [{ jobId: 'job_a', update, spawn: [newJob()] }] }
    case 'updateQueues':
      return { requests: [{ queue: 'emails', status: 'queued', update }] }
    case 'updateWorkers':
      return { requests: [{ workerId: 'worker_a', update: { lastSeenAt: PAST, state: 'busy' } }] }
    case 'claimJobs':
      return {
        queue: 'emails',
        runAtBefore: NOW + 1,
        update: jobUpdate({ status: 'running' }),
        leaseStartedAt: NOW,
        limit: 10,
      }
    case 'expireLeases':
      return { update, limit: 10 }
    case 'deleteJob':
      return { jobId: 'job_a' }
    case 'deleteAllJobs':
    case 'deleteAllWorkers':
      return {}
  }
}

/** One queued job `job_a` (lease expired) and one worker `worker_a`: every function has work. */
export async function seedWorld(t: T) {
  await enqueue(t, [newJob({ jobId: 'job_a' })])
  await register(t, [newWorker({ workerId: 'worker_a' })])
  // A running job whose lease expired, for expireLeases.
  await enqueue(t, [newJob({ jobId: 'job_b', status: 'running', leaseExpiresAt: NOW + 5_000 })])
  advanceServerTime(10_000)
}
