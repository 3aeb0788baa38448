// The behaviour of each access pattern of the job queue example, through its public API:
// inserts with and without unique indexes, reads of one or all matches with and without
// filters, updates of one or all matches with and without filters (one inserting children),
// range updates returning documents or a count, and the test-only deletes.

import { describe, expect, it, vi } from 'vitest'
import {
  advanceServerTime,
  enqueue,
  everything,
  expectConvexError,
  fns,
  getJob,
  jobUpdate,
  makeT,
  newJob,
  newWorker,
  NOW,
  PAST,
  register,
  SECRET,
  stored,
  tableDocs,
  TEST_MODE_ENV,
  useDeploymentEnv,
  type PublicJobDoc,
} from './setup'

useDeploymentEnv()

const authSecret = SECRET

describe('enqueueJobs (insert with unique indexes)', () => {
  it('stores each job with the server times: createdAt/updatedAt now, runAt raised to now', async () => {
    const t = makeT()
    const later = newJob({ runAt: NOW + 60_000, dedupKey: 'k1', tags: [] })
    const early = newJob({ payload: { handler: 'h', input: '{}', priority: 7 } })
    await enqueue(t, [early, later])
    expect(await getJob(t, early.jobId)).toEqual(stored(early))
    expect(await getJob(t, later.jobId)).toEqual(stored(later))
  })

  it('refuses a job id or a dedup key that exists, and writes nothing of the call', async () => {
    const t = makeT()
    const first = newJob({ dedupKey: 'same' })
    await enqueue(t, [first])
    const before = await everything(t)
    await expectConvexError(
      enqueue(t, [newJob(), newJob({ jobId: first.jobId })]),
      'ALREADY_EXISTS',
      {
        index: 'by_jobId',
        value: first.jobId,
      },
    )
    await expectConvexError(
      enqueue(t, [newJob(), newJob({ dedupKey: 'same' })]),
      'ALREADY_EXISTS',
      {
        index: 'by_dedupKey',
        value: 'same',
      },
    )
    // Within one call too.
    const twin = newJob()
    await expectConvexError(enqueue(t, [twin, { ...twin }]), 'ALREADY_EXISTS')
    expect(await everything(t)).toEqual(before)
  })

  it('lets any number of jobs go without a dedup key', async () => {
    const t = makeT()
    await enqueue(t, [newJob(), newJob()])
    await enqueue(t, [newJob()])
    expect(await tableDocs(t, 'jobs')).toHaveLength(3)
  })

  it('refuses an attempts count over its declared max before writing', async () => {
    const t = makeT()
    await expectConvexError(enqueue(t, [newJob(), newJob({ attempts: 101 })]), 'INVALID_ARGUMENT')
    expect(await tableDocs(t, 'jobs')).toEqual([])
  })
})

describe('registerWorkers (insert without unique index)', () => {
  it('stores workers, the same id twice included, with lastSeenAt from the server', async () => {
    const t = makeT()
    const worker = newWorker({ queues: ['emails', 'reports'] })
    await t.mutation(fns.registerWorkers, { authSecret, args: { workers: [worker, worker] } })
    const docs = await tableDocs(t, 'workers')
    expect(docs).toEqual([
      { ...worker, lastSeenAt: NOW, _id: expect.any(String), _creationTime: expect.any(Number) },
      { ...worker, lastSeenAt: NOW, _id: expect.any(String), _creationTime: expect.any(Number) },
    ])
  })
})

describe('getJobs (get_each, first, with filters)', () => {
  it('answers one job or null per request, in order; a filter that does not match gives null', async () => {
    const t = makeT()
    const a = newJob()
    const b = newJob({ status: 'running' })
    await enqueue(t, [a, b])
    const result = await t.query(fns.getJobs, {
      authSecret,
      args: {
        requests: [
          { jobId: b.jobId },
          { jobId: 'missing' },
          { jobId: a.jobId, filters: { status: 'queued' } },
          { jobId: b.jobId, filters: { status: 'queued' } },
          { jobId: a.jobId, filters: {} },
        ],
      },
    })
    expect(result).toEqual([stored(b), null, stored(a), null, stored(a)])
  })
})

