import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ARTIFACT_CHUNK_BYTES, type BusClient, type firmwarePb } from '@kiln/contracts';
import { toKilnError } from '@kiln/core';

/** A download token lives this long: long enough for a browser to follow the link, short enough to be useless if it leaks. */
export const DOWNLOAD_TOKEN_TTL_MS = 60_000;

interface Grant {
  configuration: string;
  file: string;
  expiresAt: number;
}

/** Single-use, short-lived, unguessable (256 random bits) tokens for `GET /api/firmware/download`. */
export class DownloadTokens {
  private readonly grants = new Map<string, Grant>();

  constructor(private readonly now: () => number = Date.now) {}

  mint(configuration: string, file: string): string {
    this.sweep();
    const token = randomBytes(32).toString('base64url');
    this.grants.set(token, { configuration, file, expiresAt: this.now() + DOWNLOAD_TOKEN_TTL_MS });
    return token;
  }

  /** The grant, removed on first use; undefined when unknown, used or expired. */
  consume(token: string): Grant | undefined {
    const grant = this.grants.get(token);
    this.grants.delete(token);
    return grant && grant.expiresAt > this.now() ? grant : undefined;
  }

  get size(): number {
    return this.grants.size;
  }

  private sweep(): void {
    const now = this.now();
    for (const [token, grant] of this.grants) if (grant.expiresAt <= now) this.grants.delete(token);
  }
}

/** An artifact's bytes in bus-sized chunks through firmware/read_artifact, in order (each carries `totalSize`). */
export async function* artifactChunks(firmware: BusClient<firmwarePb.FirmwareServiceDefinition>, configuration: string, file: string): AsyncGenerator<firmwarePb.ReadArtifactResponse> {
  let offset = 0;
  for (;;) {
    const chunk = await firmware.readArtifact({ configuration, file, offset, length: ARTIFACT_CHUNK_BYTES });
    yield chunk;
    offset += chunk.data.length;
    if (chunk.eof || chunk.data.length === 0) return;
  }
}

/** `GET /api/firmware/download?token=…`: streams the artifact in bus-sized chunks. */
export async function serveDownload(req: IncomingMessage, res: ServerResponse, tokens: DownloadTokens, firmware: BusClient<firmwarePb.FirmwareServiceDefinition>): Promise<void> {
  const token = new URL(req.url ?? '/', 'http://localhost').searchParams.get('token') ?? '';
  const grant = token ? tokens.consume(token) : undefined;
  if (!grant) {
    res.writeHead(403, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error_code: 'not_authenticated', details: { message: 'download token is unknown, used or expired; ask for a new one with firmware/download_token' } }));
    return;
  }
  try {
    for await (const chunk of artifactChunks(firmware, grant.configuration, grant.file)) {
      // Headers once the first chunk names the size (a missing artifact is still a clean 404 before them).
      if (!res.headersSent) {
        res.writeHead(200, {
          'content-type': 'application/octet-stream',
          'content-length': String(chunk.totalSize),
          'content-disposition': `attachment; filename="${grant.configuration.replace(/\.ya?ml$/, '')}-${grant.file}"`,
          'cache-control': 'no-store',
        });
      }
      if (!res.write(chunk.data)) await new Promise((resolve) => res.once('drain', resolve));
    }
    res.end();
  } catch (err) {
    const error = toKilnError(err);
    if (res.headersSent) return void res.destroy(error);
    res.writeHead(error.code === 'not_found' ? 404 : 500, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error_code: error.code, details: { message: error.message } }));
  }
}
