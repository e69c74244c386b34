// Checks of the six-field crons (seconds first) that schedules take: garbage collection, replication,
// tag retention.

/** Whether a six-field cron fires at most once a minute: its seconds field names one second. */
export function atMostOncePerMinute(cron: string): boolean {
  return /^[0-5]?\d$/.test(cron.trim().split(/\s+/)[0] ?? '');
}