describe('listJobs (get_each, every match, no filters)', () => {
  it('answers every job of the queue in the status, oldest runAt first, one list per request', async () => {
    const t = makeT()
    const late = newJob({ runAt: NOW + 2_000 })
    const soon = newJob({ runAt: NOW + 1_000 })
    const other = newJob({ queue: 'reports' })
    const running = newJob({ status: 'running' })
    await enqueue(t, [late, soon, other, running])
    const [emails, reports, none] = await t.query(fns.listJobs, {
      authSecret,
      args: {
        requests: [
          { queue: 'emails', status: 'queued' },
          { queue: 'reports', status: 'queued' },
          { queue: 'emails', status: 'succeeded' },
        ],
      },
    })
    expect(emails!.map((doc) => doc.jobId)).toEqual([soon.jobId, late.jobId])
    expect(reports).toEqual([stored(other)])
    expect(none).toEqual([])
  })
})

describe('getWorkers (get_each, first, no filters)', () => {
  it('answers the first registration of each worker or null', async () => {
    const t = makeT()
    const worker = newWorker()
    await register(t, [worker])
    const result = await t.query(fns.getWorkers, {
      authSecret,
      args: { requests: [{ workerId: 'nobody' }, { workerId: worker.workerId }] },
    })
    expect(result).toEqual([
      null,
      { ...worker, lastSeenAt: NOW, _id: expect.any(String), _creationTime: expect.any(Number) },
    ])
  })
})

describe('updateJobs (update_each, first, with filters)', () => {
  it('patches a job whose filters match, removes the unset fields, stamps updatedAt', async () => {
    const t = makeT()
    const job = newJob({ workerId: 'w1', status: 'running' })
    const untouched = newJob({ status: 'running' })
    await enqueue(t, [job, untouched])
    const now = advanceServerTime(1_000)
    await t.mutation(fns.updateJobs, {
      authSecret,
      args: {
        requests: [
          {
            jobId: job.jobId,
            filters: { status: 'running' },
            update: jobUpdate({
              status: 'failed',
              attempts: 1,
              errors: ['boom', 'again'],
              unset: { workerId: true },
            }),
          },
          // Filters that do not match: not patched.
          {
            jobId: untouched.jobId,
            filters: { status: 'queued' },
            update: jobUpdate({ status: 'failed' }),
          },
          // A job that does not exist: nothing happens.
          { jobId: 'missing', update: jobUpdate({ status: 'failed' }) },
        ],
      },
    })
    const { workerId: _removed, ...rest } = job
    expect(await getJob(t, job.jobId)).toEqual({
      ...stored(rest),
      status: 'failed',
      attempts: 1,
      errors: ['boom', 'again'],
      updatedAt: now,
    })
    expect(await getJob(t, untouched.jobId)).toEqual(stored(untouched))
  })
})

describe('completeJobsAndSpawn (update_each, first, inserting children)', () => {
  it('patches the job and enqueues the spawned jobs linked to it, only when the patch happened', async () => {
    const t = makeT()
    const parent = newJob({ status: 'running' })
    const notRunning = newJob()
    await enqueue(t, [parent, notRunning])
    const child = newJob({ dedupKey: 'child-1' })
    const orphan = newJob()
    await t.action(fns.completeJobsAndSpawn, {
      authSecret,
      args: {
        requests: [
          {
            jobId: parent.jobId,
            filters: { status: 'running' },
            update: jobUpdate({ status: 'succeeded', output: '{"ok":true}' }),
            spawn: [child],
          },
          {
            jobId: notRunning.jobId,
            filters: { status: 'running' },
            update: jobUpdate({ status: 'succeeded' }),
            spawn: [orphan],
          },
        ],
      },
    })
    const parentDoc = (await getJob(t, parent.jobId))!
    expect(parentDoc).toMatchObject({ status: 'succeeded', output: '{"ok":true}' })
    expect(await getJob(t, child.jobId)).toEqual({
      ...stored(child),
      parentJobDocId: parentDoc._id,
    })
    expect(await getJob(t, orphan.jobId)).toBeNull()
    expect(await getJob(t, notRunning.jobId)).toEqual(stored(notRunning))
  })

  it('rolls the patch back when a spawned job already exists', async () => {
    const t = makeT()
    const parent = newJob({ status: 'running' })
    const existing = newJob()
    await enqueue(t, [parent, existing])
    const before = await everything(t)
    await expectConvexError(
      t.action(fns.completeJobsAndSpawn, {
        authSecret,
        args: {
          requests: [
            {
              jobId: parent.jobId,
              update: jobUpdate({ status: 'succeeded' }),
              spawn: [newJob(), newJob({ jobId: existing.jobId })],
            },
          ],
        },
      }),
      'ALREADY_EXISTS',
      { index: 'by_jobId' },
    )
    expect(await everything(t)).toEqual(before)
  })
})

