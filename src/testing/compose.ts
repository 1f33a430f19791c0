/**
 * The compose call of the local GCS server (`POST /storage/v1/b/BUCKET/o/NAME/compose`), with GCS's rules: 1 to 32
 * sources of the destination's bucket, each live (in the generation it names, if it names one, else 404) and
 * meeting its own `objectPreconditions`; at most 1024 components in the result; the destination's preconditions
 * (`ifGenerationMatch`, 0 included, `ifMetagenerationMatch`) from the query; the result a new generation with the
 * destination resource's metadata, `componentCount`, the CRC32C of the concatenation (combined from the sources',
 * as GCS does) and no MD5.
 */
import type { IncomingMessage } from 'node:http';
import { combineCrc32c } from '../core/crc32c-combine.js';
import type { ObjectContent, ObjectStore } from './object-store.js';
import { errorOutcome, jsonOutcome, type Outcome } from './outcome.js';
import { isRecord, metadataOf, nonNegativeInteger, preconditionsOf } from './request-fields.js';

/** GCS's limit on the sources of one compose. */
export const MAX_COMPOSE_SOURCES = 32;
/** GCS's limit on the components of a composite object. */
export const MAX_COMPONENT_COUNT = 1024;

/** One source as the request names it. */
interface SourceSpec {
  name: string;
  generation: string | undefined;
  ifGenerationMatch: string | undefined;
}

/** The sources of a compose request body, or the message of a 400. */
function sourcesOf(body: Record<string, unknown>): SourceSpec[] | string {
  const list = body.sourceObjects;
  if (!Array.isArray(list) || list.length === 0) return 'The compose request must name at least one source object (sourceObjects).';
  if (list.length > MAX_COMPOSE_SOURCES) {
    return `The number of source components provided (${list.length}) exceeds the maximum (${MAX_COMPOSE_SOURCES}).`;
  }
  const sources: SourceSpec[] = [];
  for (const entry of list as unknown[]) {
    if (!isRecord(entry) || typeof entry.name !== 'string' || entry.name === '') return 'Every source object must have a name.';
    const generation = integerField(entry.generation);
    if (generation === null) return `Invalid generation of source ${entry.name}.`;
    const conditions = isRecord(entry.objectPreconditions) ? entry.objectPreconditions : {};
    const ifGenerationMatch = integerField(conditions.ifGenerationMatch);
    if (ifGenerationMatch === null) return `Invalid objectPreconditions.ifGenerationMatch of source ${entry.name}.`;
    sources.push({ name: entry.name, generation, ifGenerationMatch });
  }
  return sources;
}

/** A JSON int64 field (a decimal string or a number): its decimal text, undefined when absent, null when malformed. */
function integerField(value: unknown): string | undefined | null {
  if (value === undefined || value === null) return undefined;
  const text = typeof value === 'number' ? String(value) : typeof value === 'string' ? value : '';
  const parsed = nonNegativeInteger(text);
  return parsed === undefined ? null : String(parsed);
}

/** Carries out a compose into `bucket/name` and returns its answer. */
export function composeOutcome(store: ObjectStore, bucket: string, name: string, url: URL, req: IncomingMessage, text: string): Outcome {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return errorOutcome(400, 'The compose request body is not JSON.');
  }
  if (!isRecord(body)) return errorOutcome(400, 'The compose request body must be a JSON object.');
  const sources = sourcesOf(body);
  if (typeof sources === 'string') return errorOutcome(400, sources);
  const destination = isRecord(body.destination) ? body.destination : {};
  if (typeof destination.bucket === 'string' && destination.bucket !== bucket) {
    return errorOutcome(400, 'The destination bucket must be the bucket of the request.');
  }
  const preconditions = preconditionsOf(url);
  if (typeof preconditions === 'string') return errorOutcome(400, preconditions);

  const parts: Buffer[] = [];
  let size = 0;
  let crc32c = 0;
  let components = 0;
  let discarded = false;
  for (const source of sources) {
    const object = store.get(bucket, source.name);
    if (object === undefined || (source.generation !== undefined && source.generation !== object.resource.generation)) {
      const which = source.generation === undefined ? '' : ` (generation ${source.generation})`;
      return errorOutcome(404, `No such object: ${bucket}/${source.name}${which}`);
    }
    if (source.ifGenerationMatch !== undefined && source.ifGenerationMatch !== object.resource.generation) {
      return errorOutcome(
        412,
        `objectPreconditions.ifGenerationMatch=${source.ifGenerationMatch} of source ${source.name} failed: the live generation is ${object.resource.generation}.`,
      );
    }
    if (object.resource.timeFinalized === undefined) return errorOutcome(400, `Source ${source.name} is an unfinalized appendable object.`);
    const sourceCrc = Buffer.from(object.resource.crc32c, 'base64').readUInt32BE(0);
    crc32c = combineCrc32c(crc32c, sourceCrc, object.size);
    size += object.size;
    components += object.resource.componentCount ?? 1;
    discarded ||= object.discarded;
    if (!object.discarded) parts.push(...object.slice(0, object.size));
  }
  if (components > MAX_COMPONENT_COUNT) {
    return errorOutcome(400, `The composite would have ${components} components; at most ${MAX_COMPONENT_COUNT} are allowed.`);
  }
  const problem = store.preconditionProblem(bucket, name, preconditions);
  if (problem !== undefined) return errorOutcome(412, problem);
  // No MD5: GCS computes none for a composite.
  const content: ObjectContent = { parts: discarded ? [] : parts, size, crc32c, discarded };
  const object = store.create(bucket, name, content, metadataOf(destination, req, url));
  object.resource.componentCount = components;
  return jsonOutcome(200, object.resource);
}
