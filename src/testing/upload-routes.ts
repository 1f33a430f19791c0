/**
 * The resumable upload routes of the local GCS server (`/upload/storage/v1/b/BUCKET/o`): open a session (`POST`),
 * send bytes, finalize or query it (`PUT`), cancel it (`DELETE`). Each route parses its request, applies it to the
 * session or the object store and builds its answer; the fault stage it runs in carries out the faults around it.
 */
import type { EventEmitter } from 'node:events';
import type { ChaosRequest } from './chaos.js';
import { kindsOf, parseContentRange, type ContentRange } from './content-range.js';
import type { Body, Exchange } from './exchange.js';
import type { FaultStage, RouteReply } from './fault-stage.js';
import type { FaultContext } from './faults.js';
import { crc32cToBase64, isValidBucketName, objectNameProblem, type ObjectStore } from './object-store.js';
import { errorOutcome, incomplete, jsonOutcome, type Outcome } from './outcome.js';
import { decodeSegment, headerValue, isRecord, metadataOf, nonNegativeInteger, parseGoogHash, preconditionsOf } from './request-fields.js';
import { CHUNK_ALIGNMENT, UploadSession } from './sessions.js';

/** What the upload routes need of their server. */
export interface UploadRoutesHost {
  readonly store: ObjectStore;
  /** Told when an object is created, before its answer goes out. */
  readonly activity: EventEmitter;
  /** Keep only the size and checksums of uploads (`discardData`). */
  readonly discardData: boolean;
  /** Compute MD5 digests of uploads (`computeMd5`). */
  readonly computeMd5: boolean;
  /** The server's base URL, where session URIs point. */
  url(): string;
  /** Decides the fault of an upload request (scripted, else chaos, else none) and returns the stage carrying it out. */
  stage(ex: Exchange, context: FaultContext, request: ChaosRequest): FaultStage;
}

function sameBase64(a: string, b: string): boolean {
  return Buffer.from(a, 'base64').equals(Buffer.from(b, 'base64'));
}

/** The resumable upload routes and the sessions they keep. */
export class UploadRoutes {
  readonly #host: UploadRoutesHost;
  readonly #sessions = new Map<string, UploadSession>();
  readonly #sessionList: UploadSession[] = [];
  #opens = 0;
  /** The index the next open takes (see #open). */
  #nextIndex = 0;
  #cancelled = 0;

  /** Routes for a server; they keep their sessions for its lifetime. */
  constructor(host: UploadRoutesHost) {
    this.#host = host;
  }

  /** Every session, in the order their opens arrived (their indexes). */
  get sessions(): readonly UploadSession[] {
    return this.#sessionList;
  }

  /** How many sessions were cancelled by a `DELETE`. */
  get cancelledSessions(): number {
    return this.#cancelled;
  }

  /** Handles a request whose path starts with `/upload/storage/v1/b/`; `segments` is that path split on `/`. */
  async route(ex: Exchange, url: URL, segments: readonly string[]): Promise<void> {
    const method = ex.record.method;
    // ['', 'upload', 'storage', 'v1', 'b', BUCKET, 'o']
    const bucket = decodeSegment(segments[5] ?? '');
    if (segments.length !== 7 || segments[6] !== 'o' || bucket === undefined) {
      return ex.drainAndSend(errorOutcome(404, `Not found: ${url.pathname}`));
    }
    const uploadId = url.searchParams.get('upload_id');
    if (uploadId === null) {
      if (method !== 'POST') return ex.drainAndSend(errorOutcome(405, `${method} needs an upload_id.`));
      ex.record.kind = 'open';
      return this.#open(ex, bucket, url);
    }
    const session = this.#sessions.get(uploadId);
    ex.record.kind = method === 'DELETE' ? 'cancel' : 'other';
    if (method === 'PUT') {
      const range = parseContentRange(headerValue(ex.req, 'content-range'));
      ex.record.kind = typeof range === 'string' ? 'chunk' : (kindsOf(range)[0] ?? 'chunk');
    }
    if (session === undefined) return ex.drainAndSend(errorOutcome(404, 'No such upload session.'));
    ex.record.session = session.index;
    ex.record.bucket = session.spec.bucket;
    ex.record.object = session.spec.name;
    if (method === 'PUT') return this.#put(ex, session);
    if (method === 'DELETE') return this.#cancel(ex, session);
    return ex.drainAndSend(errorOutcome(405, `${method} is not supported on an upload session.`));
  }

