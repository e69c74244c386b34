// Checks of the six-field crons (seconds first) that replication and tag retention schedules take.
// (Garbage collection's schedule keeps accepting any cron: a system admin's choice, and the cluster
// tests run it every second.)

/** Whether a six-field cron fires at most once a minute: its seconds field names one second. */
export function atMostOncePerMinute(cron: string): boolean {
  return /^[0-5]?\d$/.test(cron.trim().split(/\s+/)[0] ?? '');
}
