// Protocol v1 framing (docs/protocol.md): UTF-8 JSON objects, one per line, with a maximum
// frame size. Shared by the child runtime and by tests that play the parent.

export const PROTOCOL_VERSION = 1;
export const MAX_FRAME = 16 * 1024 * 1024;

/** A protocol violation; `type` is one of the protocol's error types. */
export class ProtocolError extends Error {
  constructor(message, type = 'ProtocolError') {
    super(message);
    this.name = type;
    this.type = type;
  }
}

/** Encode one message as a frame (JSON + "\n"); throws ProtocolError beyond `maxFrame`. */
export function encode(message, maxFrame = MAX_FRAME) {
  return Buffer.from(encodeText(message, maxFrame), 'utf8');
}

/** `encode` as a string (what the child queues: one UTF-8 conversion per write, not per frame). */
export function encodeText(message, maxFrame = MAX_FRAME) {
  let text;
  try {
    text = JSON.stringify(message);
  } catch (err) {
    throw new ProtocolError(`value is not JSON-serializable: ${err.message}`, 'NotSerializable');
  }
  // A UTF-8 character takes at most 3 bytes per UTF-16 unit: only long texts need counting.
  if (text.length * 3 > maxFrame) {
    const size = Buffer.byteLength(text, 'utf8');
    if (size > maxFrame) {
      throw new ProtocolError(
        `a '${message.type}' frame of ${size} bytes exceeds the maximum frame size of ${maxFrame} bytes`,
        'FrameTooLarge',
      );
    }
  }
  return text + '\n';
}

/** Reassembles frames from arbitrary chunks. */
export class FrameDecoder {
  constructor(maxFrame = MAX_FRAME) {
    this.maxFrame = maxFrame;
    this.chunks = [];
    this.size = 0;
  }

  /** Feed a chunk; returns the complete messages in it (keeps no reference to the chunk).
   * Throws ProtocolError on garbage. */
  feed(chunk) {
    if (this.chunks.length === 0 && chunk.length <= this.maxFrame && chunk[chunk.length - 1] === 10) {
      // The usual case, whole frames only: one UTF-8 decoding for all of them.
      const lines = chunk.toString('utf8').split('\n');
      lines.pop();
      return lines.map((line) => this.parseText(line));
    }
    const frames = [];
    let start = 0;
    let nl = chunk.indexOf(10);
    while (nl >= 0) {
      let line = chunk.subarray(start, nl);
      if (this.chunks.length) {
        this.chunks.push(line);
        line = Buffer.concat(this.chunks);
        this.chunks = [];
        this.size = 0;
      }
      frames.push(this.parse(line));
      start = nl + 1;
      nl = chunk.indexOf(10, start);
    }
    if (start < chunk.length) {
      const rest = Buffer.from(chunk.subarray(start)); // a copy: the reader may reuse the chunk's memory
      this.chunks.push(rest);
      this.size += rest.length;
      if (this.size > this.maxFrame) {
        throw new ProtocolError(
          `a frame exceeds the maximum frame size of ${this.maxFrame} bytes`,
          'FrameTooLarge',
        );
      }
    }
    return frames;
  }

  parse(line) {
    if (line.length > this.maxFrame) {
      throw new ProtocolError(
        `a frame of ${line.length} bytes exceeds the maximum frame size of ${this.maxFrame} bytes`,
        'FrameTooLarge',
      );
    }
    return this.parseText(line.toString('utf8'));
  }

  parseText(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      const preview = text.slice(0, 80);
      throw new ProtocolError(`the channel carried a frame that is not JSON: ${JSON.stringify(preview)}`);
    }
    if (message === null || typeof message !== 'object' || typeof message.type !== 'string') {
      throw new ProtocolError('a frame is not a JSON object with a "type"');
    }
    return message;
  }
}

/** The error body of an "error" frame, from anything a handler may throw. */
export function errorBody(err) {
  if (err instanceof Error) {
    const body = { type: err.type || err.name || 'Error', message: err.message || String(err) };
    if (err.stack) body.stack = String(err.stack);
    if (err.retryable === false) body.retryable = false;
    return body;
  }
  return { type: 'Error', message: String(err) };
}
