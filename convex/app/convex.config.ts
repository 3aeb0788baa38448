// The Convex app: mounts the generated task executions storage component.
// Its public, auth-protected API is app/taskExecutionsStorage.ts (generated).
import { defineApp } from 'convex/server'
import taskExecutionsStorage from '../../generated/component/convex.config'

const app = defineApp()
app.use(taskExecutionsStorage)

export default app