describe('updateQueues (update_each, every match, no filters)', () => {
  it('patches every job of the queue in the status and nothing else', async () => {
    const t = makeT()
    const failed = [newJob({ status: 'failed' }), newJob({ status: 'failed' })]
    const otherQueue = newJob({ status: 'failed', queue: 'reports' })
    const queued = newJob()
    await enqueue(t, [...failed, otherQueue, queued])
    const now = advanceServerTime(500)
    await t.mutation(fns.updateQueues, {
      authSecret,
      args: {
        requests: [
          {
            queue: 'emails',
            status: 'failed',
            update: jobUpdate({ status: 'queued', attempts: 0 }),
          },
        ],
      },
    })
    for (const job of failed) {
      expect(await getJob(t, job.jobId)).toEqual({
        ...stored(job),
        status: 'queued',
        updatedAt: now,
      })
    }
    expect(await getJob(t, otherQueue.jobId)).toEqual(stored(otherQueue))
    expect(await getJob(t, queued.jobId)).toEqual(stored(queued))
  })
})

describe('updateWorkers (update_each, every match, with filters)', () => {
  it('patches every registration of the worker whose filters match', async () => {
    const t = makeT()
    const idle = newWorker({ workerId: 'w' })
    const busy = newWorker({ workerId: 'w', state: 'busy', currentJobId: 'j1' })
    await register(t, [idle, busy, newWorker({ workerId: 'other' })])
    const now = advanceServerTime(2_000)
    await t.mutation(fns.updateWorkers, {
      authSecret,
      args: {
        requests: [
          {
            workerId: 'w',
            filters: { state: 'busy' },
            update: { lastSeenAt: PAST, state: 'draining', unset: { currentJobId: true } },
          },
        ],
      },
    })
    const docs = await tableDocs(t, 'workers')
    expect(
      docs.map(({ workerId, state, currentJobId, lastSeenAt }) => ({
        workerId,
        state,
        currentJobId,
        lastSeenAt,
      })),
    ).toEqual([
      { workerId: 'w', state: 'idle', currentJobId: undefined, lastSeenAt: NOW },
      { workerId: 'w', state: 'draining', currentJobId: undefined, lastSeenAt: now },
      { workerId: 'other', state: 'idle', currentJobId: undefined, lastSeenAt: NOW },
    ])
  })
})

