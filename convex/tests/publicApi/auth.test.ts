// Every public function refuses a call without a valid secret before doing anything
// (reference §2), with a wrong secret, a missing one, or when the deployment has no secret;
// the previous secret is accepted while rotating. Kinds are part of the wire contract.

import { describe, expect, it, vi } from 'vitest'
import * as appModule from '../../app/taskExecutionsStorage'
import { QUERIES, seedWorld, validArgs } from './fixture'
import {
  allDocs,
  callRaw,
  expectConvexError,
  expectValidatorError,
  FUNCTION_NAMES,
  KINDS,
  makeT,
  PREVIOUS_SECRET,
  PREVIOUS_SECRET_ENV,
  SECRET,
  SECRET_ENV,
  TEST_MODE_ENV,
  useDeploymentEnv,
  type FunctionName,
} from './setup'

useDeploymentEnv()

/** A seeded world in test mode, so that only the secret can make a call fail. */
async function world() {
  vi.stubEnv(TEST_MODE_ENV, 'true')
  const t = makeT()
  const w = await seedWorld(t)
  return { t, w, before: await allDocs(t) }
}

describe('kinds', () => {
  it('exports exactly the 17 functions, each public and of its reference kind', () => {
    expect(Object.keys(appModule).sort()).toEqual([...FUNCTION_NAMES].sort())
    for (const name of FUNCTION_NAMES) {
      const fn = appModule[name] as unknown as Record<string, unknown>
      const kind = KINDS[name]
      expect({
        name,
        isPublic: fn.isPublic,
        kind: fn[`is${kind[0]!.toUpperCase()}${kind.slice(1)}`],
      }).toEqual({ name, isPublic: true, kind: true })
      for (const other of ['isQuery', 'isMutation', 'isAction']) {
        if (other.toLowerCase() !== `is${kind}`) expect(fn[other], `${name}.${other}`).toBeFalsy()
      }
    }
  })
})

describe.each(FUNCTION_NAMES)('%s', (name: FunctionName) => {
  it('has an effect when called with the secret (control for the refusals below)', async () => {
    const { t, w, before } = await world()
    const result = await callRaw(t, name, { authSecret: SECRET, args: validArgs(name, w) })
    if (QUERIES.has(name)) {
      expect(result).toEqual([expect.anything()])
      expect((result as unknown[])[0]).not.toEqual([])
    } else {
      expect(await allDocs(t)).not.toEqual(before)
    }
  })

  it('refuses a wrong secret (UNAUTHORIZED) and writes nothing', async () => {
    const { t, w, before } = await world()
    await expectConvexError(
      callRaw(t, name, { authSecret: 'wrong-secret', args: validArgs(name, w) }),
      'UNAUTHORIZED',
    )
    // A prefix of the secret, and the secret with a suffix, are wrong too.
    await expectConvexError(
      callRaw(t, name, { authSecret: SECRET.slice(0, -1), args: validArgs(name, w) }),
      'UNAUTHORIZED',
    )
    await expectConvexError(
      callRaw(t, name, { authSecret: `${SECRET}x`, args: validArgs(name, w) }),
      'UNAUTHORIZED',
    )
    expect(await allDocs(t)).toEqual(before)
  })

  it('refuses a missing secret (argument validation) and writes nothing', async () => {
    const { t, w, before } = await world()
    await expectValidatorError(callRaw(t, name, { args: validArgs(name, w) }), 'authSecret')
    expect(await allDocs(t)).toEqual(before)
  })

  it('refuses an empty secret (UNAUTHORIZED) and writes nothing', async () => {
    const { t, w, before } = await world()
    await expectConvexError(
      callRaw(t, name, { authSecret: '', args: validArgs(name, w) }),
      'UNAUTHORIZED',
    )
    expect(await allDocs(t)).toEqual(before)
  })

  it('refuses every call when the deployment has no secret (fails closed)', async () => {
    const { t, w, before } = await world()
    vi.stubEnv(SECRET_ENV, undefined)
    await expectConvexError(
      callRaw(t, name, { authSecret: SECRET, args: validArgs(name, w) }),
      'UNAUTHORIZED',
    )
    // An empty secret on the deployment counts as none: an empty secret in the call fails.
    vi.stubEnv(SECRET_ENV, '')
    await expectConvexError(
      callRaw(t, name, { authSecret: '', args: validArgs(name, w) }),
      'UNAUTHORIZED',
    )
    expect(await allDocs(t)).toEqual(before)
  })
})

describe('secret rotation', () => {
  it('accepts the previous secret and the current one while both are set', async () => {
    vi.stubEnv(PREVIOUS_SECRET_ENV, PREVIOUS_SECRET)
    const { t, w } = await world()
    for (const authSecret of [PREVIOUS_SECRET, SECRET]) {
      const result = await callRaw(t, 'getManyById', {
        authSecret,
        args: validArgs('getManyById', w),
      })
      expect(result).toEqual([expect.objectContaining({ executionId: w.ready.executionId })])
    }
    await callRaw(t, 'updateManyById', {
      authSecret: PREVIOUS_SECRET,
      args: validArgs('updateManyById', w),
    })
    expect((await allDocs(t)).find((d) => d.executionId === w.ready.executionId)).toMatchObject({
      retryAttempts: 1,
    })
  })

  it('refuses the previous secret once it is removed from the deployment', async () => {
    vi.stubEnv(PREVIOUS_SECRET_ENV, PREVIOUS_SECRET)
    const { t, w, before } = await world()
    vi.stubEnv(PREVIOUS_SECRET_ENV, undefined)
    await expectConvexError(
      callRaw(t, 'updateManyById', {
        authSecret: PREVIOUS_SECRET,
        args: validArgs('updateManyById', w),
      }),
      'UNAUTHORIZED',
    )
    expect(await allDocs(t)).toEqual(before)
  })

  it('refuses a secret that is neither the current nor the previous one', async () => {
    vi.stubEnv(PREVIOUS_SECRET_ENV, PREVIOUS_SECRET)
    const { t, w, before } = await world()
    await expectConvexError(
      callRaw(t, 'insertMany', { authSecret: 'neither', args: validArgs('insertMany', w) }),
      'UNAUTHORIZED',
    )
    expect(await allDocs(t)).toEqual(before)
  })
})
