import { useEffect, useState } from 'preact/hooks';
import { act, store } from '../session.js';
import { isActive, useStore, type Device, type Job } from '../state.js';
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
                <DeviceRow key={d.configuration} device={d} jobs={jobs.filter((j) => j.configuration === d.configuration)} />
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

function DeviceRow({ device, jobs }: { device: Device; jobs: Job[] }) {
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
        <SendTo configuration={configuration} />
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

/** A paired receiver, as remote_build/get_offloader_settings lists it (what the picker needs). */
interface Receiver {
  label: string;
  hostname: string;
  port: number;
  pin_sha256: string;
}

/**
 * "Send to…": compile this device on one paired receiver (remote_build/submit_job), whatever the
 * automatic placement would do; the page then shows the job. The receivers are read when the picker
 * opens (the devices page does not poll the offloader settings).
 */
function SendTo({ configuration }: { configuration: string }) {
  const [receivers, setReceivers] = useState<Receiver[] | undefined>(undefined);
  const [pin, setPin] = useState('');
  const openPicker = async () => {
    const settings = await act<{ pairings: Receiver[] }>('remote_build/get_offloader_settings');
    if (!settings) return;
    setReceivers(settings.pairings);
    setPin(settings.pairings[0]?.pin_sha256 ?? '');
  };
  if (!receivers) return <button onClick={() => void openPicker()}>Send to…</button>;
  if (receivers.length === 0) {
    return (
      <span class="muted" data-testid="send-to">
        no receiver paired <button onClick={() => setReceivers(undefined)}>Close</button>
      </span>
    );
  }
  const send = async () => {
    const job = await act<Job>('remote_build/submit_job', { pin_sha256: pin, configuration });
    setReceivers(undefined);
    if (job) location.hash = jobHref(job);
  };
  return (
    <span data-testid="send-to">
      <select aria-label={`receiver for ${configuration}`} value={pin} onChange={(e) => setPin(e.currentTarget.value)}>
        {receivers.map((r) => (
          <option key={r.pin_sha256} value={r.pin_sha256}>
            {r.label || `${r.hostname}:${r.port}`}
          </option>
        ))}
      </select>
      <button onClick={() => void send()}>Send compile</button>
      <button onClick={() => setReceivers(undefined)}>Cancel</button>
    </span>
  );
}
