import { useEffect, useRef, useState } from 'preact/hooks';
import { act, socket, store } from '../session.js';
import { isActive, useStore, type Job } from '../state.js';
import { jobState, time } from './format.js';
import { Progress } from './progress.js';

/** Lines kept on the page; the server keeps 2000 per finished job, a live flood is bounded here. */
const MAX_LINES = 10_000;
const TRIM_NOTICE = /^\.\.\. \[output trimmed: \d+ earlier line\(s\) elided\]/;

/**
 * One job: its state and a log that follows live (history, then live lines; auto-scroll while the
 * reader is at the bottom). Re-followed from scratch after a reconnect.
 */
export function JobPage({ id }: { id: string }) {
  const state = useStore(store);
  const [job, setJob] = useState<Job | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [trimmed, setTrimmed] = useState<string | undefined>(undefined);
  const log = useRef<HTMLPreElement>(null);

  useEffect(() => {
    const pre = log.current;
    if (!state.synced || !pre) return;
    pre.textContent = '';
    setTrimmed(undefined);
    setError(undefined);
    const handle = socket.stream('firmware/follow_job', { job_id: id }, {
      event: (name, data) => {
        if (name === 'job_state') setJob(data as Job);
        else if (name === 'job_progress') setJob((j) => j && { ...j, progress: (data as { progress: number }).progress });
        else if (name === 'job_output') {
          const lines = (data as { lines: string[] }).lines;
          const notice = lines.find((l) => TRIM_NOTICE.test(l));
          if (notice) setTrimmed(notice);
          append(pre, lines);
        }
      },
      result: (value) => setJob(value as Job),
      error: (err) => err.code !== 'disconnected' && setError(err.message),
    });
    return () => handle.stop();
  }, [id, state.synced]);

  // Lifecycle from subscribe_events wins when it is newer (e.g. a cancel seen there first).
  const live = state.jobs.get(id);
  const shown = live && job && isActive(job) && !isActive(live) ? live : (job ?? live);
  return (
    <section class="job" data-testid="job" data-job={id} data-status={shown?.status ?? ''}>
      <p>
        <a href="#/">← devices</a>
      </p>
      <h2>
        {shown ? `${shown.type} ${shown.configuration}` : id} <span class={`status ${shown ? jobState(shown) : ''}`} data-testid="job-status">{shown ? jobState(shown) : ''}</span>
      </h2>
      {shown && (
        <p class="meta">
          {shown.lane} lane · queued {time(shown.created_at)} {shown.started_at && `· started ${time(shown.started_at)}`} {shown.finished_at && `· finished ${time(shown.finished_at)}`}
          {shown.exit_code !== null && ` · exit ${shown.exit_code}`}
          {shown.error && <span class="error"> · {shown.error}</span>}
        </p>
      )}
      {shown && shown.status === 'running' && <Progress value={shown.progress} />}
      {shown && isActive(shown) && (
        <button onClick={() => void act('firmware/cancel', { job_id: id })} data-testid="cancel">
          Cancel
        </button>
      )}
      {error && <p class="error">{error}</p>}
      {trimmed && (
        <p class="trim-banner" data-testid="trim-notice">
          {trimmed.replace(/^\.\.\. \[|\]$/g, '')}: the log below starts later
        </p>
      )}
      <pre class="log" ref={log} data-testid="log" />
    </section>
  );
}

/** Append lines, keeping the view pinned to the bottom only if the reader was already there. */
function append(pre: HTMLPreElement, lines: string[]): void {
  const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 24;
  const fragment = document.createDocumentFragment();
  for (const line of lines) {
    const row = document.createElement('div');
    row.textContent = line;
    if (TRIM_NOTICE.test(line)) row.className = 'trim-notice';
    else if (/\bERROR\b/.test(line)) row.className = 'err';
    else if (/\bWARNING\b/.test(line)) row.className = 'warn';
    fragment.append(row);
  }
  pre.append(fragment);
  while (pre.childElementCount > MAX_LINES) pre.firstElementChild!.remove();
  if (atBottom) pre.scrollTop = pre.scrollHeight;
}
