/**
 * Composing stored parts into one object: a compose takes at most 32 sources, so more parts are composed in tiers
 * of intermediate temporary objects (each a composite of up to 32 of the tier below) until one compose makes the
 * destination. Every source is named with its generation, so a part replaced meanwhile fails the compose instead
 * of being composed. The CRC32C and size of every intermediate follow from its sources' (crc32c combine).
 */
import { crc32cToBase64 } from '../core/checksum.js';
import { combineCrc32cs } from '../core/crc32c-combine.js';
import { MAX_COMPOSE_SOURCES, type ComposedObject, type ComposeRequest, type ObjectApi } from './object-api.js';

/** A source of a compose: a part or an intermediate, with what is known of its bytes. */
export interface ComposeInput {
  readonly name: string;
  readonly generation: string;
  /** Raw CRC32C of its bytes. */
  readonly crc32c: number;
  readonly size: number;
}

/** What composing needs besides the parts. */
export interface TierPlan {
  readonly api: ObjectApi;
  readonly bucket: string;
  /** The name of intermediate `j` of tier `tier` (a temporary object). */
  readonly intermediateName: (tier: number, j: number) => string;
  /** Told before an intermediate's compose is sent (it may exist from then on), and with its generation once made. */
  readonly created: (name: string, generation: string | undefined) => void;
  /** Composes at once within a tier. */
  readonly concurrency: number;
  /** Checked between composes: once it is aborted no further compose starts. */
  readonly signal: AbortSignal;
}

/** The final compose: destination, resource, preconditions (everything of a `ComposeRequest` but the sources). */
export type FinalCompose = Omit<ComposeRequest, 'sources' | 'expect' | 'signal'>;

/**
 * Composes `parts` (in order) into `final`, through tiers of intermediates when there are more than 32. Returns
 * the destination's resource; the caller checks its CRC32C against the parts' combined.
 */
export async function composeInTiers(plan: TierPlan, parts: readonly ComposeInput[], final: FinalCompose): Promise<ComposedObject> {
  let level = parts;
  for (let tier = 0; level.length > MAX_COMPOSE_SOURCES; tier += 1) {
    const groups: ComposeInput[][] = [];
    for (let start = 0; start < level.length; start += MAX_COMPOSE_SOURCES) groups.push(level.slice(start, start + MAX_COMPOSE_SOURCES));
    const next: ComposeInput[] = new Array<ComposeInput>(groups.length);
    let cursor = 0;
    const worker = async (): Promise<void> => {
      while (cursor < groups.length) {
        const j = cursor++;
        const group = groups[j]!;
        if (group.length === 1) {
          next[j] = group[0]!;
          continue;
        }
        plan.signal.throwIfAborted();
        next[j] = await composeIntermediate(plan, plan.intermediateName(tier, j), group);
      }
    };
    await Promise.all(Array.from({ length: Math.min(plan.concurrency, groups.length) }, worker));
    level = next;
  }
  plan.signal.throwIfAborted();
  return plan.api.composeObject({ ...final, sources: sourcesOf(level), expect: expectOf(level) });
}

async function composeIntermediate(plan: TierPlan, name: string, group: readonly ComposeInput[]): Promise<ComposeInput> {
  plan.created(name, undefined);
  // Not aborted half-way (no signal): once sent, its outcome is awaited, so that it is known what exists to delete.
  const object = await plan.api.composeObject({
    bucket: plan.bucket,
    name,
    sources: sourcesOf(group),
    // The name is new: a retry after a lost answer finds the result through `expect` rather than composing twice.
    preconditions: { ifGenerationMatch: 0 },
    expect: expectOf(group),
  });
  const generation = String(object.generation);
  plan.created(name, generation);
  return { name, generation, crc32c: combineCrc32cs(group), size: expectOf(group).size };
}

function sourcesOf(inputs: readonly ComposeInput[]): Array<{ name: string; generation: string }> {
  return inputs.map((input) => ({ name: input.name, generation: input.generation }));
}

/** The size and base64 CRC32C of the concatenation of `inputs`. */
export function expectOf(inputs: readonly ComposeInput[]): { size: number; crc32c: string } {
  return { size: inputs.reduce((sum, input) => sum + input.size, 0), crc32c: crc32cToBase64(combineCrc32cs(inputs)) };
}