describe('claimJobs (update_range with add, limit, returning documents)', () => {
  it('claims due queued jobs of the queue, oldest first, up to the limit, with a lease', async () => {
    const t = makeT()
    const jobs = [
      newJob({ runAt: NOW + 3, timeoutMs: 1_000 }),
      newJob({ runAt: NOW + 1, timeoutMs: 2_000 }),
      newJob({ runAt: NOW + 2, timeoutMs: 3_000 }),
    ]
    const notDue = newJob({ runAt: NOW + 60_000 })
    const otherQueue = newJob({ queue: 'reports' })
    await enqueue(t, [...jobs, notDue, otherQueue])
    const now = advanceServerTime(10_000)
    const claimed: PublicJobDoc[] = await t.action(fns.claimJobs, {
      authSecret,
      args: {
        queue: 'emails',
        // A bound ahead of the server's clock is lowered to it: notDue stays.
        runAtBefore: NOW + 1_000_000,
        update: jobUpdate({ status: 'running', workerId: 'w1' }),
        // A lease start behind the server's clock is raised to it.
        leaseStartedAt: PAST,
        limit: 2,
      },
    })
    expect(claimed.map((doc) => [doc.jobId, doc.leaseExpiresAt])).toEqual([
      [jobs[1]!.jobId, now + 2_000],
      [jobs[2]!.jobId, now + 3_000],
    ])
    for (const doc of claimed) {
      expect(doc).toMatchObject({ status: 'running', workerId: 'w1', updatedAt: now })
      expect(await getJob(t, doc.jobId)).toEqual(doc)
    }
    expect(await getJob(t, jobs[0]!.jobId)).toEqual(stored(jobs[0]!))
    expect(await getJob(t, notDue.jobId)).toEqual(stored(notDue))
    expect(await getJob(t, otherQueue.jobId)).toEqual(stored(otherQueue))
  })

  it('refuses a limit outside its declared bounds', async () => {
    const t = makeT()
    await expectConvexError(
      t.action(fns.claimJobs, {
        authSecret,
        args: {
          queue: 'emails',
          runAtBefore: NOW,
          update: jobUpdate(),
          leaseStartedAt: NOW,
          limit: 0,
        },
      }),
      'INVALID_ARGUMENT',
    )
  })
})

describe('expireLeases (update_range on an optional field, gte + lt, returning the count)', () => {
  it('patches running jobs whose lease expired; jobs without a lease never match', async () => {
    const t = makeT()
    const expired = [
      newJob({ status: 'running', leaseExpiresAt: NOW + 2_000 }),
      newJob({ status: 'running', leaseExpiresAt: NOW + 1_500 }),
      newJob({ status: 'running', leaseExpiresAt: NOW + 3_000 }),
    ]
    const live = newJob({ status: 'running', leaseExpiresAt: NOW + 60_000 })
    const noLease = newJob({ status: 'running' })
    const queued = newJob({ leaseExpiresAt: NOW + 1_000 })
    await enqueue(t, [...expired, live, noLease, queued])
    const now = advanceServerTime(10_000)
    const update = jobUpdate({ status: 'failed', unset: { leaseExpiresAt: true } })
    expect(await t.mutation(fns.expireLeases, { authSecret, args: { update, limit: 2 } })).toBe(2)
    expect(await t.mutation(fns.expireLeases, { authSecret, args: { update, limit: 2 } })).toBe(1)
    expect(await t.mutation(fns.expireLeases, { authSecret, args: { update, limit: 2 } })).toBe(0)
    for (const job of expired) {
      const { leaseExpiresAt: _gone, ...rest } = job
      expect(await getJob(t, job.jobId)).toEqual({
        ...stored(rest),
        status: 'failed',
        updatedAt: now,
      })
    }
    for (const job of [live, noLease, queued])
      expect(await getJob(t, job.jobId)).toEqual(stored(job))
  })
})

describe('test-only deletes (delete_one, delete_all)', () => {
  it('deleteJob deletes one job by id; a missing one is no error', async () => {
    vi.stubEnv(TEST_MODE_ENV, 'true')
    const t = makeT()
    const [a, b] = [newJob(), newJob()]
    await enqueue(t, [a, b])
    await t.mutation(fns.deleteJob, { authSecret, args: { jobId: a.jobId } })
    await t.mutation(fns.deleteJob, { authSecret, args: { jobId: 'missing' } })
    expect((await tableDocs(t, 'jobs')).map((doc) => doc.jobId)).toEqual([b.jobId])
  })

  it('deleteAllJobs and deleteAllWorkers empty their own table only', async () => {
    vi.stubEnv(TEST_MODE_ENV, 'true')
    const t = makeT()
    await enqueue(
      t,
      Array.from({ length: 30 }, () => newJob()),
    )
    await register(t, [newWorker(), newWorker()])
    await t.action(fns.deleteAllJobs, { authSecret, args: {} })
    expect(await tableDocs(t, 'jobs')).toEqual([])
    expect(await tableDocs(t, 'workers')).toHaveLength(2)
    await t.mutation(fns.deleteAllWorkers, { authSecret, args: {} })
    expect(await everything(t)).toEqual({ jobs: [], workers: [] })
  })
})
