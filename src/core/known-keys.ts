/**
 * Refusing option names nobody reads. Plain JavaScript callers get no compile error for `chunksize` or
 * `contentTye`; without this the option would be silently ignored and the upload would run with a default the
 * caller did not mean. The suggestion is the known name closest by edit distance.
 */
import { InvalidArgumentError } from './errors.js';

/**
 * Optimal-string-alignment distance (Levenshtein plus adjacent transpositions) between `a` and `b`, compared
 * without regard to case: `chunksize` is one typo of `chunkSize`, not three.
 */
export function editDistance(a: string, b: string): number {
  const s = a.toLowerCase();
  const t = b.toLowerCase();
  // Three rows suffice: the transposition looks two rows back.
  let before: number[] = [];
  let previous = Array.from({ length: t.length + 1 }, (_, j) => j);
  for (let i = 1; i <= s.length; i++) {
    const current = [i];
    for (let j = 1; j <= t.length; j++) {
      const cost = s[i - 1] === t[j - 1] ? 0 : 1;
      let best = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
      if (i > 1 && j > 1 && s[i - 1] === t[j - 2] && s[i - 2] === t[j - 1]) best = Math.min(best, before[j - 2]! + 1);
      current.push(best);
    }
    before = previous;
    previous = current;
  }
  return previous[t.length]!;
}

/**
 * The candidate closest to `name`, if one is close enough to be a plausible typo of it: within a third of the
 * longer name's length (at least one edit). Ties go to the first candidate.
 */
export function closestName(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(name, candidate);
    const limit = Math.max(1, Math.floor(Math.max(name.length, candidate.length) / 3));
    if (distance <= limit && distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/**
 * A set of option names: a record with one entry per name, so that `satisfies Record<keyof Options, true>` makes
 * the compiler check it against the options' interface (a name missing from either side does not compile).
 */
export type KnownKeys<T> = Readonly<Record<keyof T, true>>;

/**
 * Throws `InvalidArgumentError` for the first own enumerable key of `given` that `known` does not list, naming the
 * closest known one. `path` prefixes the key in the message (`retry.` for nested options).
 */
export function refuseUnknownKeys(given: object, known: Readonly<Record<string, true>>, path = ''): void {
  for (const key of Object.keys(given)) {
    if (Object.hasOwn(known, key)) continue;
    const suggestion = closestName(key, Object.keys(known));
    const hint = suggestion === undefined ? '' : `: did you mean '${path}${suggestion}'?`;
    throw new InvalidArgumentError(`unknown option '${path}${key}'${hint}`);
  }
}
