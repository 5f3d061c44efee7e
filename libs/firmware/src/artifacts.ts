import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ARTIFACT_CHUNK_BYTES, firmwarePb as pb } from '@kiln/contracts';
import { builtFirmwareDir, invalidArgs, isSafeId, KilnError, resolveBuildPaths } from '@kiln/core';

/**
 * The downloadable images of a configuration's last build: the `.bin` files in its `.pioenvs/<name>/`
 * directory. The device name comes from the StorageJSON the build wrote (no build, no artifacts).
 */
export async function listArtifacts(configDir: string, configuration: string): Promise<pb.Artifact[]> {
  const dir = await artifactDir(configDir, configuration);
  if (!dir) return [];
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.bin')).sort();
  } catch {
    return [];
  }
  const artifacts: pb.Artifact[] = [];
  for (const file of names) {
    const s = await stat(join(dir, file)).catch(() => undefined);
    if (s?.isFile()) artifacts.push({ file, sizeBytes: s.size, modifiedAtMs: Math.floor(s.mtimeMs) });
  }
  return artifacts;
}

/** One chunk of an artifact; `file` must be one listArtifacts names (no paths). */
export async function readArtifact(configDir: string, configuration: string, file: string, offset: number, length: number): Promise<pb.ReadArtifactResponse> {
  if (!isSafeId(file) || !file.endsWith('.bin')) throw invalidArgs('file', file, 'must be an artifact file name like firmware.bin');
  if (!Number.isSafeInteger(offset) || offset < 0) throw invalidArgs('offset', offset, 'must be a non-negative integer');
  const dir = await artifactDir(configDir, configuration);
  const path = dir && join(dir, file);
  const handle = path ? await open(path, 'r').catch(() => undefined) : undefined;
  if (!handle) throw new KilnError('not_found', `no artifact ${JSON.stringify(file)} for ${configuration}`, { configuration, file });
  try {
    const totalSize = (await handle.stat()).size;
    const want = Math.max(0, Math.min(length || ARTIFACT_CHUNK_BYTES, ARTIFACT_CHUNK_BYTES, totalSize - offset));
    const data = Buffer.alloc(want);
    const { bytesRead } = await handle.read(data, 0, want, offset);
    return { data: data.subarray(0, bytesRead), totalSize, eof: offset + bytesRead >= totalSize };
  } finally {
    await handle.close();
  }
}

function artifactDir(configDir: string, configuration: string): Promise<string | undefined> {
  return builtFirmwareDir(resolveBuildPaths(configDir, configuration));
}
