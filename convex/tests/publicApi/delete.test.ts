// deleteById and deleteAll (reference §2, tests only): refused unless the deployment sets
// TASK_EXECUTIONS_STORAGE_TEST_MODE=true (TEST_MODE_REQUIRED, nothing deleted).

import { describe, expect, it, vi } from 'vitest'
import { DELETE_ALL_MAX_LIMIT } from '../../../generated/component/limits'
import {
  allDocs,
  expectConvexError,
  fns,
  insert,
  makeT,
  newExecution,
  newSleepingExecution,
  SECRET,
  seedDirectly,
  TEST_MODE_ENV,
  useDeploymentEnv,
} from './setup'

useDeploymentEnv()

async function seeded() {
  const t = makeT()
  const docs = [newExecution(), newSleepingExecution(), newExecution({ shard: 4 })]
  await insert(t, docs)
  return { t, docs, before: await allDocs(t) }
}

describe('deleteById', () => {
  it.each([undefined, 'false', '1', 'TRUE', ' true'])(
    'is refused with TEST_MODE_REQUIRED when the test mode variable is %j, deleting nothing',
    async (value) => {
      vi.stubEnv(TEST_MODE_ENV, value)
      const { t, docs, before } = await seeded()
      await expectConvexError(
        t.mutation(fns.deleteById, {
          authSecret: SECRET,
          args: { executionId: docs[0]!.executionId },
        }),
        'TEST_MODE_REQUIRED',
      )
      expect(await allDocs(t)).toEqual(before)
    },
  )

  it('checks the secret before the test mode (UNAUTHORIZED when both are wrong)', async () => {
    const { t, docs, before } = await seeded()
    await expectConvexError(
      t.mutation(fns.deleteById, {
        authSecret: 'wrong',
        args: { executionId: docs[0]!.executionId },
      }),
      'UNAUTHORIZED',
    )
    await expectConvexError(t.action(fns.deleteAll, { authSecret: 'wrong' }), 'UNAUTHORIZED')
    expect(await allDocs(t)).toEqual(before)
  })

  it('deletes the one execution in test mode, and ignores an unknown id', async () => {
    vi.stubEnv(TEST_MODE_ENV, 'true')
    const { t, docs, before } = await seeded()
    const remove = (executionId: string) =>
      t.mutation(fns.deleteById, { authSecret: SECRET, args: { executionId } })
    expect(await remove(docs[1]!.executionId)).toBeNull()
    expect(await allDocs(t)).toEqual(before.filter((d) => d.executionId !== docs[1]!.executionId))
    expect(await remove('unknown')).toBeNull()
    expect(await remove(docs[1]!.executionId)).toBeNull()
    expect(await allDocs(t)).toHaveLength(2)
  })
})

describe('deleteAll', () => {
  it.each([undefined, 'false', 'yes'])(
    'is refused with TEST_MODE_REQUIRED when the test mode variable is %j, deleting nothing',
    async (value) => {
      vi.stubEnv(TEST_MODE_ENV, value)
      const { t, before } = await seeded()
      await expectConvexError(t.action(fns.deleteAll, { authSecret: SECRET }), 'TEST_MODE_REQUIRED')
      expect(await allDocs(t)).toEqual(before)
    },
  )

  it('deletes every execution in test mode, with `args` absent (as the client sends it) or {}', async () => {
    vi.stubEnv(TEST_MODE_ENV, 'true')
    const { t } = await seeded()
    expect(await t.action(fns.deleteAll, { authSecret: SECRET })).toBeNull()
    expect(await allDocs(t)).toEqual([])
    await insert(t, [newExecution()])
    expect(await t.action(fns.deleteAll, { authSecret: SECRET, args: {} })).toBeNull()
    expect(await allDocs(t)).toEqual([])
    // An empty table is fine too.
    expect(await t.action(fns.deleteAll, { authSecret: SECRET })).toBeNull()
  })

  it(`deletes more than one batch (${DELETE_ALL_MAX_LIMIT + 1} executions)`, async () => {
    vi.stubEnv(TEST_MODE_ENV, 'true')
    const t = makeT()
    // Seeded straight into the table: insertMany's uniqueness checks are quadratic in convex-test.
    await seedDirectly(
      t,
      Array.from({ length: DELETE_ALL_MAX_LIMIT + 1 }, () => newExecution()),
    )
    expect(await allDocs(t)).toHaveLength(DELETE_ALL_MAX_LIMIT + 1)
    expect(await t.action(fns.deleteAll, { authSecret: SECRET })).toBeNull()
    expect(await allDocs(t)).toEqual([])
  })
})
