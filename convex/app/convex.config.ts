// The Convex app: mounts the generated task executions storage component, installed from
// ../generated as the npm package @durable-execution/storage-convex-component.
// Its public, auth-protected API is app/taskExecutionsStorage.ts (generated).
import { defineApp } from 'convex/server'
import taskExecutionsStorage from '@durable-execution/storage-convex-component/convex.config'

const app = defineApp()
app.use(taskExecutionsStorage)

export default app
