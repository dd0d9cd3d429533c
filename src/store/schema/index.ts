export { tasks } from "./tasks.ts";
export { events, taskEventType, workerEvents } from "./events.ts";
export { workers } from "./workers.ts";
export { queueSamples, queues } from "./queues.ts";
export { alerts, schedules } from "./alerts.ts";
export { slackAlertPosts, slackChannels } from "./slack.ts";
