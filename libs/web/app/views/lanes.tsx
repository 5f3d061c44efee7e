import { act } from '../session.js';
import type { Job } from '../state.js';
import { jobHref, jobState } from './format.js';
import { Progress } from './progress.js';

const LANES = [
  { lane: 'compile', title: 'Compile lane' },
  { lane: 'upload', title: 'Upload lane' },
] as const;

/** Both lanes live: running jobs with progress first, then queued and held ones in order. */
export function Lanes({ jobs }: { jobs: Job[] }) {
  return (
    <section class="lanes">
      {LANES.map(({ lane, title }) => {
        const mine = jobs.filter((j) => j.lane === lane).sort((a, b) => rank(a) - rank(b) || (a.created_at ?? '').localeCompare(b.created_at ?? ''));
        return (
          <div class="lane" data-lane={lane} key={lane}>
            <h2>{title}</h2>
            {mine.length === 0 && <p class="muted">idle</p>}
            <ul>
              {mine.map((j) => (
                <li key={j.id} data-job={j.id} data-state={jobState(j)}>
                  <a href={jobHref(j)}>
                    {j.type} {j.configuration}
                  </a>{' '}
                  <span class={`status ${jobState(j)}`}>{jobState(j)}</span>
                  {j.status === 'running' && <Progress value={j.progress} />}
                  <button class="small" onClick={() => void act('firmware/cancel', { job_id: j.id })}>
                    Cancel
                  </button>
                </li>
              ))}
            </ul>
          </div>
        );
      })}
    </section>
  );
}

const rank = (job: Job): number => (job.status === 'running' ? 0 : job.held ? 2 : 1);