  // ---------------------------------------------------------------------------------------------------------------
  // POST: open a session

  async #open(ex: Exchange, bucket: string, url: URL): Promise<void> {
    // Taken now, before the body (what a rule's `session` matches for this open), and reserved, so that concurrent
    // opens never share one. An open that creates no session gives it back unless a later open has taken one
    // since: sequential opens number their sessions 0, 1, 2... whatever was refused in between.
    const index = this.#nextIndex++;
    const declaredLength = nonNegativeInteger(headerValue(ex.req, 'content-length'));
    ex.record.bucket = bucket;
    const context: FaultContext = { kinds: ['open'], session: index, nth: { open: this.#opens++ }, bucket };
    const queryName = url.searchParams.get('name');
    if (queryName !== null) context.object = ex.record.object = queryName;
    const stage = this.#host.stage(ex, context, { kind: 'open', bodyLength: declaredLength });
    try {
      await stage.run(declaredLength, (body) => this.#createSession(ex, stage, { bucket, url, queryName, index }, body));
    } finally {
      if (ex.record.session !== index && this.#nextIndex === index + 1) this.#nextIndex = index;
    }
  }

  #createSession(
    ex: Exchange,
    stage: FaultStage,
    open: { bucket: string; url: URL; queryName: string | null; index: number },
    body: Body,
  ): RouteReply {
    const { bucket, url, queryName, index } = open;
    const { req } = ex;
    const expiry = stage.expiry;
    if (expiry !== undefined) return { outcome: errorOutcome(expiry, 'Injected fault: expired.') };
    // A refused open never reaches the response faults.
    const refuse = (outcome: Outcome): RouteReply => ({ outcome, asIs: true });

    const uploadType = url.searchParams.get('uploadType');
    if (uploadType !== 'resumable') return refuse(errorOutcome(400, `Only uploadType=resumable is supported, got ${String(uploadType)}.`));
    if (!isValidBucketName(bucket)) return refuse(errorOutcome(400, `Invalid bucket name: ${JSON.stringify(bucket)}.`));
    let resource: Record<string, unknown> = {};
    if (body.length > 0) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(Buffer.concat(body.pieces).toString('utf8'));
      } catch {
        return refuse(errorOutcome(400, 'The request body is not valid JSON.'));
      }
      if (!isRecord(parsed)) return refuse(errorOutcome(400, 'The request body must be a JSON object resource.'));
      resource = parsed;
    }
    const name = queryName ?? (typeof resource.name === 'string' ? resource.name : undefined);
    if (name === undefined) return refuse(errorOutcome(400, 'Required parameter: name.'));
    ex.record.object = name;
    const nameProblem = objectNameProblem(name);
    if (nameProblem !== undefined) return refuse(errorOutcome(400, nameProblem));
    const preconditions = preconditionsOf(url);
    if (typeof preconditions === 'string') return refuse(errorOutcome(400, preconditions));
    const declaredSizeHeader = headerValue(req, 'x-upload-content-length');
    const declaredSize = nonNegativeInteger(declaredSizeHeader);
    if (declaredSizeHeader !== undefined && declaredSize === undefined) {
      return refuse(errorOutcome(400, `Invalid X-Upload-Content-Length: ${JSON.stringify(declaredSizeHeader)}.`));
    }
    const problem = this.#host.store.preconditionProblem(bucket, name, preconditions);
    if (problem !== undefined) return refuse(errorOutcome(412, problem));

    const spec = { bucket, name, meta: metadataOf(resource, req, url), preconditions, declaredSize };
    const session = new UploadSession(index, spec, this.#host.discardData, this.#host.computeMd5);
    // The client never learns a session whose Location a hostile fault withholds: the server forgets it too.
    if (!stage.hidesLocation) {
      this.#sessions.set(session.id, session);
      this.#sessionList.push(session);
      // A slower open that arrived first is created later: keep the list in index order.
      if (this.#sessionList.length > 1 && this.#sessionList.at(-2)!.index > index) this.#sessionList.sort((a, b) => a.index - b.index);
      ex.record.session = index;
    }
    const query = `uploadType=resumable&name=${encodeURIComponent(name)}&upload_id=${session.id}`;
    const location = `${this.#host.url()}/upload/storage/v1/b/${encodeURIComponent(bucket)}/o?${query}`;
    return { outcome: { status: 200, headers: { location }, body: '' } };
  }

  // ---------------------------------------------------------------------------------------------------------------
  // PUT: bytes, finalization, status query

  async #put(ex: Exchange, session: UploadSession): Promise<void> {
    const header = headerValue(ex.req, 'content-range');
    if (header !== undefined) ex.record.contentRange = header;
    const range = parseContentRange(header);
    if (typeof range === 'string') return ex.drainAndSend(errorOutcome(400, range));
    const kinds = kindsOf(range);
    const primary = kinds[0] ?? 'chunk';
    ex.record.kind = primary;

    const { bucket, name: object } = session.spec;
    const context: FaultContext = { kinds, session: session.index, nth: session.count(kinds), bucket, object };
    let declaredLength = nonNegativeInteger(headerValue(ex.req, 'content-length'));
    if (range.type === 'bytes') {
      context.range = { start: range.start, end: range.end ?? Infinity };
      if (range.end !== undefined) declaredLength = range.end - range.start + 1;
      if (range.total !== undefined) context.total = range.total;
    } else if (range.type === 'total') {
      context.total = range.total;
      declaredLength = 0;
    } else {
      declaredLength = 0;
    }
    const stage = this.#host.stage(ex, context, { kind: primary, bodyLength: declaredLength });
    if (
      stage.quiet &&
      this.#host.discardData &&
      range.type === 'bytes' &&
      range.end !== undefined &&
      session.state === 'active' &&
      range.start === session.committed
    ) {
      return this.#streamBytes(ex, stage, session, range.start, range.end, range.total);
    }
    return stage.run(declaredLength, (body) => {
      const expiry = stage.expiry;
      if (expiry !== undefined) session.expire(expiry);
      const committedBefore = session.committed;
      const outcome = this.#stateOutcome(session) ?? this.#applyPut(ex, stage, session, range, body);
      const sentEnd = range.type === 'bytes' ? range.start + body.length : committedBefore;
      return { outcome, committedBefore, sentEnd };
    });
  }

  /**
   * Benchmark path (`discardData`, no fault): checks the range up front, then hashes and drops the body as it
   * arrives, so that a single multi-GiB PUT costs the server no memory and runs at the link's speed.
   */
  async #streamBytes(
    ex: Exchange,
    stage: FaultStage,
    session: UploadSession,
    start: number,
    end: number,
    total: number | undefined,
  ): Promise<void> {
    const length = end - start + 1;
    const declared = session.spec.declaredSize;
    const last = (total !== undefined && end + 1 === total) || (declared !== undefined && end + 1 === declared);
    const problem =
      (total !== undefined ? this.#totalProblem(session, total, session.committed) : undefined) ??
      (total !== undefined && end + 1 > total ? `Content-Range ends at byte ${end + 1} beyond the total size ${total}.` : undefined) ??
      (total === undefined && declared !== undefined && end + 1 > declared
        ? `The upload was declared as ${declared} bytes but byte ${end} was sent.`
        : undefined) ??
      (!last && length % CHUNK_ALIGNMENT !== 0
        ? `Every chunk but the last must be a multiple of ${CHUNK_ALIGNMENT} bytes; this one has ${length}.`
        : undefined);
    if (problem !== undefined) return ex.drainAndSend(errorOutcome(400, problem));
    const committedBefore = session.committed;
    const received = await new Promise<number>((resolve) => {
      let count = 0;
      ex.req.on('data', (piece: Buffer) => {
        const take = Math.min(piece.length, length - count);
        if (take > 0) session.append([piece], 0, take);
        count += piece.length;
        ex.metered(piece);
      });
      ex.req.once('end', () => resolve(count));
      ex.req.once('close', () => resolve(ex.req.complete ? count : -1));
      ex.req.once('error', () => resolve(-1));
    });
    ex.record.bytesReceived = Math.max(0, received);
    if (received < 0) {
      if (ex.record.status === 'pending') ex.record.status = 'aborted';
      return;
    }
    if (received !== length) {
      return ex.send(errorOutcome(400, `Content-Range covers ${length} bytes but the body has ${received}.`));
    }
    if (total !== undefined) session.total = total;
    const outcome = last && session.committed === end + 1 ? this.#finalize(ex, session) : incomplete(session.committed);
    return stage.respond({ outcome, committedBefore, sentEnd: start + received });
  }

  /** The answer for a session that no longer accepts bytes, or `undefined` while it is active. */
  #stateOutcome(session: UploadSession): Outcome | undefined {
    switch (session.state) {
      case 'active':
        return undefined;
      case 'finalized':
        return jsonOutcome(200, session.object?.resource ?? {});
      case 'failed': {
        const failure = session.failure ?? { status: 400, message: 'The upload failed.' };
        return errorOutcome(failure.status, failure.message);
      }
      case 'cancelled':
        return errorOutcome(session.deadStatus, 'The upload session was cancelled.');
      case 'expired':
        return errorOutcome(
          session.deadStatus,
          session.deadStatus === 404 ? 'No such upload session (expired).' : 'The upload session is gone.',
        );
    }
  }

