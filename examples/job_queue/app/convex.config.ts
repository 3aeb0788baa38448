// The example's Convex app (hand-written): mounts the generated job queue component.
// Its public, auth-protected API is app/jobQueue.ts (generated).
import { defineApp } from 'convex/server'
import jobQueue from '../generated/component/convex.config'

const app = defineApp()
app.use(jobQueue)

export default app
