/**
 * `gcs-stream serve [--port N] [--grpc-port N]`: the local server of `gcs-resumable-stream/testing` in the
 * foreground, so that the CLI (or any GCS client) can be tried without credentials: JSON API and gRPC (appendable
 * objects) on 127.0.0.1, objects in memory. It prints the endpoints and the environment lines that point clients at
 * them, and stops on SIGINT / SIGTERM (exit 0: stopping is how it is meant to end).
 */
import { once } from 'node:events';
import { EXIT_FAILURE, EXIT_OK, type InterruptSignal } from './exit-codes.js';
import { codeOf } from './report-error.js';
import { UsageError } from './usage-error.js';

/** Parsed flags of `gcs-stream serve`. */
export interface ServeFlags {
  port?: number;
  grpcPort?: number;
}

/** Parses a TCP port (0: any free one). */
export function parsePort(text: string): number {
  const port = Number(text);
  if (!/^\s*\d+\s*$/.test(text) || port > 65_535)
    throw new UsageError(`${JSON.stringify(text)} is not a port: use 0-65535 (0: any free port)`);
  return port;
}

/** Runs the server until a signal; resolves with the exit code. */
export async function serve(flags: ServeFlags): Promise<number> {
  // Loaded only for this command: no other command loads the testing server (nor, through it, the gRPC stack).
  const { startLocalGcs } = await import('../testing/index.js');
  let server;
  try {
    server = await startLocalGcs({ grpc: true, port: flags.port ?? 0, grpcPort: flags.grpcPort ?? 0 });
  } catch (error) {
    const code = codeOf(error);
    const why = code === 'EADDRINUSE' ? 'the port is in use (give another with --port / --grpc-port, or 0 for any)' : code;
    process.stderr.write(`gcs-stream: error: cannot start the local server: ${why} (${code})\n`);
    return EXIT_FAILURE;
  }
  const grpcAddress = server.grpc.address;
  process.stdout.write(
    [
      'gcs-stream: local GCS server running (objects are kept in memory until it stops; Ctrl-C stops it)',
      `JSON API: ${server.url}`,
      `gRPC:     ${grpcAddress}`,
      'Point clients at it (no credentials needed), e.g. in another shell:',
      `export STORAGE_EMULATOR_HOST=${server.url} STORAGE_EMULATOR_HOST_GRPC=${grpcAddress}`,
      '',
    ].join('\n'),
  );
  const signal = await Promise.race([
    once(process, 'SIGINT').then((): InterruptSignal => 'SIGINT'),
    once(process, 'SIGTERM').then((): InterruptSignal => 'SIGTERM'),
  ]);
  process.stderr.write(`gcs-stream: ${signal}: stopping the local server\n`);
  await server.close();
  return EXIT_OK;
}