  #applyPut(ex: Exchange, stage: FaultStage, session: UploadSession, range: ContentRange, body: Body): Outcome {
    const committed = session.committed;
    const holdFinalize = stage.holdsFinalize;

    if (range.type === 'query') {
      if (body.length > 0) return errorOutcome(400, 'A status query (Content-Range: bytes */*) must not carry a body.');
      return incomplete(committed);
    }
    if (range.type === 'total') {
      if (body.length > 0)
        return errorOutcome(400, `Content-Range ${ex.record.contentRange ?? ''} announces no bytes but the body has ${body.length}.`);
      const totalProblem = this.#totalProblem(session, range.total, committed);
      if (totalProblem !== undefined) return errorOutcome(400, totalProblem);
      session.total = range.total;
      if (committed < range.total || holdFinalize) return incomplete(committed);
      return this.#finalize(ex, session);
    }

    const { start } = range;
    if (start > committed) {
      return errorOutcome(
        400,
        `Content-Range starts at byte ${start} but only ${committed} bytes are persisted; bytes in between are missing.`,
      );
    }
    if (range.end !== undefined && body.length !== range.end - start + 1) {
      return errorOutcome(400, `Content-Range covers ${range.end - start + 1} bytes but the body has ${body.length}.`);
    }
    const end = start + body.length; // exclusive
    const total = range.total ?? (range.openEnded ? end : undefined);
    if (total !== undefined) {
      if (end > total) return errorOutcome(400, `Content-Range ends at byte ${end} beyond the total size ${total}.`);
      const totalProblem = this.#totalProblem(session, total, committed);
      if (totalProblem !== undefined) return errorOutcome(400, totalProblem);
    } else if (session.total !== undefined && end > session.total) {
      return errorOutcome(400, `The upload was declared as ${session.total} bytes but byte ${end - 1} was sent.`);
    }
    // GCS completes a session opened with X-Upload-Content-Length as soon as that many bytes have arrived, even
    // when the request's Content-Range says `/*`.
    const last = (total !== undefined && end === total) || (session.spec.declaredSize !== undefined && end === session.spec.declaredSize);
    if (!last && !range.openEnded && body.length % CHUNK_ALIGNMENT !== 0) {
      return errorOutcome(400, `Every chunk but the last must be a multiple of ${CHUNK_ALIGNMENT} bytes; this one has ${body.length}.`);
    }
    if (range.total !== undefined) session.total = range.total;
    const persistUpTo = stage.persistable(body.length);
    const skip = committed - start; // bytes of the body already persisted by an earlier request
    if (skip < persistUpTo) session.append(body.pieces, skip, persistUpTo);
    if (last && session.committed === end && !holdFinalize) return this.#finalize(ex, session);
    return incomplete(session.committed);
  }

  /** Why `total` contradicts what the session already knows, or `undefined`. */
  #totalProblem(session: UploadSession, total: number, committed: number): string | undefined {
    if (session.total !== undefined && session.total !== total) {
      return `The total size ${total} contradicts the size ${session.total} announced earlier.`;
    }
    if (committed > total) return `The total size ${total} is below the ${committed} bytes already persisted.`;
    return undefined;
  }

  #finalize(ex: Exchange, session: UploadSession): Outcome {
    const { store } = this.#host;
    const { bucket, name, meta, preconditions } = session.spec;
    const hashHeader = headerValue(ex.req, 'x-goog-hash');
    const expected = hashHeader === undefined ? {} : parseGoogHash(hashHeader);
    if (typeof expected === 'string') return errorOutcome(400, expected);
    const problem = store.preconditionProblem(bucket, name, preconditions);
    if (problem !== undefined) {
      session.fail(412, problem);
      return errorOutcome(412, problem);
    }
    const content = session.takeContent();
    const actualCrc = crc32cToBase64(content.crc32c);
    const mismatches: string[] = [];
    if (expected.crc32c !== undefined && !sameBase64(expected.crc32c, actualCrc)) {
      mismatches.push(`crc32c: client ${expected.crc32c}, server ${actualCrc}`);
    }
    if (expected.md5 !== undefined && content.md5 !== undefined && !Buffer.from(expected.md5, 'base64').equals(content.md5)) {
      mismatches.push(`md5: client ${expected.md5}, server ${content.md5.toString('base64')}`);
    }
    if (mismatches.length > 0) {
      const message = `Provided checksums do not match the uploaded data (${mismatches.join('; ')}); the object was not created.`;
      session.fail(400, message);
      return errorOutcome(400, message);
    }
    const object = store.create(bucket, name, content, meta);
    session.finalize(object);
    // The object exists before its answer goes out (which a fault may delay or drop): say so now.
    this.#host.activity.emit('change');
    return jsonOutcome(200, object.resource);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // DELETE: cancel a session

  async #cancel(ex: Exchange, session: UploadSession): Promise<void> {
    const { bucket, name: object } = session.spec;
    const context: FaultContext = { kinds: ['cancel'], session: session.index, nth: session.count(['cancel']), bucket, object };
    const stage = this.#host.stage(ex, context, { kind: 'cancel' });
    return stage.run(nonNegativeInteger(headerValue(ex.req, 'content-length')), () => {
      const expiry = stage.expiry;
      if (expiry !== undefined) session.expire(expiry);
      let outcome: Outcome;
      if (session.state === 'finalized' || session.state === 'expired') {
        // Nothing left to cancel: say what the session is.
        outcome = this.#stateOutcome(session) ?? errorOutcome(500, 'unreachable');
      } else {
        if (session.cancel()) this.#cancelled += 1;
        outcome = { status: 499, message: 'Client Closed Request', headers: {}, body: '' };
      }
      return { outcome, committedBefore: session.committed, sentEnd: session.committed };
    });
  }
}
