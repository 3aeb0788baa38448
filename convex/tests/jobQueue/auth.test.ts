// Every public function of the job queue example: its kind, a call with the secret that has an
// effect, and the refusals (wrong or missing secret, no secret configured, test mode) that
// write nothing.

import { describe, expect, it, vi } from 'vitest'
import * as appModule from '../../../examples/job_queue/app/jobQueue'
import {
  callRaw,
  everything,
  expectConvexError,
  FUNCTION_NAMES,
  KINDS,
  makeT,
  SECRET,
  SECRET_ENV,
  seedWorld,
  TEST_MODE_ENV,
  TEST_ONLY,
  useDeploymentEnv,
  validArgs,
  type FunctionName,
} from './setup'

useDeploymentEnv()

async function world(testMode: boolean) {
  if (testMode) vi.stubEnv(TEST_MODE_ENV, 'true')
  const t = makeT()
  await seedWorld(t)
  return { t, before: await everything(t) }
}

describe('kinds', () => {
  it('exports exactly the 14 declared functions, each public and of its declared kind', () => {
    expect(Object.keys(appModule).sort()).toEqual([...FUNCTION_NAMES].sort())
    for (const name of FUNCTION_NAMES) {
      const fn = appModule[name] as unknown as Record<string, unknown>
      const flag = `is${KINDS[name][0]!.toUpperCase()}${KINDS[name].slice(1)}`
      expect({ name, isPublic: fn.isPublic, kind: fn[flag] }).toEqual({
        name,
        isPublic: true,
        kind: true,
      })
    }
  })
})

describe.each(FUNCTION_NAMES)('%s', (name: FunctionName) => {
  it('has an effect when called with the secret', async () => {
    const { t, before } = await world(true)
    const result = await callRaw(t, name, { authSecret: SECRET, args: validArgs(name) })
    if (KINDS[name] === 'query') {
      expect(result).toEqual([expect.anything()])
      expect((result as unknown[])[0]).not.toEqual([])
    } else {
      expect(await everything(t)).not.toEqual(before)
    }
  })

  it('refuses a wrong or missing secret (UNAUTHORIZED) and writes nothing', async () => {
    const { t, before } = await world(true)
    for (const authSecret of ['wrong', SECRET.slice(0, -1), `${SECRET}x`, '']) {
      await expectConvexError(
        callRaw(t, name, { authSecret, args: validArgs(name) }),
        'UNAUTHORIZED',
      )
    }
    expect(await everything(t)).toEqual(before)
  })

  it('refuses every call when the deployment has no secret', async () => {
    const { t, before } = await world(true)
    vi.stubEnv(SECRET_ENV, undefined)
    const data = await expectConvexError(
      callRaw(t, name, { authSecret: SECRET, args: validArgs(name) }),
      'UNAUTHORIZED',
    )
    expect(String(data.message)).toContain(SECRET_ENV)
    expect(await everything(t)).toEqual(before)
  })

  it(TEST_ONLY.has(name) ? 'runs only in test mode' : 'runs without test mode', async () => {
    const { t, before } = await world(false)
    const call = callRaw(t, name, { authSecret: SECRET, args: validArgs(name) })
    if (TEST_ONLY.has(name)) {
      const data = await expectConvexError(call, 'TEST_MODE_REQUIRED')
      expect(String(data.message)).toContain(`${TEST_MODE_ENV}=true`)
      expect(await everything(t)).toEqual(before)
    } else {
      await call
    }
  })
})
