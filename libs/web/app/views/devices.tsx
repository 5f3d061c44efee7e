import { useEffect, useState } from 'preact/hooks';
import { act, store } from '../session.js';
import { isActive, useStore, type Device, type Job, type Pairing } from '../state.js';
import { jobHref, jobState, time } from './format.js';
import { Lanes } from './lanes.js';

/** Device list (status, last build, actions), both lanes, recent jobs. */
export function DevicesPage() {
  const state = useStore(store);
  const devices = [...state.devices.values()].sort((a, b) => a.name.localeCompare(b.name));
  const jobs = [...state.jobs.values()].sort((a, b) => (b.created_at ?? '').localeCompare(a.created_at ?? ''));
  useEffect(() => {
    // The benchmark's "first render": the device list drawn from the first snapshot.
    if (state.synced && performance.getEntriesByName('kiln:devices-rendered').length === 0) performance.mark('kiln:devices-rendered');
  }, [state.synced]);
  return (
    <>
      <section>
        <h2>Devices</h2>
        {!state.synced && state.devices.size === 0 ? (
          <p class="muted">loading…</p>
        ) : (
          // While reconnecting, the last known list stays visible (dimmed) until the new snapshot replaces it.
          <table class={state.synced ? 'devices' : 'devices stale'} data-testid="devices">
            <thead>
              <tr>
                <th>Device</th>
                <th>Platform</th>
                <th>Status</th>
                <th>Last build</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {devices.map((d) => (
                <DeviceRow key={d.configuration} device={d} jobs={jobs.filter((j) => j.configuration === d.configuration)} receivers={state.offloader.value?.pairings} />
              ))}
              {devices.length === 0 && (
                <tr>
                  <td colSpan={5} class="muted">
                    No devices yet: add one below or put a YAML file in the config dir.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
        )}
        <NewDevice />
      </section>
      <Lanes jobs={jobs.filter(isActive)} />
      <section>
        <h2>Recent jobs</h2>
        <ul class="jobs" data-testid="recent-jobs">
          {jobs
            .filter((j) => !isActive(j))
            .slice(0, 20)
            .map((j) => (
              <li key={j.id} data-job={j.id} data-status={j.status}>
                <a href={jobHref(j)}>
                  {j.type} {j.configuration}
                </a>{' '}
                <span class={`status ${j.status}`}>{j.status}</span> <span class="muted">{time(j.finished_at)}</span>
              </li>
            ))}
        </ul>
      </section>
    </>
  );
}

function DeviceRow({ device, jobs, receivers }: { device: Device; jobs: Job[]; receivers: Pairing[] | undefined }) {
  const active = jobs.find((j) => j.status === 'running') ?? jobs.find(isActive);
  const lastBuild = jobs.find((j) => (j.type === 'compile' || j.type === 'install') && !isActive(j));
  const configuration = device.configuration;
  return (
    <tr data-device={configuration}>
      <td>
        <strong>{device.friendly_name || device.name}</strong>
        <div class="muted">{configuration}</div>
      </td>
      <td>
        {device.platform}
        <div class="muted">{device.board}</div>
      </td>
      <td data-testid="device-status">
        {active ? (
          <a href={jobHref(active)} class={`status ${active.status}`}>
            {active.type} {jobState(active)}
          </a>
        ) : (
          <span class="muted">{device.deployed_version ? `deployed ${device.deployed_version}` : 'idle'}</span>
        )}
      </td>
      <td data-testid="last-build">
        {lastBuild ? (
          <a href={jobHref(lastBuild)} class={`status ${lastBuild.status}`}>
            {lastBuild.status} {time(lastBuild.finished_at)}
          </a>
        ) : (
          <span class="muted">{device.has_build ? 'built' : 'never'}</span>
        )}
      </td>
      <td class="actions">
        <button onClick={() => void act('firmware/install', { configuration, port: 'OTA' })}>Install</button>
        <button onClick={() => void act('firmware/compile', { configuration })}>Compile</button>
        <button onClick={() => void act('firmware/clean', { configuration })}>Clean</button>
        <SendTo configuration={configuration} receivers={receivers} />
      </td>
    </tr>
  );
}

function NewDevice() {
  const [name, setName] = useState('');
  return (
    <form
      class="inline"
      onSubmit={(e) => {
        e.preventDefault();
        if (name.trim()) void act('devices/create', { name: name.trim() }).then((d) => d && setName(''));
      }}
    >
      <input placeholder="new device name" value={name} onInput={(e) => setName(e.currentTarget.value)} aria-label="new device name" />
      <button type="submit">Add device</button>
    </form>
  );
}

/**
 * "Send to…": compile this device on one paired receiver (remote_build/submit_job), whatever the
 * automatic placement would do; the page then shows the job. The receivers are this host's pairings
 * as the store keeps them (initial_state, then remote_build_offloader_changed); without them (the
 * snapshot could not read the offloader) opening the picker reads them once.
 */
function SendTo({ configuration, receivers }: { configuration: string; receivers: Pairing[] | undefined }) {
  const [picking, setPicking] = useState(false);
  const [chosen, setChosen] = useState('');
  const openPicker = () => {
    if (!receivers) store.onMissingRemote('offloader');
    setPicking(true);
  };
  if (!picking) return <button onClick={openPicker}>Send to…</button>;
  const available = receivers ?? [];
  if (available.length === 0) {
    return (
      <span class="muted" data-testid="send-to">
        no receiver paired <button onClick={() => setPicking(false)}>Close</button>
      </span>
    );
  }
  // The first receiver until one is chosen (or when the chosen one was unpaired meanwhile).
  const pin = available.some((r) => r.pin_sha256 === chosen) ? chosen : available[0]!.pin_sha256;
  const send = async () => {
    const job = await act<Job>('remote_build/submit_job', { pin_sha256: pin, configuration });
    setPicking(false);
    if (job) location.hash = jobHref(job);
  };
  return (
    <span data-testid="send-to">
      <select aria-label={`receiver for ${configuration}`} value={pin} onChange={(e) => setChosen(e.currentTarget.value)}>
        {available.map((r) => (
          <option key={r.pin_sha256} value={r.pin_sha256}>
            {r.label || `${r.hostname}:${r.port}`}
          </option>
        ))}
      </select>
      <button onClick={() => void send()}>Send compile</button>
      <button onClick={() => setPicking(false)}>Cancel</button>
    </span>
  );
}
