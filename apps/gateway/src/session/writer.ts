import { toBinary } from "@bufbuild/protobuf";
import { type ServerFrame, ServerFrameSchema } from "@service-chat/api";
import type { Disconnect } from "@service-chat/protocol";

/** A transport's side of the writer: a WebSocket (ws.ts) or an HTTP/2 stream (stream.ts). */
export interface Sink {
  /** False once the transport is closing or closed: frames are dropped. */
  readonly open: boolean;
  /** True while some of what was written earlier has not been taken by the device yet. */
  backlogged(): boolean;
  /**
   * Writes one frame (`bytes` is its binary form when already known); answers its size in bytes
   * when the transport knows it without more work.
   */
  write(frame: ServerFrame, bytes?: Uint8Array): number | undefined;
  /** Holds writes until `release`, so the frames of one turn leave together (one system call). */
  hold?(): void;
  release?(): void;
  /** Ends the transport after the frames written so far. */
  end(reason: Disconnect): void;
}

/**
 * The writers that wrote during the current turn of the event loop. One `setImmediate` per turn
 * for all of them, not one per writer or frame.
 */
class Turn {
  private writers: FrameWriter[] = [];

  join(writer: FrameWriter): void {
    if (this.writers.length === 0) setImmediate(() => this.end());
    this.writers.push(writer);
  }

  private end(): void {
    const writers = this.writers;
    this.writers = [];
    for (const w of writers) w.turnEnded();
  }
}

const turn = new Turn();

/**
 * The one writer of a device's frames, whatever carries them, with a send queue bounded in bytes.
 *
 * The queue is what the transport holds that the device has not taken. Frames written in a turn
 * that begins with that queue empty are a burst to a device that keeps up (a Sync page, what was
 * held while replaying) and do not count. From a turn that begins with bytes still waiting, every
 * byte written counts, until a turn begins with the queue empty again. More than `maxBytes`
 * counted means the device is slow: a few large frames trip it as surely as many small ones.
 */
export class FrameWriter {
  private inTurn = false;
  private backlogged = false;
  /** Bytes written since the device last caught up, counted from the first turn that began behind. */
  private waiting = 0;

  constructor(
    private readonly sink: Sink,
    private readonly maxBytes: number,
  ) {}

  /** Writes a frame; answers false when the device is too slow (it should then be closed as such). */
  write(frame: ServerFrame, bytes?: Uint8Array): boolean {
    const sink = this.sink;
    if (!sink.open) return true;
    if (!this.inTurn) {
      this.inTurn = true;
      turn.join(this);
      this.backlogged = sink.backlogged();
      if (!this.backlogged) this.waiting = 0;
      sink.hold?.();
    }
    const size = sink.write(frame, bytes);
    if (!this.backlogged) return true;
    this.waiting += size ?? bytes?.byteLength ?? toBinary(ServerFrameSchema, frame).byteLength;
    return this.waiting <= this.maxBytes;
  }

  /** Bytes written while the device was behind and not yet known sent (0 when it keeps up). */
  get queuedBytes(): number {
    return this.backlogged ? this.waiting : 0;
  }

  /** Ends the transport after the frames written so far. */
  end(reason: Disconnect): void {
    this.sink.end(reason);
  }

  /** Called once at the end of a turn in which this writer wrote. */
  turnEnded(): void {
    this.inTurn = false;
    this.sink.release?.();
  }
}
