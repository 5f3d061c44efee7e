import type { Job } from '../state.js';

export const time = (iso: string | null): string => (iso ? new Date(iso).toLocaleTimeString() : '');

export const jobHref = (job: Job): string => `#/jobs/${encodeURIComponent(job.id)}`;

/** What a job row says: held uploads wait for their compile, everything else shows its status. */
export const jobState = (job: Job): string => (job.held && job.status === 'queued' ? 'held' : job.status);

/** A pin for people to compare out of band: upper-case hex in groups of four (as `kiln pair` prints it). */
export const formatPin = (fingerprint: string): string => fingerprint.toUpperCase().match(/.{1,4}/g)?.join(' ') ?? '';

/** A remaining duration as m:ss (h:mm:ss past an hour). */
export function countdown(ms: number): string {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const s = String(total % 60).padStart(2, '0');
  const m = Math.floor(total / 60) % 60;
  const h = Math.floor(total / 3600);
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}
