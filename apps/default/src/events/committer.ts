/** Something that runs work in one transaction: a store (db/store.ts), handing itself bound to it. */
export interface Transactional<S> {
  transaction<T>(work: (tx: S) => Promise<T>): Promise<T>;
}

/**
 * Does the work of a batch of jobs in one transaction and answers each, in order. It must either
 * throw or leave the transaction worth committing: a job it refuses gets an answer saying so and
 * writes nothing, because the other jobs commit all the same.
 */
export type StoreBatch<S, J, R> = (tx: S, jobs: J[]) => Promise<R[]>;

/** Settings of the committer (SEND_BATCH_* in docs/configuration.md). */
export interface CommitterLimits {
  /** Batch transactions running at once; each holds one pooled connection. */
  inFlight: number;
  /** Jobs per batch. */
  maxJobs: number;
  /** Sum of job weights (events) per batch; a heavier job still runs, alone. */
  maxWeight: number;
}

export interface CommitterOptions {
  limits: CommitterLimits;
  /** Told of each batch of several jobs that failed (before its jobs run again one by one). */
  onBatchFailure?: (err: unknown, jobs: number) => void;
}

interface Pending<J, R> {
  key: string;
  weight: number;
  job: J;
  resolve(result: R): void;
  reject(err: unknown): void;
}

/**
 * Group commit: jobs queued while batches run are stored together by the next batch, in one
 * transaction, so the round trips, BEGIN, COMMIT and WAL flush of a transaction are paid once per
 * batch instead of once per call. There is no timer: a job that finds a free slot starts at once,
 * alone.
 *
 * A batch hands its jobs to `store` sorted by key (the room), jobs with the same key in arrival
 * order; `store` must take its locks in a fixed order too (sends lock all rooms of a batch in id
 * order, in one statement), so that two batches, of this process or another, cannot deadlock.
 *
 * When a batch fails (SQL error, deadlock, lost connection) it rolls back, is reported to
 * `onBatchFailure` (logged and counted by the event service), and each of its jobs runs again in a
 * transaction of its own, so one bad job fails only its own caller. An answer is handed out only
 * once its transaction committed.
 */
export class GroupCommitter<S, J, R> {
  private readonly pending: Pending<J, R>[] = [];
  private running = 0;
  private readonly limits: CommitterLimits;

  constructor(
    private readonly store: Transactional<S>,
    private readonly storeBatch: StoreBatch<S, J, R>,
    private readonly options: CommitterOptions,
  ) {
    this.limits = options.limits;
  }

  /** Batches running now, and jobs waiting for the next one (tests watch calls pile up with it). */
  get load(): { running: number; queued: number } {
    return { running: this.running, queued: this.pending.length };
  }

  /** Stores `job` in a batch transaction; resolves with its answer once that transaction committed. */
  run(key: string, weight: number, job: J): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.pending.push({ key, weight, job, resolve, reject });
      this.startBatches();
    });
  }

  private startBatches(): void {
    while (this.running < this.limits.inFlight && this.pending.length > 0) {
      const batch = this.take();
      this.running++;
      void this.commit(batch).finally(() => {
        this.running--;
        this.startBatches();
      });
    }
  }

  /** The oldest pending jobs, within the limits (at least one), in key order. */
  private take(): Pending<J, R>[] {
    let n = 0;
    let weight = 0;
    for (const p of this.pending) {
      if (n === this.limits.maxJobs || (n > 0 && weight + p.weight > this.limits.maxWeight)) break;
      weight += p.weight;
      n++;
    }
    // A stable sort: jobs of one key stay in arrival order.
    return this.pending.splice(0, n).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  private async commit(batch: Pending<J, R>[]): Promise<void> {
    if (batch.length === 1) return this.alone(batch[0] as Pending<J, R>);
    let answers: R[];
    try {
      answers = await this.transaction(batch);
    } catch (err) {
      this.options.onBatchFailure?.(err, batch.length);
      // Rolled back: nothing of this batch is stored. Which job failed, and whether it would fail
      // again alone (a unique violation after a race, a deadlock), only running it alone tells.
      for (const p of batch) await this.alone(p);
      return;
    }
    for (const [i, p] of batch.entries()) p.resolve(answers[i] as R);
  }

  private async alone(p: Pending<J, R>): Promise<void> {
    try {
      const [answer] = await this.transaction([p]);
      p.resolve(answer as R);
    } catch (err) {
      p.reject(err);
    }
  }

  private transaction(batch: Pending<J, R>[]): Promise<R[]> {
    return this.store.transaction((tx) =>
      this.storeBatch(
        tx,
        batch.map((p) => p.job),
      ),
    );
  }
}
