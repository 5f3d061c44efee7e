/**
 * Every bus subject Kiln uses, in one place: `kiln.<service>.<event>` for service traffic,
 * `kiln.system.<service>.(control|health)` for the supervisor.
 */
export const systemSubjects = {
  control: (service: string) => `kiln.system.${service}.control`,
  health: (service: string) => `kiln.system.${service}.health`,
  allHealth: 'kiln.system.*.health',
} as const;

export const logStoreSubjects = {
  append: 'kiln.logstore.append',
  close: 'kiln.logstore.close',
  read: 'kiln.logstore.read',
  delete: 'kiln.logstore.delete',
  list: 'kiln.logstore.list',
  lines: (jobId: string) => `kiln.logstore.lines.${jobId}`,
  closed: (jobId: string) => `kiln.logstore.closed.${jobId}`,
  deleted: (jobId: string) => `kiln.logstore.deleted.${jobId}`,
} as const;
